import errno
import json
import os

import pytest

from cifake_kit import outputs
from cifake_kit.errors import CifakeError
from cifake_kit.outputs import check_output_dir, require_same_settings, staged_files, write_json


def never(folder):
    raise AssertionError("asked about a folder that is missing or empty")


def test_missing_or_empty_folders_are_free(tmp_path):
    assert check_output_dir(tmp_path / "new", ours=never) is False
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", ours=never) is False


def test_a_file_or_a_foreign_folder_is_refused_untouched(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CifakeError, match=r"--output-dir '.*file' is a file, not a folder"):
        check_output_dir(tmp_path / "file", ours=never)
    folder = tmp_path / "thesis"
    folder.mkdir()
    for name in ("data", "notes.txt", "README.md"):
        (folder / name).write_text("mine")
    with pytest.raises(CifakeError, match=r"already holds other files \(notes.txt\); nothing was written"):
        check_output_dir(folder, ours=lambda f: False, kit_names=["data", "README.md"])
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data", "notes.txt"]
    assert all(p.read_text() == "mine" for p in folder.iterdir())


def test_earlier_output_of_the_same_command_is_reported(tmp_path):
    (tmp_path / "run.json").write_text("{}")
    assert check_output_dir(tmp_path, ours=lambda folder: (folder / "run.json").is_file()) is True


def test_same_settings_resume_other_settings_do_not(tmp_path):
    record = tmp_path / "run.json"
    settings = {"recipe": "paper-best", "training": {"epochs": 5, "batch_size": 128}, "shape": (1, 2)}
    require_same_settings(record, settings, what="a run")
    require_same_settings(record, settings, what="a run")  # a tuple stored as a list is still the same
    longer = {**settings, "training": {"epochs": 9, "batch_size": 128}}
    require_same_settings(record, longer, what="a run", may_change={"training.epochs"})
    assert json.loads(record.read_text())["training"]["epochs"] == 9  # the record follows the run
    other = {**settings, "recipe": "conv1x16", "training": {"epochs": 9, "batch_size": 64}}
    with pytest.raises(CifakeError, match=r"holds a run with other settings \(recipe, training.batch_size\).*--overwrite"):
        require_same_settings(record, other, what="a run", may_change={"training.epochs"})
    assert json.loads(record.read_text())["recipe"] == "paper-best"  # a refused run changes nothing


def test_json_is_written_whole(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no staging file left behind


TREE = {"kit.json": True, "card.md": lambda path: path.read_text() == "kit", "report": {"*.png": True},
        "eval": {"*": {"report.json": True}}, "checkpoint-*": True}


def lay_out(root, files):
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def test_the_users_files_are_found_at_every_depth(tmp_path):
    from cifake_kit.outputs import foreign_files

    lay_out(tmp_path, {"kit.json": "", "card.md": "kit", "report/a.png": "", "report/mine.txt": "",
                       "eval/test/report.json": "", "eval/test/notes.md": "", "eval/loose.txt": "",
                       "checkpoint-3/anything": "", "mine/deep/x": ""})
    assert foreign_files(tmp_path, TREE) == ["eval/loose.txt", "eval/test/notes.md", "mine", "report/mine.txt"]
    (tmp_path / "card.md").write_text("the user's")
    assert "card.md" in foreign_files(tmp_path, TREE)


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path, deep_folder):
    from cifake_kit.outputs import foreign_files

    (deep_folder / "mine.txt").write_text("x")
    assert foreign_files(tmp_path, {"deep": {"d": {"d": {}}}}) == ["deep/d/d/d"]
    levels = {}
    rules = levels
    for _ in range(1200):
        rules["d"] = {}
        rules = rules["d"]
    assert foreign_files(tmp_path, {"deep": levels}) == ["deep/" + "d/" * 1200 + "mine.txt"]


def test_keep_foreign_moves_the_users_files_to_their_places_and_removing_keeps_them(tmp_path):
    from cifake_kit.outputs import foreign_files, keep_foreign, remove_kit_files

    old, new = tmp_path / "old", tmp_path / "new"
    lay_out(old, {"kit.json": "old", "card.md": "mine", "card.user.md": "earlier", "report/a.png": "old",
                  "report/mine.txt": "r", "eval/test/notes.md": "n", "mine/deep/x": "x"})
    lay_out(new, {"kit.json": "new", "card.md": "kit", "report/a.png": "new"})
    renamed = keep_foreign(old, new, TREE)
    assert renamed == [("card.md", "card.user-2.md")]  # the earlier card.user.md moved first, to its own place
    assert {p: (new / p).read_text() for p in ("card.md", "card.user.md", "card.user-2.md", "report/mine.txt",
                                               "eval/test/notes.md", "mine/deep/x", "kit.json", "report/a.png")} == {
        "card.md": "kit", "card.user.md": "earlier", "card.user-2.md": "mine", "report/mine.txt": "r",
        "eval/test/notes.md": "n", "mine/deep/x": "x", "kit.json": "new", "report/a.png": "new"}
    assert foreign_files(old, TREE) == []
    remove_kit_files(new, TREE)
    assert sorted(str(p.relative_to(new)) for p in new.rglob("*") if p.is_file()) == [
        "card.user-2.md", "card.user.md", "eval/test/notes.md", "mine/deep/x", "report/mine.txt"]


def test_staged_files_replace_the_set_whole_or_not_at_all(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "report.json").write_text("old")
    (out / "old-only.png").write_text("old")
    (out / "notes.txt").write_text("mine")
    (out / ".stage.999999999").mkdir()  # left by a run that was killed: no such process now
    (out / f".stage.{os.getpid()}").mkdir()  # left by a killed run with this PID (a container's PID 1, run after run)
    names = ["report.json", "old-only.png", "figure.png"]
    with pytest.raises(RuntimeError), staged_files(out, ".stage", names, last="report.json") as staging:
        (staging / "report.json").write_text("new")
        raise RuntimeError("cut short")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "old-only.png", "report.json"]
    assert (out / "report.json").read_text() == "old"
    with staged_files(out, ".stage", names, last="report.json") as staging:
        (staging / "report.json").write_text("new")
        (staging / "figure.png").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["figure.png", "notes.txt", "report.json"]
    assert (out / "report.json").read_text() == "new" and (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EBUSY])
def test_a_switch_that_cannot_happen_here_is_one_line_when_finished_later_too(tmp_path, monkeypatch, code):
    """A folder that cannot be exchanged (a mount point, another filesystem): the switch a rerun finishes says so too."""
    out, new = tmp_path / "out", outputs.beside(tmp_path / "out")
    out.mkdir()
    new.mkdir()
    (new / "model.bin").write_text("new")
    (new / outputs.SWITCH_FILE).write_text("{}")  # a complete successor, marked: a cut switch

    def refuse(first, second):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(outputs, "exchange", refuse)
    with pytest.raises(CifakeError, match=r"The new folder is complete in .* but cannot take the place of .* Move its "):
        outputs.finish_cut_switch(out, {})
    assert (new / "model.bin").read_text() == "new" and out.is_dir()
