"""Trainer's own settings through `cifake train`: they reach TrainingArguments, and bad ones are one clear error."""

import json
from dataclasses import replace

import pytest

from cifake_kit.errors import CifakeError
from cifake_kit.options import TrainOptions
from modeling.recipes import resolve_recipe
from modeling.training.train import train, training_arguments
from modeling.training.arguments import trainer_overrides


def arguments(tmp_path, **options):
    training = resolve_recipe("paper-best")[2]
    overrides = trainer_overrides(replace(TrainOptions(), **options), cuda=False)
    return training_arguments(tmp_path, training, train_size=100, **overrides)


def test_the_options_reach_training_arguments(tmp_path):
    args = arguments(tmp_path, gradient_accumulation_steps=4, precision="bf16", eval_strategy="steps", eval_steps=25,
                     save_total_limit=3, report_to=["tensorboard"],
                     training_arg=["warmup_steps=7", "lr_scheduler_type=linear", "adam_beta2=0.99",
                                   "torch_compile=false", "lr_scheduler_kwargs={\"power\": 2}",
                                   "label_names=labels,other"])
    assert args.gradient_accumulation_steps == 4 and args.bf16 and not args.fp16
    assert (args.eval_strategy, args.save_strategy, args.eval_steps, args.save_steps) == ("steps", "steps", 25, 25)
    assert args.save_total_limit == 3 and args.report_to == ["tensorboard"]
    assert args.warmup_steps == 7 and args.lr_scheduler_type == "linear" and args.adam_beta2 == 0.99
    assert args.torch_compile is False and args.lr_scheduler_kwargs == {"power": 2}
    assert args.label_names == ["labels", "other"]  # a list, comma-separated
    defaults = arguments(tmp_path)
    assert defaults.report_to == [] and defaults.save_total_limit == 2 and defaults.eval_strategy == "epoch"


@pytest.mark.parametrize("options, message", [
    ({"gradient_accumulation_steps": 0}, "--gradient-accumulation-steps must be a whole number of at least 1, got 0"),
    ({"save_total_limit": 0}, "--save-total-limit must be a whole number of at least 1, got 0"),
    ({"eval_strategy": "steps", "eval_steps": 0}, "--eval-steps must be a whole number of at least 1, got 0"),
    ({"training_arg": ["weight_decay=nan"]}, "--training-arg weight_decay='nan': weight_decay takes a finite number"),
    ({"training_arg": ["warmup_steps=inf"]}, "--training-arg warmup_steps='inf': warmup_steps takes a finite number"),
    ({"precision": "fp16"}, "--precision fp16 needs a CUDA GPU; on the CPU use bf16 or fp32"),
    ({"eval_steps": 10}, "--eval-steps counts steps between validations: it needs --eval-strategy steps"),
    ({"eval_strategy": "steps"}, "--eval-strategy steps needs --eval-steps N"),
    ({"report_to": ["tensorbored"]}, "--report-to 'tensorbored' is not one of transformers' integrations"),
    ({"report_to": ["wandb"]}, "--report-to wandb needs its package, which is not installed: pip install wandb"),
    ({"push_to_hub": True}, "--push-to-hub needs --hub-model-id"),
    ({"hub_model_id": "me/x"}, "--hub-model-id names where --push-to-hub pushes"),
    ({"training_arg": ["output_dir=/tmp/x"]}, "--training-arg output_dir: use --output-dir"),
    ({"training_arg": ["bf16=true"]}, "--training-arg bf16: use --precision"),
    ({"training_arg": ["remove_unused_columns=true"]}, "--training-arg remove_unused_columns: the kit sets it"),
    ({"training_arg": ["prediction_loss_only=true"]}, "--training-arg prediction_loss_only: the kit sets it"),
    ({"training_arg": ["save_only_model=true"]}, "--training-arg save_only_model: the kit sets it"),
    ({"training_arg": ["hub_private_repo=true"]}, r"hub_private_repo: the kit pushes with `cifake push-model`"),
    ({"training_arg": ["warmup_step=3"]}, r"'warmup_step' is not a TrainingArguments field. Did you mean warmup_steps"),
    ({"training_arg": ["warmup_steps=many"]}, "--training-arg warmup_steps='many': warmup_steps takes"),
    ({"training_arg": ["warmup_steps"]}, "--training-arg 'warmup_steps' is not KEY=VALUE"),
])
def test_bad_options_are_one_clear_error(tmp_path, options, message):
    with pytest.raises(CifakeError, match=message):
        arguments(tmp_path, **options)


def test_trainer_itself_refuses_and_nothing_is_written(tmp_path, built_dataset):
    with pytest.raises(CifakeError, match="Trainer refuses these settings: "):
        train(data=str(built_dataset), output_dir=tmp_path / "out", epochs=1,
              training_arg=["lr_scheduler_type=no-such-schedule"])
    assert not (tmp_path / "out").exists()


def test_accumulation_and_tensorboard_in_a_real_run(tmp_path, built_dataset):
    out = tmp_path / "run"
    train(data=str(built_dataset), output_dir=out, epochs=1, batch_size=8, gradient_accumulation_steps=2,
          report_to=["tensorboard"], training_arg=["logging_steps=1"])
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3  # 54 training images in batches of 8: 7 batches, an update every 2
    assert json.loads((out / "config.json").read_text())["input_encoding"] == "cifake-jpeg"  # what predict stores as
    assert list((out / "runs").rglob("events.out.tfevents.*"))  # TensorBoard's log, inside the model folder
    assert json.loads((out / "cifake_run.json").read_text())["trainer"] == {
        "gradient_accumulation_steps": 2, "training_args": {"logging_steps": 1}}


def test_push_to_hub_is_checked_first_and_done_last(tmp_path, built_dataset, hub_calls):
    with pytest.raises(CifakeError, match=r"--data .* is a local folder.*Pass --dataset-id"):
        train(data=str(built_dataset), output_dir=tmp_path / "early", epochs=1, push_to_hub=True, hub_model_id="me/m")
    assert not (tmp_path / "early").exists() and hub_calls == []
    result = train(data=str(built_dataset), output_dir=tmp_path / "run", epochs=1, batch_size=16, push_to_hub=True,
                   hub_model_id="me/cifake-cnn", dataset_id="me/cifake")
    assert result.pushed_to == "https://hub.example/me/cifake-cnn"
    assert [c[0] for c in hub_calls] == ["repo", "commit"]
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "run" / "README.md")  # the local card names the data by the id given
    assert card.data.eval_results[0].dataset_type == "me/cifake"


def test_a_token_the_hub_rejects_fails_before_training(tmp_path, built_dataset, hub_calls, monkeypatch):
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    def rejected(self, token=None, **kwargs):
        response = httpx.Response(401, request=httpx.Request("GET", "https://huggingface.co/api/whoami-v2"))
        raise HfHubHTTPError("401 Client Error: Unauthorized", response=response)

    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", rejected)
    with pytest.raises(CifakeError, match=r"Cannot push: the Hub rejects this token \(401\). Log in again"):
        train(data=str(built_dataset), output_dir=tmp_path / "run", epochs=1, push_to_hub=True,
              hub_model_id="me/cifake-cnn", dataset_id="me/cifake")
    assert not (tmp_path / "run").exists() and hub_calls == []
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, token=None, **kw: {
        "auth": {"type": "access_token", "accessToken": {"role": "read"}}})
    with pytest.raises(CifakeError, match="Cannot push: this token is read-only"):
        train(data=str(built_dataset), output_dir=tmp_path / "run", epochs=1, push_to_hub=True,
              hub_model_id="me/cifake-cnn", dataset_id="me/cifake")


@pytest.mark.slow
def test_streamed_epochs_count_updates_not_batches(tmp_path, built_dataset):
    train(data=str(built_dataset), output_dir=tmp_path / "stream", epochs=1, batch_size=8, streaming=True,
          gradient_accumulation_steps=2)
    state = json.loads((tmp_path / "stream" / "trainer_state.json").read_text())
    # 54 streamed images in batches of 8 with an update every 2 batches: 4 updates make the epoch asked for.
    assert state["global_step"] == 4 and 1.0 <= state["epoch"] < 1.3
