"""What a kill leaves in an output folder: the old dataset or the new one, and a rerun that finishes.

"Kills" are exceptions raised at the kit's marked moments (nothing in those paths catches them),
or a real SIGKILL where the moment is inside a long loop.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset
from PIL import Image as PILImage

from cifake_kit import outputs
from cifake_kit.errors import CifakeError
from dataset_builder import export, generate
from dataset_builder.build import build_dataset, import_folders
from dataset_builder.export import WORK_DIR

from ..conftest import Killed


def _images(folder, count, seed):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):  # noise, not the output of any generator: these tests are about files
        PILImage.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _import(tmp_path, seed, overwrite=False):
    real, fake = _images(tmp_path / "real", 6, 1), _images(tmp_path / "fake", 6, 2)
    return import_folders([real], [f"gan={fake}"], output_dir=tmp_path / "out", seed=seed, overwrite=overwrite)


def _splits(out):
    ds = load_dataset(str(out))
    return {split: sorted(row["image"]["path"] for row in ds[split].cast_column("image", ds[split].features["image"]
                                                                                  .__class__(decode=False)))
            for split in ds}


def _die_after_first_shard(monkeypatch):
    real_write = generate.FakeStore.write

    def write_one_then_die(self, *args, **kwargs):
        if list(self.folder.glob("shard-*.arrow")):
            raise Killed
        real_write(self, *args, **kwargs)

    monkeypatch.setattr(generate.FakeStore, "write", write_one_then_die)


@pytest.mark.parametrize("after", [False, True], ids=["before-the-switch", "after-the-switch"])
def test_a_kill_at_the_switch_leaves_the_old_or_the_new_dataset_and_a_rerun_finishes(tmp_path, monkeypatch, kill_at,
                                                                                     after):
    out = tmp_path / "out"
    _import(tmp_path, seed=0)
    old = _splits(out)
    kill_at(outputs, "exchange", after=after)
    with pytest.raises(Killed):
        _import(tmp_path, seed=1, overwrite=True)
    monkeypatch.undo()
    # The folder is a whole dataset: the old one when cut before the exchange, the new one after it.
    now = _splits(out)
    assert (now != old) == after
    assert (out / "README.md").is_file() and set(os.listdir(out)) <= {"README.md", "data", WORK_DIR, outputs.SWITCH_FILE}
    beside = tmp_path / ".out.cifake-new"
    assert beside.is_dir()  # what the kill left beside it: the finished new copy, or the old one
    report = _import(tmp_path, seed=1, overwrite=True)  # the same command finishes
    assert not beside.exists() and sorted(os.listdir(out)) == ["README.md", "data"]
    assert _splits(out) == now if after else _splits(out) != old
    assert sum(sum(c.values()) for c in report.counts.values()) == 12


def _nothing_beside(monkeypatch, out):
    """Nothing can be moved beside `out` (a mount point, a read-only parent)."""
    real_rename = os.rename

    def rename(source, target):
        if Path(target) == outputs.beside(out):
            raise OSError(18, "Invalid cross-device link")
        real_rename(source, target)

    monkeypatch.setattr(export.os, "rename", rename)


def test_the_one_by_one_switch_is_finished_by_the_rerun(tmp_path, monkeypatch, kill_at):
    """Where nothing can be moved beside the folder, its two entries move one by one; a kill between the
    moves is finished by the rerun, not refused."""
    out = tmp_path / "out"
    _import(tmp_path, seed=0)
    _nothing_beside(monkeypatch, out)
    # Each entry moves aside, then the new one in: killed as the old README.md moves aside, after the new
    # data/ is in (os.replace also writes the import's own files: only this move is the switch's).
    kill_at(os, "replace", when=lambda source, target: Path(source) == out / "README.md")
    with pytest.raises(Killed):
        _import(tmp_path, seed=1, overwrite=True)
    monkeypatch.undo()
    assert (out / "README.md").is_file() and (out / "data").is_dir()  # cut midway: the new data/, the old card
    _nothing_beside(monkeypatch, out)
    _import(tmp_path, seed=1, overwrite=True)
    assert sorted(os.listdir(out)) == ["README.md", "data"]
    assert sum(len(paths) for paths in _splits(out).values()) == 12


def test_without_an_exchange_a_kill_between_the_two_renames_is_finished_by_the_rerun(tmp_path, monkeypatch, kill_at):
    out = tmp_path / "out"
    _import(tmp_path, seed=0)
    monkeypatch.setattr(outputs, "exchange", lambda first, second: False)  # not Linux, or a filesystem without it
    # The old dataset moved aside, the new one not yet in: killed there.
    kill_at(os, "rename", when=lambda source, target: Path(source) == outputs.beside(out))
    with pytest.raises(Killed):
        _import(tmp_path, seed=1, overwrite=True)
    monkeypatch.undo()
    old = outputs.beside(out, outputs.OLD)
    assert not out.exists() and (old / "README.md").is_file() and (outputs.beside(out) / outputs.SWITCH_FILE).is_file()
    with pytest.raises(CifakeError, match="already holds a CIFAKE dataset"):  # the rerun first completes the switch
        _import(tmp_path, seed=1)
    assert sorted(os.listdir(out)) == ["README.md", "data"] and not old.exists() and not outputs.beside(out).exists()
    assert sum(len(paths) for paths in _splits(out).values()) == 12


def test_an_interrupted_build_overwrite_resumes_with_the_same_command(tmp_path, build_kwargs, monkeypatch):
    out = tmp_path / "out"
    build_dataset(output_dir=out, **build_kwargs)
    old = _splits(out)
    _die_after_first_shard(monkeypatch)
    with pytest.raises(Killed):
        build_dataset(output_dir=out, overwrite=True, **{**build_kwargs, "seed": 7})
    monkeypatch.undo()
    assert _splits(out) == old  # the old dataset is still whole
    with pytest.raises(CifakeError, match=r"holds a CIFAKE dataset and an unfinished `cifake build` that replaces it\. "
                                          r"Run that command again with --overwrite to resume it"):
        build_dataset(output_dir=out, **{**build_kwargs, "seed": 7})
    report = build_dataset(output_dir=out, overwrite=True, **{**build_kwargs, "seed": 7})
    assert report.resumed == 8 and report.generated == 22  # the shard made before the kill is kept
    assert sorted(os.listdir(out)) == ["README.md", "data"]


def test_an_import_never_discards_an_unfinished_build(tmp_path, build_kwargs, monkeypatch):
    out = tmp_path / "out"
    _die_after_first_shard(monkeypatch)
    with pytest.raises(Killed):
        build_dataset(output_dir=out, **build_kwargs)
    monkeypatch.undo()
    shards = sorted((out / WORK_DIR / "fakes").glob("shard-*.arrow"))
    assert len(shards) == 1
    real, fake = _images(tmp_path / "real", 4, 1), _images(tmp_path / "fake", 4, 2)
    for overwrite in (False, True):
        with pytest.raises(CifakeError, match=r"holds an unfinished `cifake build`; nothing was changed\. Run that "
                                              r"command again to resume it, or delete .*\.cifake-build' to discard it"):
            import_folders([real], [str(fake)], output_dir=out, overwrite=overwrite)
    assert sorted((out / WORK_DIR / "fakes").glob("shard-*.arrow")) == shards
    assert json.loads((out / WORK_DIR / "settings.json").read_text())["job"] == "build"
    report = build_dataset(output_dir=out, **build_kwargs)  # and it still resumes
    assert report.resumed == 8


def test_a_build_that_fails_before_making_anything_leaves_no_trace(tmp_path, build_kwargs):
    not_a_pipeline = tmp_path / "not-a-pipeline"
    not_a_pipeline.mkdir()
    out = tmp_path / "out"
    with pytest.raises(CifakeError, match="has no model_index.json"):  # found only when generation starts
        build_dataset(output_dir=out, **{**build_kwargs, "generator": str(not_a_pipeline), "pipe": None})
    assert not out.exists()
    out.mkdir()  # a folder the user made stays, empty
    with pytest.raises(CifakeError, match="has no model_index.json"):
        build_dataset(output_dir=out, **{**build_kwargs, "generator": str(not_a_pipeline), "pipe": None})
    assert out.is_dir() and list(out.iterdir()) == []


def test_disk_full_is_one_line_and_the_rerun_resumes(tmp_path, monkeypatch, capsys):
    import errno

    from cifake_cli import main
    from dataset_builder import shards

    real, fake = _images(tmp_path / "real", 6, 1), _images(tmp_path / "fake", 6, 2)
    command = ["import-folder", "--real", str(real), "--fake", f"gan={fake}", "--output-dir", str(tmp_path / "out")]

    def full(self, piece, tables):
        path = self.path("train", piece)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(shards.ShardStore, "write_files", full)
    for _ in range(2):  # the rerun on a still-full disk says the same
        assert main(command) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("cifake import-folder: error: No space left on device (")
        assert "Free some disk space" in err[0] and "run the same command again" in err[0]
    monkeypatch.undo()
    assert main(command) == 0
    assert sum(len(paths) for paths in _splits(tmp_path / "out").values()) == 12
