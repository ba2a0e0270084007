"""`cifake train`'s arguments: every TrainingArguments field under its own name, the recipe's values kept
unless given, and bad settings one clear error before any work."""

import json

import pytest

from cifake_kit.errors import CifakeError
from modeling.recipes import resolve_recipe
from modeling.training.arguments import CifakeArguments, parse
from modeling.training.train import train, training_arguments


def trainer_arguments(tmp_path, argv):
    """The TrainingArguments a command line gives, as `cifake train` makes them (recipe, then the fields given)."""
    kit, given = parse(argv)
    _, _, training = resolve_recipe(kit.config)
    return kit, training_arguments(tmp_path, training, train_size=100, **given)


def test_every_trainer_field_is_a_flag_under_its_own_name(tmp_path):
    kit, args = trainer_arguments(tmp_path, [
        "--data", "somewhere", "--config", "cifake-forensic", "--gradient_accumulation_steps", "4", "--bf16",
        "--eval-strategy", "steps", "--eval_steps", "25", "--save_strategy", "steps", "--save_steps", "25",
        "--save_total_limit", "3", "--report_to", "tensorboard", "--warmup_steps", "7", "--adam_beta2", "0.99",
        "--lr_scheduler_kwargs", '{"power": 2}', "--label_names", "labels", "--label_names", "other", "--augment", "false"])
    assert kit.data == "somewhere" and kit.augment is False
    assert args.gradient_accumulation_steps == 4 and args.bf16 and not args.fp16
    assert (args.eval_strategy, args.save_strategy, args.eval_steps, args.save_steps) == ("steps", "steps", 25, 25)
    assert args.save_total_limit == 3 and args.report_to == ["tensorboard"]
    assert args.warmup_steps == 7 and args.adam_beta2 == 0.99 and args.lr_scheduler_kwargs == {"power": 2}
    assert args.label_names == ["labels", "other"]  # a repeated list flag adds up
    # Fields left alone keep the recipe's values, not TrainingArguments' defaults.
    assert args.learning_rate == 2e-3 and args.lr_scheduler_type == "cosine" and args.weight_decay == 5e-2
    _, defaults = trainer_arguments(tmp_path, [])
    assert defaults.learning_rate == 1e-3 and defaults.num_train_epochs == resolve_recipe(None)[2]["epochs"]
    assert defaults.report_to == [] and defaults.save_total_limit == 2 and defaults.eval_strategy == "epoch"
    _, given = parse(["--num-train-epochs", "3", "--learning_rate", "0.01", "--output-dir", "out"])
    assert given == {"num_train_epochs": 3.0, "learning_rate": 0.01, "output_dir": "out"}


@pytest.mark.parametrize("argv, message", [
    (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps must be a whole number of at least 1, got 0"),
    (["--save_total_limit", "0"], "--save_total_limit must be a whole number of at least 1, got 0"),
    (["--num_train_epochs", "nan"], "--num_train_epochs must be a number above 0, got nan"),
    (["--learning_rate", "1e30"], "--learning_rate must be a number above 0 and at most 1, got 1e"),
    (["--weight_decay", "nan"], "--weight_decay must be a number of at least 0, got nan"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to"),
    (["--validation_fraction", "1"], "--validation_fraction must be a number between 0 and 1"),
    (["--early_stopping_patience", "-2"], "--early_stopping_patience must be a whole number of at least 0"),
    (["--fp16"], "--fp16 needs a CUDA GPU"),
    (["--eval_strategy", "steps"], "--eval_strategy steps needs --eval_steps N"),
    (["--eval_steps", "100"], "--eval_steps 100 needs --eval_strategy steps"),
    (["--report_to", "tensorbored"], "--report_to 'tensorbored' is not one of transformers' integrations"),
    (["--report_to", "wandb"], "--report_to wandb needs its package, which is not installed: pip install wandb"),
    (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
    (["--hub_model_id", "me/x"], "--hub_model_id names where --push_to_hub pushes"),
    (["--resume_from_checkpoint", "x"], "--resume_from_checkpoint: use --resume"),
    (["--disable_tqdm", "true"], "--disable_tqdm: use --verbose"),
    (["--remove_unused_columns", "true"], "--remove_unused_columns: the kit's batches arrive whole"),
    (["--save_only_model", "true"], "--save_only_model: --resume needs the optimiser state"),
    (["--hub_private_repo", "true"], r"--hub_private_repo: push with `cifake push-model --private`"),
])
def test_bad_settings_are_one_clear_error(argv, message):
    with pytest.raises(CifakeError, match=message):
        parse(argv)


def test_several_integrations_are_reported_to():
    assert parse(["--report_to", "tensorboard", "--report_to", "none"])[1]["report_to"] == ["tensorboard", "none"]


@pytest.mark.parametrize("argv", [["--epochs", "3"], ["--batch-size", "8"], ["--training-arg", "warmup_steps=3"],
                                  ["--num_train_epoch", "3"], ["--precision", "bf16"]])
def test_old_spellings_and_abbreviations_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        parse(argv)
    assert "unrecognized arguments" in capsys.readouterr().err


def test_a_python_keyword_that_is_no_setting_names_the_nearest(tmp_path):
    with pytest.raises(CifakeError, match=r"'num_train_epoch' is neither .* Did you mean num_train_epochs"):
        train(data="nowhere", output_dir=tmp_path / "out", num_train_epoch=1)
    assert not (tmp_path / "out").exists()
    with pytest.raises(CifakeError, match="--validation-fraction|--validation_fraction"):
        CifakeArguments(validation_fraction=0)


def test_trainer_itself_refuses_and_nothing_is_written(tmp_path, built_dataset):
    with pytest.raises(CifakeError, match="Trainer refuses these settings: "):
        train(data=str(built_dataset), output_dir=tmp_path / "out", num_train_epochs=1,
              lr_scheduler_type="no-such-schedule")
    assert not (tmp_path / "out").exists()


def test_accumulation_and_tensorboard_in_a_real_run(tmp_path, built_dataset):
    out = tmp_path / "run"
    train(data=str(built_dataset), output_dir=out, num_train_epochs=1, per_device_train_batch_size=8,
          gradient_accumulation_steps=2, report_to=["tensorboard"], logging_steps=1, adam_beta2=0.99, warmup_steps=2)
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3  # 54 training images in batches of 8: 7 batches, an update every 2
    assert json.loads((out / "config.json").read_text())["input_encoding"] == "cifake-jpeg"  # what predict stores as
    assert list((out / "runs").rglob("events.out.tfevents.*"))  # TensorBoard's log, inside the model folder
    run = json.loads((out / "cifake_run.json").read_text())
    assert run["trainer"] == {"gradient_accumulation_steps": 2, "adam_beta2": 0.99}  # what changes what it trains
    assert run["training"]["epochs"] == 1 and run["training"]["batch_size"] == 8  # the recipe's, as overridden
    assert run["training"]["warmup_ratio"] == 2  # from 1 on, warm-up steps (as TrainingArguments reads warmup_steps)


def test_push_to_hub_is_checked_first_and_done_last(tmp_path, built_dataset, hub_calls):
    with pytest.raises(CifakeError, match=r"--data .* is a local folder.*Pass --dataset_id"):
        train(data=str(built_dataset), output_dir=tmp_path / "early", num_train_epochs=1, push_to_hub=True,
              hub_model_id="me/m")
    assert not (tmp_path / "early").exists() and hub_calls == []
    result = train(data=str(built_dataset), output_dir=tmp_path / "run", num_train_epochs=1,
                   per_device_train_batch_size=16, push_to_hub=True, hub_model_id="me/cifake-cnn", dataset_id="me/cifake")
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
        train(data=str(built_dataset), output_dir=tmp_path / "run", num_train_epochs=1, push_to_hub=True,
              hub_model_id="me/cifake-cnn", dataset_id="me/cifake")
    assert not (tmp_path / "run").exists() and hub_calls == []
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, token=None, **kw: {
        "auth": {"type": "access_token", "accessToken": {"role": "read"}}})
    with pytest.raises(CifakeError, match="Cannot push: this token is read-only"):
        train(data=str(built_dataset), output_dir=tmp_path / "run", num_train_epochs=1, push_to_hub=True,
              hub_model_id="me/cifake-cnn", dataset_id="me/cifake")


@pytest.mark.slow
def test_streamed_epochs_count_updates_not_batches(tmp_path, built_dataset):
    train(data=str(built_dataset), output_dir=tmp_path / "stream", num_train_epochs=1, per_device_train_batch_size=8,
          streaming=True, gradient_accumulation_steps=2)
    state = json.loads((tmp_path / "stream" / "trainer_state.json").read_text())
    # 54 streamed images in batches of 8 with an update every 2 batches: 4 updates make the epoch asked for.
    assert state["global_step"] == 4 and 1.0 <= state["epoch"] < 1.3


def test_a_bad_flag_is_said_in_two_lines_not_after_the_whole_usage(capsys):
    with pytest.raises(SystemExit):
        parse(["--bogus-flag", "3"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "cifake train --help" in lines[0]
    assert lines[1] == "cifake train: error: unrecognized arguments: --bogus-flag 3"
