import csv

import pytest

from cifake_kit.errors import CifakeError
from modeling.training import sweep as sweep_module
from modeling.training.sweep import COLUMNS, sweep


def test_sweep_trains_writes_tables_and_resumes(tmp_path, built_dataset, monkeypatch):
    out = tmp_path / "sweep"
    names = ["conv1x16", "conv2x32-dense1x64"]
    table = sweep(data=str(built_dataset), output_dir=out, topologies=names, num_train_epochs=1, per_device_train_batch_size=16)
    text = table.read_text()
    assert "2 of 36 topologies trained" in text and "**(best)**" in text
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["topology"] for r in rows] == names and list(rows[0]) == COLUMNS
    assert rows[0]["conv_filters"] == "16" and rows[0]["dense_units"] == "none"
    assert rows[1]["conv_filters"] == "32-32" and rows[1]["dense_units"] == "64"
    assert int(rows[0]["parameters"]) < int(rows[1]["parameters"])
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)

    def no_training(**kwargs):
        raise AssertionError(f"trained {kwargs['config']} again")

    monkeypatch.setattr(sweep_module, "train", no_training)
    sweep(data=str(built_dataset), output_dir=out, topologies=names, num_train_epochs=1, per_device_train_batch_size=16)
    # A run that finished before its row was written is read back, not trained again.
    (out / sweep_module.RESULTS).write_text((out / sweep_module.RESULTS).read_text().splitlines()[0] + "\n")
    sweep(data=str(built_dataset), output_dir=out, topologies=names, num_train_epochs=1, per_device_train_batch_size=16)
    assert [r["topology"] for r in csv.DictReader(open(out / "results.csv"))] == names


def test_sweep_refuses_unknown_names_and_foreign_folders(tmp_path, built_dataset):
    with pytest.raises(CifakeError, match=r"Unknown topologies \['conv4x8'\]"):
        sweep(data=str(built_dataset), output_dir=tmp_path / "s", topologies=["conv4x8"])
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "a.jpg").write_bytes(b"x")
    with pytest.raises(CifakeError, match="already holds other files"):
        sweep(data=str(built_dataset), output_dir=foreign, topologies=["conv1x16"])


@pytest.mark.parametrize("change", [{"num_train_epochs": 2}, {"seed": 1}, {"data": "other"}])
def test_a_sweep_with_other_data_or_settings_is_refused_not_read_as_done(tmp_path, built_dataset, toy_dataset, change):
    out = tmp_path / "sweep"
    first = {"data": str(built_dataset), "num_train_epochs": 1, "per_device_train_batch_size": 16, "seed": 0}
    table = sweep(output_dir=out, topologies=["conv1x16"], **first)
    assert f"Data: `{built_dataset.resolve()}`; seed 0, num train epochs 1, per device train batch size 16" in table.read_text()
    before = (out / "results.md").read_text()
    changed = {**first, **change, **({"data": str(toy_dataset)} if "data" in change else {})}
    with pytest.raises(CifakeError, match=rf"holds a sweep with other settings \({next(iter(change))}\).*choose another"):
        sweep(output_dir=out, topologies=["conv1x16"], **changed)
    assert (out / "results.md").read_text() == before
    # The same settings, the data named by another path, resume.
    sweep(output_dir=out, topologies=["conv1x16"], **{**first, "data": str(built_dataset / ".." / built_dataset.name)})


def test_bad_data_is_refused_before_anything_is_written_and_a_sweep_that_trained_nothing_blocks_nothing(
        tmp_path, built_dataset, monkeypatch):
    out = tmp_path / "sweep"
    empty = tmp_path / "empty"
    empty.mkdir()
    for data in (str(tmp_path / "nowhere"), str(empty)):
        with pytest.raises(CifakeError):
            sweep(data=data, output_dir=out, topologies=["conv1x16"], num_train_epochs=1)
        assert not out.exists()  # nothing written: the corrected command is not refused as "other settings"

    def cut(**kwargs):  # the first topology fails before it trains anything (e.g. killed while loading)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "train", cut)
    with pytest.raises(KeyboardInterrupt):
        sweep(data=str(built_dataset), output_dir=out, topologies=["conv1x16"], num_train_epochs=1)
    assert (out / sweep_module.SETTINGS).is_file()
    monkeypatch.undo()
    table = sweep(data=str(built_dataset), output_dir=out, topologies=["conv1x16"], num_train_epochs=2,
                  per_device_train_batch_size=16)  # other settings: nothing was trained under the first ones
    assert "num train epochs 2" in table.read_text()
