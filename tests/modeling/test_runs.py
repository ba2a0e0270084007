"""A training run's folder under kills, damage and --overwrite: the old model or the new one, never
neither; a resume from the newest whole checkpoint; the user's own files never deleted.

"Kills" are exceptions raised at the kit's marked moments (a BaseException no handler catches).
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from cifake_kit import outputs
from cifake_kit.errors import CifakeError
from cifake_kit.outputs import FolderLock
from modeling import CifakeConfig
from modeling.layout import RUN_FILE
from modeling.training import runs
from modeling.training import train as train_module
from modeling.training.train import train

from ..conftest import Killed

SMALL = {"num_train_epochs": 1, "per_device_train_batch_size": 16, "seed": 0}


def test_a_replacement_marked_to_switch_is_no_longer_pending(tmp_path):
    """Complete and marked, it is put in place by any rerun: the hint must not send the user to --resume it."""
    out = tmp_path / "run"
    out.mkdir()
    runs._make_replacement(runs.beside(out), out)
    assert runs.pending_replacement(out) == runs.beside(out)
    (runs.beside(out) / outputs.SWITCH_FILE).write_text("{}")
    assert runs.pending_replacement(out) is None


@pytest.fixture
def old_run(tmp_path, built_dataset):
    """A finished run of the paper's CNN, with a user's own files in its folder."""
    out = tmp_path / "model"
    train(data=str(built_dataset), output_dir=out, **SMALL)
    (out / "notes.txt").write_text("my notes")
    (out / "plots").mkdir()
    (out / "plots" / "mine.png").write_bytes(b"png")
    return out


def recipe(folder):
    return json.loads((folder / RUN_FILE).read_text())["recipe"]


def whole_model(folder):
    """The folder loads as a model (what `from_pretrained` needs is all there)."""
    from modeling.inference.core import load_model

    return load_model(folder, device="cpu")[0]


def user_files_kept(folder):
    notes, plot = folder / "notes.txt", folder / "plots" / "mine.png"
    return notes.is_file() and notes.read_text() == "my notes" and plot.is_file() and plot.read_bytes() == b"png"


def test_overwrite_keeps_the_old_model_until_the_new_one_is_complete(old_run, built_dataset, monkeypatch):
    from transformers import Trainer

    real_save = Trainer._save_checkpoint

    def save_then_die(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        raise Killed

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_die)  # killed right after the first checkpoint
    with pytest.raises(Killed):
        train(data=str(built_dataset), output_dir=old_run, config="conv1x16", overwrite=True, **SMALL)
    monkeypatch.undo()
    assert recipe(old_run) == "paper-best" and whole_model(old_run) is not None and user_files_kept(old_run)
    with pytest.raises(CifakeError, match=r"holds a training run and an unfinished replacement of it .*--overwrite --resume"):
        train(data=str(built_dataset), output_dir=old_run, config="conv1x16", **SMALL)

    result = train(data=str(built_dataset), output_dir=old_run, config="conv1x16", overwrite=True, resume=True, **SMALL)
    assert result.output_dir == old_run and result.report == old_run / "report" / "report.json"
    assert recipe(old_run) == "conv1x16" and whole_model(old_run).config.conv_filters == [16]
    assert user_files_kept(old_run) and not runs.beside(old_run).exists()
    assert not (old_run / runs.REPLACEMENT_FILE).exists()
    report = json.loads(result.report.read_text())
    assert report["model"] == str(old_run) and report["best_checkpoint"].startswith("checkpoint-")
    state = json.loads((old_run / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] == str(old_run / report["best_checkpoint"])  # where it is now


@pytest.mark.parametrize("moment", ["before the exchange", "after the exchange", "removing the old run"])
def test_a_kill_during_the_switch_leaves_one_whole_model_and_the_next_run_finishes_it(
        old_run, built_dataset, monkeypatch, kill_at, moment):
    if moment == "removing the old run":  # killed midway through deleting it: some of its files gone
        import types

        def rmtree_cut(path, *args, **kwargs):
            if Path(path) != runs.beside(old_run):
                return shutil.rmtree(path, *args, **kwargs)
            (Path(path) / "config.json").unlink()
            raise Killed

        monkeypatch.setattr(outputs, "shutil", types.SimpleNamespace(rmtree=rmtree_cut))
    else:
        kill_at(outputs, "exchange", after=moment == "after the exchange")
    with pytest.raises(Killed):
        train(data=str(built_dataset), output_dir=old_run, config="conv1x16", overwrite=True, **SMALL)
    monkeypatch.undo()
    assert recipe(old_run) == ("paper-best" if moment == "before the exchange" else "conv1x16")
    assert whole_model(old_run) is not None
    assert user_files_kept(old_run) or user_files_kept(runs.beside(old_run))  # moved over last: never lost
    # The next command on the folder first completes the switch: here it finds the new run in place.
    with pytest.raises(CifakeError, match="already holds a training run"):
        train(data=str(built_dataset), output_dir=old_run, config="conv1x16", **SMALL)
    assert recipe(old_run) == "conv1x16" and user_files_kept(old_run) and not runs.beside(old_run).exists()
    assert not (old_run / runs.REPLACEMENT_FILE).exists()


def test_without_an_exchange_the_two_renames_are_finished_by_the_next_run(old_run, built_dataset, monkeypatch, kill_at):
    monkeypatch.setattr(outputs, "exchange", lambda first, second: False)  # not Linux, or a filesystem without it
    # The old run moved aside, the new one not yet in: killed there.
    kill_at(os, "rename", when=lambda source, target: Path(source) == runs.beside(old_run))
    (old_run / "zzz.txt").write_text("sorts after the kit's files")
    with pytest.raises(Killed):
        train(data=str(built_dataset), output_dir=old_run, config="conv1x16", overwrite=True, **SMALL)
    monkeypatch.undo()
    # Without an exchange the switch has one moment with no run in place (the old one aside, whole).
    assert not old_run.exists() and recipe(runs.beside(old_run, ".cifake-old")) == "paper-best"
    monkeypatch.setattr(outputs, "exchange", lambda first, second: False)
    with pytest.raises(CifakeError, match="already holds a training run"):
        train(data=str(built_dataset), output_dir=old_run, **SMALL)
    assert recipe(old_run) == "conv1x16" and user_files_kept(old_run) and (old_run / "zzz.txt").is_file()
    assert not runs.beside(old_run).exists() and not runs.beside(old_run, ".cifake-old").exists()


def test_overwrite_starts_again_and_says_so_when_an_attempt_was_cut(old_run, built_dataset, monkeypatch, kill_at,
                                                                    capsys):
    kill_at(train_module, "finish")  # the last step of a run: the switch
    with pytest.raises(Killed):
        train(data=str(built_dataset), output_dir=old_run, config="conv1x16", overwrite=True, **SMALL)
    monkeypatch.undo()
    capsys.readouterr()
    train(data=str(built_dataset), output_dir=old_run, config="conv2x32", overwrite=True, **SMALL)
    assert "starting the replacement of" in capsys.readouterr().err
    assert recipe(old_run) == "conv2x32" and user_files_kept(old_run)


def test_overwrite_through_a_link_replaces_the_folder_it_points_to(old_run, built_dataset, tmp_path):
    link = tmp_path / "latest"
    link.symlink_to(old_run, target_is_directory=True)
    train(data=str(built_dataset), output_dir=link, config="conv1x16", overwrite=True, **SMALL)
    assert link.is_symlink() and recipe(link) == "conv1x16" and recipe(old_run) == "conv1x16"
    assert user_files_kept(old_run)


def test_a_second_train_on_a_folder_in_use_is_refused(old_run, built_dataset):
    lock = FolderLock()
    lock.hold(old_run)  # as a `cifake train` running on it now holds it
    try:
        with pytest.raises(CifakeError, match="is being written by another cifake command running now"):
            train(data=str(built_dataset), output_dir=old_run, overwrite=True, **SMALL)
    finally:
        lock.release()
    assert not runs.beside(old_run).exists() and recipe(old_run) == "paper-best"


def test_overwrite_is_refused_where_the_folders_cannot_be_swapped(old_run, built_dataset, monkeypatch):
    monkeypatch.chdir(old_run / "plots")
    with pytest.raises(CifakeError, match="--overwrite replaces the folder .* and this command runs inside it"):
        train(data=str(built_dataset), output_dir=old_run, overwrite=True, **SMALL)
    monkeypatch.chdir(old_run.parent)
    monkeypatch.setattr(runs.os.path, "ismount", lambda path: Path(path) == old_run)
    with pytest.raises(CifakeError, match="is a mount point .*Pass a folder inside it as --output-dir"):
        train(data=str(built_dataset), output_dir=old_run, overwrite=True, **SMALL)
    assert not runs.beside(old_run).exists() and recipe(old_run) == "paper-best"


def test_the_kits_leftovers_beside_a_run_are_cleared_and_others_refused(old_run, built_dataset):
    new = runs.beside(old_run)
    (new / "checkpoint-3").mkdir(parents=True)  # a replacement cut while it was removed: its state file already gone
    runs.beside(old_run, ".cifake-new.making").mkdir()  # one cut while it was made
    train(data=str(built_dataset), output_dir=old_run, config="conv1x16", overwrite=True, **SMALL)
    assert recipe(old_run) == "conv1x16" and not new.exists()
    assert not runs.beside(old_run, ".cifake-new.making").exists()
    new.mkdir()
    (new / "thesis.tex").write_text("not the kit's")
    with pytest.raises(CifakeError, match="is where the kit trains a replacement of .* but it holds other files"):
        train(data=str(built_dataset), output_dir=old_run, overwrite=True, **SMALL)
    assert (new / "thesis.tex").read_text() == "not the kit's"


def checkpoints(folder):
    return sorted((p for p in folder.glob("checkpoint-*")), key=lambda p: int(p.name.split("-")[1]))


@pytest.fixture
def three_checkpoints(tmp_path, built_dataset):
    out = tmp_path / "run"
    train(data=str(built_dataset), output_dir=out, num_train_epochs=3, per_device_train_batch_size=16, seed=0)
    # Keep the last three epochs' checkpoints (save_total_limit keeps the best and the last).
    found = checkpoints(out)
    assert len(found) >= 2
    return out, found


@pytest.mark.parametrize("damage", ["trainer_state.json missing", "model.safetensors cut short",
                                    "rng_state.pth tampered", "optimizer.pt not a checkpoint"])
def test_resume_uses_the_newest_whole_checkpoint_and_says_which(three_checkpoints, built_dataset, capsys, damage):
    out, found = three_checkpoints
    newest, previous = found[-1], found[-2]
    file = damage.split()[0]
    if damage.endswith("missing"):
        (newest / file).unlink()
    elif damage.endswith("cut short"):
        data = (newest / file).read_bytes()
        (newest / file).write_bytes(data[: len(data) // 2])
    elif damage.endswith("tampered"):
        torch.save({"python": "not a state"}, newest / file)  # loads, but holds no random-number state
    else:
        (newest / file).write_bytes(b"\x80\x04K\x01.")  # a pickle of the integer 1: no optimizer state either
    capsys.readouterr()
    train(data=str(built_dataset), output_dir=out, num_train_epochs=4, per_device_train_batch_size=16, seed=0, resume=True)
    err = capsys.readouterr().err
    assert f"removed {newest.name}: {file}" in err and f"resuming from {previous.name}" in err
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["epoch"] == 4


def test_no_whole_checkpoint_is_one_error_that_names_each(three_checkpoints, built_dataset):
    out, found = three_checkpoints
    for checkpoint in found:
        (checkpoint / "scheduler.pt").unlink()
    names = "; ".join(f"{p.name}: scheduler.pt is missing" for p in reversed(found))
    with pytest.raises(CifakeError, match=f"No checkpoint in .* can be resumed from \\({names}\\)"):
        train(data=str(built_dataset), output_dir=out, num_train_epochs=4, per_device_train_batch_size=16, seed=0, resume=True)
    assert checkpoints(out) == found  # nothing removed when nothing can be used


def test_a_checkpoint_that_would_run_code_is_never_unpickled(three_checkpoints, built_dataset, tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(tmp_path / "code-ran"),)

    out, found = three_checkpoints
    (found[-1] / "rng_state.pth").write_bytes(pickle.dumps(Payload()))
    train(data=str(built_dataset), output_dir=out, num_train_epochs=4, per_device_train_batch_size=16, seed=0, resume=True)
    assert not (tmp_path / "code-ran").exists()


def test_a_model_too_large_for_memory_is_refused_before_it_is_allocated(tmp_path, built_dataset):
    # 100000 filters: a 1.4-billion-parameter dense layer and 90 M activations per image (about 70 GB to train).
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import resource
        from cifake_kit.errors import CifakeError
        from modeling.training.train import train
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            train(data={str(built_dataset)!r}, output_dir={str(tmp_path / 'big')!r}, config='{{"conv_filters": [100000]}}')
        except CifakeError as err:
            print(err)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    message, grown_mb = result.stdout.strip().splitlines()[-2:]
    assert re.search(r"The custom model \([\d,]{13} parameters, [\d,]{11} activations per image\) needs about "
                     r"[\d,.]+ GB to train 128 images at a time, more than the [\d,.]+ GB free here; nothing was "
                     r"allocated. (Its weights, gradients and optimiser state alone take about [\d,.]+ GB, whatever the batch size. )?"
                     r"Use fewer or smaller layers", message), message + result.stderr[-2000:]
    assert int(grown_mb) < 300
    assert not (tmp_path / "big").exists()


def test_a_config_edited_to_ask_for_more_than_its_weights_is_refused_from_the_headers(tmp_path, trained_model):
    from modeling.inference.core import load_model

    folder = tmp_path / "edited"
    shutil.copytree(trained_model, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    config = json.loads((folder / "config.json").read_text())
    config["conv_filters"] = [100000, 32]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CifakeError, match=r"config.json and model.safetensors disagree \(cifake.encoder.blocks.0.layers.0"
                                          r".convolution.weight is \[32, 3, 3, 3\] in the file but \[100000, 3, 3, 3\]"):
        load_model(folder, device="cpu")


def test_scoring_more_images_at_once_than_fit_names_a_batch_size_that_does(trained_model, toy_dataset, tmp_path,
                                                                          monkeypatch):
    from modeling import memory
    from modeling.scoring import evaluation

    found = memory.footprint(whole_model(trained_model).config)
    room = found.inference_bytes(100)  # free memory for 100 images at a time
    monkeypatch.setattr(memory, "free_bytes", lambda device=None: room)
    with pytest.raises(CifakeError, match=r"to score 1024 images at a time, more than the .* free here; nothing was "
                                          r"allocated. Pass --batch-size 100 or less"):
        evaluation.evaluate_model(trained_model, data=str(toy_dataset), output_dir=tmp_path / "e", batch_size=1024)
    evaluation.evaluate_model(trained_model, data=str(toy_dataset), output_dir=tmp_path / "e", batch_size=100)


@pytest.mark.slow
def test_a_real_sigkill_during_an_overwrite_leaves_the_old_model_and_the_rerun_finishes(old_run, built_dataset):
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "cifake_cli", "train", "--data", str(built_dataset), "--output-dir", str(old_run),
               "--config", "conv1x16", "--per_device_train_batch_size", "8", "--overwrite"]
    process = subprocess.Popen([*command, "--num_train_epochs", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    replacement = runs.beside(old_run)
    deadline = time.monotonic() + 300
    while not list(replacement.glob("checkpoint-*/trainer_state.json")):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert recipe(old_run) == "paper-best" and whole_model(old_run) is not None and user_files_kept(old_run)
    finished = subprocess.run([*command, "--num_train_epochs", "2", "--resume"], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "resuming from checkpoint-" in finished.stderr
    assert recipe(old_run) == "conv1x16" and user_files_kept(old_run) and not replacement.exists()


def test_no_smaller_batch_is_advised_where_the_model_itself_takes_most_of_the_memory(monkeypatch):
    from modeling import memory

    config = CifakeConfig(conv_filters=[8], dense_units=[4096])  # weights and optimiser state dominate
    found = memory.footprint(config)
    have = found.training_bytes(2)  # by the estimate, 2 images at a time just fit
    assert found.training_bytes(0) > have / 2
    monkeypatch.setattr(memory, "free_bytes", lambda device=None: have)
    with pytest.raises(CifakeError, match=r"to train 128 images at a time, .* Its weights, gradients and optimiser state "
                                          r"alone take about [\d.]+ GB, whatever the batch size. Use fewer") as err:
        memory.check_fits(config, 128, training=True)
    assert "--batch-size" not in str(err.value)
    memory.check_fits(config, 2, training=True)  # what fits is not refused


def test_a_batch_size_of_one_is_not_advised_as_one_or_less(monkeypatch):
    from modeling import memory

    config = CifakeConfig(conv_filters=[2048], conv_padding="same", dense_units=[])  # activations dominate
    found = memory.footprint(config)
    monkeypatch.setattr(memory, "free_bytes", lambda device=None: found.inference_bytes(1))
    with pytest.raises(CifakeError, match=r"Pass --batch-size 1\.$"):
        memory.check_fits(config, 64, training=False)


@pytest.mark.parametrize("edit, message", [
    ({"size": {"shortest_edge": 4096}, "crop_size": {"height": 4096, "width": 4096}},
     r"preprocessor_config.json sets size \{'shortest_edge': 4096\}, but the model takes 32x32 pictures"),
    ({"crop_size": {"height": 4096, "width": 4096}}, r"sets crop_size \{'height': 4096, 'width': 4096\}"),
    ({"do_center_crop": False}, "sets do_center_crop False"),
    ({"image_processor_type": "ViTImageProcessor", "auto_map": None}, "names a ViTImageProcessor, not the kit's"),
])
def test_a_processor_that_disagrees_with_the_model_is_refused_by_every_command(tmp_path, trained_model, toy_dataset,
                                                                             edit, message):
    from modeling.inference.core import load_model
    from modeling.inference.predict import predict_command
    from modeling.scoring.evaluation import evaluate_model

    folder = tmp_path / "edited"
    shutil.copytree(trained_model, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    settings.update(edit)
    (folder / "preprocessor_config.json").write_text(json.dumps({k: v for k, v in settings.items() if v is not None}))
    with pytest.raises(CifakeError, match=message):
        load_model(folder, device="cpu")
    with pytest.raises(CifakeError, match=message):
        evaluate_model(folder, data=str(toy_dataset), output_dir=tmp_path / "e")
    with pytest.raises(CifakeError, match=message):
        predict_command([str(folder / "config.json")], str(folder), out=lambda line: None, note=lambda line: None)


def test_overwrite_keeps_the_users_files_inside_the_kits_own_folders(old_run, built_dataset):
    evaluation = next((old_run / "eval").iterdir()) if (old_run / "eval").is_dir() else old_run / "eval" / "test-data"
    mine = {"report/mine.txt": "report notes", "eval/loose.txt": "eval notes", f"{evaluation.relative_to(old_run)}/"
            "keep.md": "my reading of it", "runs/notes.txt": "tb notes", "onnx/how.md": "how I exported it"}
    for relative, text in mine.items():
        (old_run / relative).parent.mkdir(parents=True, exist_ok=True)
        (old_run / relative).write_text(text)
    train(data=str(built_dataset), output_dir=old_run, config="conv1x16", overwrite=True, **SMALL)
    assert recipe(old_run) == "conv1x16" and user_files_kept(old_run)
    assert {relative: (old_run / relative).read_text() for relative in mine} == mine
    assert json.loads((old_run / "report" / "report.json").read_text())["recipe"] == "conv1x16"  # the new run's own
