import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cifake_kit.errors import CifakeError
from cifake_kit.schema import CIFAR10_CLASSES
from modeling.layout import RUN_FILE
from modeling.training.train import train


def read_state(folder):
    return json.loads((folder / "trainer_state.json").read_text())


@pytest.mark.slow
def test_short_run_learns_writes_report_and_resumes(tmp_path, built_dataset):
    out = tmp_path / "run"
    result = train(data=str(built_dataset), output_dir=out, num_train_epochs=2, per_device_train_batch_size=8, seed=0)
    losses = [e["loss"] for e in read_state(out)["log_history"] if "loss" in e]
    assert len(losses) >= 4 and losses[-1] < losses[0]
    assert result.split == "test"
    report = json.loads(result.report.read_text())
    assert report["images"] == 40 and report["sizes"] == {"train": 40, "validation": 20}
    assert report["metrics"]["support_fake"] == 20 and report["metrics"]["support_real"] == 20
    assert sum(map(sum, report["metrics"]["confusion_matrix"])) == 40
    assert {"accuracy", "precision_fake", "recall_real", "f1_fake", "f1_real"} <= set(report["metrics"])
    assert list(report["metrics"]["per_cifar10_class_accuracy"]) == CIFAR10_CLASSES
    for figure in ("confusion_matrix.png", "training_curves.png"):
        assert (result.report.parent / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    steps = read_state(out)["global_step"]
    # Mark the last checkpoint's state: a resumed run carries it on, a restart from scratch would not.
    last = out / f"checkpoint-{steps}"
    state = read_state(last)
    state["log_history"].append({"step": steps, "marker": "resumed from here"})
    (last / "trainer_state.json").write_text(json.dumps(state))

    # Resume in a fresh process, as a user would after an interruption, and go on for two more epochs.
    result = subprocess.run(
        [sys.executable, "-m", "cifake_cli", "train", "--data", str(built_dataset), "--output-dir", str(out),
         "--num_train_epochs", "4", "--per_device_train_batch_size", "8", "--resume"],
        capture_output=True, text=True, timeout=600, env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = read_state(out)
    assert state["global_step"] == 2 * steps and state["epoch"] == 4  # two more epochs, not four from scratch
    assert {"step": steps, "marker": "resumed from here"} in state["log_history"]


@pytest.mark.parametrize("patience", [0, 5])
def test_early_stopping_keeps_the_best_model_and_without_it_the_final_one(tmp_path, built_dataset, monkeypatch,
                                                                          capsys, patience):
    from safetensors.torch import load_file

    import modeling.training.train as training

    validations = []

    def first_is_best(eval_prediction):  # every validation scores lower than the one before
        validations.append(1)
        return {"accuracy": 1 / len(validations), "roc_auc": 1 / len(validations)}

    monkeypatch.setattr(training, "trainer_metrics", first_is_best)
    out = tmp_path / "run"
    result = train(data=str(built_dataset), output_dir=out, num_train_epochs=3, per_device_train_batch_size=8,
                   early_stopping_patience=patience, seed=0)
    steps = read_state(out)["global_step"]
    epoch = [f"checkpoint-{steps * k // 3}" for k in (1, 2, 3)]
    # Two checkpoints stay (save_total_limit): the best one and the last, or without early stopping the last two.
    kept, other = (epoch[0], epoch[2]) if patience else (epoch[2], epoch[1])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == sorted([kept, other])
    assert json.loads(result.report.read_text())["best_checkpoint"] == (kept if patience else None)
    weights = {name: load_file(out / name / "model.safetensors") for name in ("", kept, other)}

    def same(a, b):
        return weights[a].keys() == weights[b].keys() and all(weights[a][k].equal(weights[b][k]) for k in weights[a])

    assert same("", kept) and not same("", other)  # the model is the kept epoch's, not the other one
    said = ("the best model (validation accuracy 100.00%) is kept" if patience else
            "the final model (epoch 3) is kept; early stopping was off")
    assert said in capsys.readouterr().out


def test_the_model_learns_a_separable_signal(trained_model):
    # Toy task: REAL photos vs other photos carrying a fixed +-6 grey-level checkerboard.
    report = json.loads((trained_model / "report" / "report.json").read_text())
    assert report["split"] == "test" and report["images"] == 200
    assert report["metrics"]["accuracy"] >= 0.9, report["metrics"]


def test_output_folder_rules(tmp_path, built_dataset):
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(CifakeError, match=r"already holds other files \(notes.txt\); nothing was written"):
        train(data=str(built_dataset), output_dir=foreign, num_train_epochs=1)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    with pytest.raises(CifakeError, match="Nothing to resume"):
        train(data=str(built_dataset), output_dir=tmp_path / "new", num_train_epochs=1, resume=True)

    run = tmp_path / "run"
    train(data=str(built_dataset), output_dir=run, num_train_epochs=1, per_device_train_batch_size=16)
    with pytest.raises(CifakeError, match="already holds a training run. Pass --resume"):
        train(data=str(built_dataset), output_dir=run, num_train_epochs=1, per_device_train_batch_size=16)
    with pytest.raises(CifakeError, match=r"holds a run with other settings \(.*recipe.*\)"):
        train(data=str(built_dataset), output_dir=run, num_train_epochs=1, config="conv1x16", resume=True)
    before = json.loads((run / RUN_FILE).read_text())
    train(data=str(built_dataset), output_dir=run, num_train_epochs=1, per_device_train_batch_size=16, config="conv1x16", overwrite=True)
    assert json.loads((run / RUN_FILE).read_text())["recipe"] == "conv1x16" != before["recipe"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"config": "conv7x7"}, "Unknown config 'conv7x7'"),
        ({"config": '{"conv_filters": [32, 0]}'}, r"Bad model config .*every layer needs at least 1 unit"),
        ({"config": '{"backbone": "resnet-9000"}'}, "Cannot build the model: backbone='resnet-9000' is not a timm model"),
        ({"num_train_epochs": 0}, "--num_train_epochs must be a number above 0, got 0"),
        ({"num_train_epochs": float("nan")}, "--num_train_epochs must be a number above 0, got nan"),
        ({"learning_rate": 1e30}, r"--learning_rate must be a number above 0 and at most 1, got 1e\+30"),
        ({"seed": -5}, "--seed must be a whole number from 0 to 4,294,967,295, got -5"),
        ({"dataloader_num_workers": -1}, "--dataloader_num_workers must be a whole number of at least 0, got -1"),
        ({"validation_fraction": 0.0}, r"--validation_fraction must be a number between 0 and 1 \(exclusive\)"),
        ({"config": '{"conv_filters": [8], "training": {"learning_rate": NaN}}'},
         "The config's training setting 'learning_rate' must be a number above 0 and at most 1, got nan"),
        ({"config": '{"conv_filters": [8], "training": {"crop_padding": -1}}'},
         "The config's training setting 'crop_padding' must be a whole number of at least 0, got -1"),
        # the carved validation images chose the kept model: scores on them flatter it; a typo is no split
        ({"split": "validation"}, "--split validation: the validation images are carved from train"),
        ({"split": "tset"}, r"--split 'tset': the dataset has no such split \(it has train, test\)"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(tmp_path, built_dataset, kwargs, message):
    with pytest.raises(CifakeError, match=message):
        train(data=str(built_dataset), output_dir=tmp_path / "runs" / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []  # no folder, no lock file


@pytest.mark.parametrize("verbose", [False, True])
def test_trainers_notice_about_checkpoint_times_shows_only_when_verbose(tmp_path, monkeypatch, verbose):
    import logging

    from transformers.trainer_utils import sort_checkpoints

    from modeling.training.train import _guarded

    monkeypatch.setenv("CIFAKE_VERBOSE", "1" if verbose else "0")
    for step in (10, 20):  # two checkpoints of one second: a short epoch's
        (tmp_path / f"checkpoint-{step}").mkdir()
        os.utime(tmp_path / f"checkpoint-{step}", (1_000_000, 1_000_000))
    shown = []
    handler = logging.Handler()
    handler.emit = lambda record: shown.append(record.getMessage())
    logger = logging.getLogger("transformers.trainer_utils")  # what reaches its handlers reaches the console
    logger.addHandler(handler)
    logging.Logger.warning_once.cache_clear()  # transformers says it once per process
    try:
        with _guarded(trainer=None, run=None, resuming=False):
            assert [Path(p).name for p in sort_checkpoints(tmp_path, use_mtime=True)] == ["checkpoint-10", "checkpoint-20"]
    finally:
        logger.removeHandler(handler)
    assert any("mtime may not be reliable" in line for line in shown) == verbose


def test_a_source_that_cannot_name_its_splits_is_scored_on_the_validation_images(tmp_path, built_dataset, monkeypatch):
    import modeling.training.train as train_module

    def cannot_say(path, *args, **kwargs):
        raise RuntimeError(f"cannot list the splits of {path}")

    monkeypatch.setattr(train_module, "get_dataset_split_names", cannot_say)
    result = train(data=str(built_dataset), output_dir=tmp_path / "run", num_train_epochs=1, per_device_train_batch_size=16)
    assert result.split == "validation"  # trained, then scored on the held-out images, as the report says
    report = json.loads(result.report.read_text())
    assert report["images"] == report["sizes"]["validation"] == 20


@pytest.mark.slow
def test_streaming_trains_from_the_folder(tmp_path, built_dataset):
    result = train(data=str(built_dataset), output_dir=tmp_path / "stream", num_train_epochs=1, per_device_train_batch_size=8, streaming=True)
    state = read_state(tmp_path / "stream")
    assert state["global_step"] == 7  # 54 streamed training images (6 held out) in batches of 8
    assert result.split == "validation" and result.metrics["support_fake"] + result.metrics["support_real"] == 6


@pytest.mark.slow
def test_two_processes_share_the_work_as_under_accelerate_launch(tmp_path, built_dataset):
    import shutil

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    out = tmp_path / "ddp"
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m", "cifake_cli", "train",
         "--data", str(built_dataset), "--output-dir", str(out), "--num_train_epochs", "2", "--per_device_train_batch_size", "8"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved the model to") == 1  # one process writes the model and the report
    state = read_state(out)
    assert state["epoch"] == 2 and state["global_step"] == 2 * 3  # 40 images / 2 processes / batch 8 = 3 steps
    assert json.loads((out / "report" / "report.json").read_text())["images"] == 40


def test_a_diverging_run_says_so_and_leaves_nothing_behind(tmp_path, built_dataset):
    # adam_epsilon=0 divides by zero for every weight whose gradient is zero: the weights become NaN.
    out = tmp_path / "run"
    with pytest.raises(CifakeError, match=r"Training diverged: .*(NaN|nan).* Lower --learning_rate \(this run's was "
                                          r"0.001; try 0.0001\) or undo the Trainer settings given "
                                          r"\(--per_device_train_batch_size, --adam_epsilon\)"):
        train(data=str(built_dataset), output_dir=out, num_train_epochs=2, per_device_train_batch_size=16, adam_epsilon=0)
    assert not out.exists()  # the same command, corrected, runs without --overwrite
    train(data=str(built_dataset), output_dir=out, num_train_epochs=1, per_device_train_batch_size=16)
    assert (out / "model.safetensors").is_file()


def test_a_run_cut_before_its_first_checkpoint_leaves_an_empty_folder_as_it_was(tmp_path, built_dataset, monkeypatch):
    from transformers import Trainer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train", interrupted)
    out = tmp_path / "mine"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        train(data=str(built_dataset), output_dir=out, num_train_epochs=1, per_device_train_batch_size=16)
    assert out.is_dir() and list(out.iterdir()) == []  # the user's empty folder stays, empty


def test_a_replacement_cut_before_its_first_checkpoint_leaves_only_the_old_run(tmp_path, built_dataset, monkeypatch):
    from transformers import Trainer

    from cifake_kit.outputs import beside

    out = tmp_path / "run"
    train(data=str(built_dataset), output_dir=out, num_train_epochs=1, per_device_train_batch_size=16)
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setattr(Trainer, "train", lambda self, *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        train(data=str(built_dataset), output_dir=out, num_train_epochs=1, per_device_train_batch_size=16, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == before and not beside(out).exists()


def _one_sided(tmp_path, fakes: int):
    """Real CIFAR-10 photos and `fakes` genuine GAN samples (from the kit's demo bundle), 20% drawn into test:
    with 2 samples or fewer no FAKE image lands in test."""
    import shutil

    from dataset_builder.build import import_folders
    from dataset_builder.demo import demo_folder

    bundle = demo_folder()
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    for photo in sorted((bundle / "real" / "cat").glob("*.jpg"))[:20]:
        shutil.copy(photo, tmp_path / "real" / photo.name)
    for sample in sorted((bundle / "generated" / "gan-sndcgan").glob("*.png"))[:fakes]:
        shutil.copy(sample, tmp_path / "fake" / sample.name)
    return import_folders([tmp_path / "real"], [str(tmp_path / "fake")], output_dir=tmp_path / f"data-{fakes}")


def test_a_split_of_one_label_is_said_plainly_and_gets_no_metric_that_needs_both(tmp_path):
    from cifake_cli.model import headline
    from modeling.publishing.card import render_model_card

    report = _one_sided(tmp_path, fakes=2)
    assert report.counts["test"]["FAKE"] == 0
    assert any("The test split holds no FAKE images (4 REAL)" in note for note in report.notes)
    result = train(data=str(report.output_dir), output_dir=tmp_path / "m", num_train_epochs=1, per_device_train_batch_size=8)
    metrics = result.metrics
    assert metrics["only_label"] == "REAL" and metrics["support_real"] == 4
    assert metrics["accuracy"] is None and metrics["roc_auc"] is None and metrics["f1_real"] is None
    assert 0.0 <= metrics["called_real"] <= 1.0
    line = headline(metrics)
    assert line.startswith("REAL images only, ") and "AUROC and accuracy need REAL and FAKE images" in line
    assert "accuracy 100" not in line
    card = render_model_card(tmp_path / "m", repo_id="me/m", dataset_id="me/data")
    assert "**The `test` split holds REAL images only**" in card and "model-index" not in card.split("---")[1]


def test_training_on_a_split_without_one_label_is_refused_before_anything_is_written(tmp_path):
    report = _one_sided(tmp_path, fakes=1)
    with pytest.raises(CifakeError, match=r"the validation images held out from train \(--validation_fraction\) holds no "
                                          r"FAKE images \(2 REAL\); a detector learns from both labels"):
        train(data=str(report.output_dir), output_dir=tmp_path / "m", num_train_epochs=1)
    assert not (tmp_path / "m").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MB file system (tmpfs, mounted where the test may), or None where mounting is not allowed."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5M", "tmpfs", str(folder)],
                                                   capture_output=True).returncode == 0
    yield folder if mounted else None
    if mounted:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)  # detached even while a file there is open


def test_a_full_disk_during_training_is_one_line_and_the_rerun_goes_on(tmp_path, built_dataset, small_disk, monkeypatch,
                                                                       capsys):
    import torch

    from cifake_cli import main

    if small_disk is None:  # no file system of our own: checkpoints go to a device that is always full
        real_save = torch.save
        monkeypatch.setattr(torch, "save", lambda obj, path, *a, **k: real_save(obj, "/dev/full", *a, **k)
                            if str(path).endswith("optimizer.pt") else real_save(obj, path, *a, **k))
    out = (small_disk or tmp_path) / "m"
    command = ["train", "--data", str(built_dataset), "--output-dir", str(out), "--num_train_epochs", "4",
               "--config", "conv2x32-dense1x256", "--per_device_train_batch_size", "32"]  # 3 MB a checkpoint: the second does not fit
    assert main(command) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert re.match(rf"cifake train: error: (No space left on device|Input/output error) \({re.escape(str(out))}\)\. ",
                    err[0]), err[0]
    if small_disk is not None:
        assert err[0].endswith("Run it again with --resume to continue from the last checkpoint.")


def test_torch_failing_to_write_is_the_os_error_it_is(small_disk):
    import errno

    import torch

    from modeling.training.train import _write_failures_as_os_errors

    # A full file system of our own where the test may mount one (ENOSPC); else a device that is always full,
    # on a file system with room, which reads as a failing disk (EIO). Either way torch raises RuntimeError.
    folder, target, code = ((small_disk, small_disk / "t.pt", errno.ENOSPC) if small_disk is not None else
                            (Path("/dev"), "/dev/full", errno.EIO))
    with pytest.raises(OSError) as raised:
        with _write_failures_as_os_errors(folder):
            torch.save(torch.zeros(4 << 20), target)  # 16 MB
    assert raised.value.errno == code and isinstance(raised.value.__cause__, RuntimeError)


def test_a_test_only_dataset_or_a_one_class_image_folder_gets_advice_that_fixes_it(tmp_path):
    import shutil

    from dataset_builder.build import import_folders
    from dataset_builder.demo import demo_folder

    bundle = demo_folder()
    for name, source in (("real", bundle / "real" / "cat"), ("fake", bundle / "generated" / "gan-sndcgan")):
        (tmp_path / name).mkdir()
        for path in sorted(source.glob("*.*g"))[:4]:
            shutil.copy(path, tmp_path / name / path.name)
    import_folders([tmp_path / "real"], [str(tmp_path / "fake")], output_dir=tmp_path / "test-only", test_fraction=1)
    with pytest.raises(CifakeError, match=r"has no train split \(it has test\): training needs one\. A test-only dataset "
                                          r"\(import-folder --test-fraction 1\) is for `cifake evaluate`") as raised:
        train(data=str(tmp_path / "test-only"), output_dir=tmp_path / "m", num_train_epochs=1)
    assert "--split" not in str(raised.value)
    folder = tmp_path / "pictures"
    shutil.copytree(tmp_path / "real", folder / "real")  # an image folder of one class
    with pytest.raises(CifakeError, match=r"labels come from its subfolders' names, and it has one kind only \(real\).*"
                                          r"folder named FAKE beside the REAL one"):
        train(data=str(folder), output_dir=tmp_path / "m", num_train_epochs=1)
    assert not (tmp_path / "m").exists()


def test_a_last_training_batch_of_one_image_is_left_out_not_a_crash(tmp_path, built_dataset):
    from modeling.data import load_pixels, stratified_split

    # batches of (training images - 1): cifake-forensic's batch norm cannot train on the lone last image, which
    # stopped the run with a ValueError
    train_images = len(stratified_split(load_pixels(str(built_dataset), "train", None), 0.1, seed=0)[0])
    result = train(data=str(built_dataset), output_dir=tmp_path / "m", config="cifake-forensic", num_train_epochs=2,
                   per_device_train_batch_size=train_images - 1)
    assert json.loads(result.report.read_text())["sizes"]["train"] == train_images
    assert read_state(tmp_path / "m")["global_step"] == 2  # one batch an epoch


def _accumulating_trainer(tmp_path, accumulation: int):
    """A `paper-best` trainer (no label smoothing: Trainer takes the model's own loss) over 8 random images,
    one optimizer step of them: 8 at once, or in `accumulation` micro-batches. Learning rate 0: the weights stay."""
    import numpy as np
    import torch

    from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
    from modeling.data import CifakePixels, CifakeTensorDataset
    from modeling.recipes import resolve_recipe
    from modeling.training.train import make_trainer

    _, config, training = resolve_recipe("paper-best")
    assert training["label_smoothing"] == 0
    torch.manual_seed(0)
    model = CifakeForImageClassification(CifakeConfig(**{**config, "dropout": 0.0}))
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (8, 3, 32, 32), dtype=np.uint8))
    data = CifakeTensorDataset(CifakePixels(images, torch.tensor([0, 1] * 4), torch.full((8,), -1), [], "test"))
    training = {**training, "epochs": 1, "batch_size": 8 // accumulation, "learning_rate": 0.0, "warmup_ratio": 0,
                "early_stopping_patience": 0}
    return make_trainer(model, CifakeImageProcessor(), data, data, tmp_path / str(accumulation), training,
                        gradient_accumulation_steps=accumulation, save_strategy="no", eval_strategy="no")


def test_with_gradient_accumulation_the_models_own_loss_is_a_mean_over_the_accumulated_batch(tmp_path):
    import torch

    trainer = _accumulating_trainer(tmp_path, 2)
    model, batch = trainer.model.eval(), trainer.data_collator(trainer.train_dataset.__getitems__([0, 1, 2, 3]))
    mean = torch.nn.functional.cross_entropy(model(pixel_values=batch["pixel_values"]).logits, batch["labels"])
    # Trainer passes the accumulated batch's size and takes the loss as normalised by it: 4 of 8 items here
    assert torch.isclose(trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(8)), mean * 4 / 8)
    assert torch.isclose(trainer.compute_loss(model, dict(batch)), mean)  # alone: the batch's mean
    # so the loss a run logs is the same whether a step's 8 images come at once or in 2 micro-batches
    losses = {}
    for accumulation in (1, 2):
        trainer = _accumulating_trainer(tmp_path, accumulation)
        trainer.train()
        losses[accumulation] = trainer.state.log_history[0]["loss"]
        assert trainer.state.global_step == 1
    assert losses[2] == pytest.approx(losses[1], rel=0.1)  # a mean per micro-batch would log twice as much
