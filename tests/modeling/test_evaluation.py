import json

import numpy as np
import pytest
import torch

from modeling.scoring.evaluation import PERTURBATIONS, evaluate_model, perturb
from modeling.scoring.report import scored_metrics


def test_metric_module_names_both_positive_classes():
    # 3 FAKE (0) and 2 REAL (1); one FAKE called REAL (P(FAKE) < 0.5); 0.5 itself is a FAKE verdict.
    metrics = scored_metrics(labels=[0, 0, 0, 1, 1], p_fake=[0.9, 0.5, 0.4, 0.2, 0.1])
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["precision_fake"] == 1.0 and metrics["recall_fake"] == pytest.approx(2 / 3)
    assert metrics["precision_real"] == pytest.approx(2 / 3) and metrics["recall_real"] == 1.0
    assert metrics["f1_fake"] == pytest.approx(0.8) and metrics["f1_real"] == pytest.approx(0.8)
    assert metrics["confusion_matrix"] == [[2, 1], [0, 2]]
    assert (metrics["support_fake"], metrics["support_real"]) == (3, 2)


def test_evaluate_writes_the_report_and_the_robustness_table(tmp_path, trained_model, toy_dataset, built_dataset):
    result = evaluate_model(trained_model, data=str(toy_dataset), split="test", output_dir=tmp_path / "eval",
                            robustness=True, cross_data=[str(built_dataset)])
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    trained = json.loads((trained_model / "report" / "report.json").read_text())
    assert report["metrics"]["accuracy"] == pytest.approx(trained["metrics"]["accuracy"])  # same model, same split
    assert report["images"] == 200 and "training_curves.png" in report["figures"]
    rows = json.loads((tmp_path / "eval" / "robustness.json").read_text())
    assert [r["condition"] for r in rows] == ["clean", *PERTURBATIONS, "data: cifake"]
    assert rows[-1]["images"] == 40
    by_name = {r["condition"]: r for r in rows}
    # The toy FAKE cue is a one-pixel colour checkerboard, the kind of high-frequency trace the paper's
    # CNN reads. Re-encoding, blurring or rescaling wipes it out and every fake passes as REAL; faint
    # noise leaves it alone.
    assert by_name["clean"]["accuracy"] >= 0.9
    for condition in ("jpeg q75", "blur r1.0", "rescale x0.5"):
        assert by_name[condition]["recall_fake"] <= 0.2 and by_name[condition]["recall_real"] >= 0.9, condition
    assert by_name["noise s2"]["recall_fake"] >= 0.9
    table = (tmp_path / "eval" / "robustness.md").read_text().splitlines()
    assert table[0].startswith("| condition | roc_auc | average_precision | accuracy |") and len(table) == 2 + len(rows)
    assert result.output_dir == tmp_path / "eval"


def test_default_output_folder_is_inside_the_model(trained_model, toy_dataset):
    result = evaluate_model(trained_model, data=str(toy_dataset), split="train")
    assert result.output_dir == trained_model / "eval" / f"{toy_dataset.name}-train"
    assert (result.output_dir / "confusion_matrix.png").is_file()


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_perturbations_change_pixels_but_not_shapes(sample_photos, name):
    kind, strength = PERTURBATIONS[name]
    images = torch.from_numpy(sample_photos[0][:8].transpose(0, 3, 1, 2).copy())
    out = perturb(images, kind, strength, seed=0)
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert not torch.equal(out, images)
    difference = (out.float() - images.float()).abs().mean()
    assert difference < 25, difference
    assert torch.equal(perturb(images, kind, strength, seed=0), out)  # deterministic
    if kind == "noise":
        assert abs(float((out.float() - images.float()).std()) - strength) < 0.35 * strength + 0.6


def test_stronger_perturbations_move_pixels_more(sample_photos):
    images = torch.from_numpy(sample_photos[0][:16].transpose(0, 3, 1, 2).copy())
    def change(kind, strength):
        return float((perturb(images, kind, strength).float() - images.float()).abs().mean())
    assert change("jpeg", 95) < change("jpeg", 50) < change("jpeg", 30)
    assert change("blur", 0.5) < change("blur", 1.0)
    assert change("rescale", 0.75) < change("rescale", 0.5)
    assert np.isclose(change("noise", 0.0), 0.0)


class _Payload:
    """Unpickling this makes a folder: proof that a pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("decoy", [False, True], ids=["bin only", "bin + empty decoy.safetensors"])
def test_pickled_weights_are_refused_unopened_everywhere(tmp_path, trained_model, toy_dataset, decoy):
    import pickle
    import shutil

    from cifake_kit.errors import CifakeError
    from modeling.inference.explain import explain
    from modeling.inference.predict import predict_command
    from modeling.publishing.hub import push_model
    from space.app import Detector

    folder = tmp_path / "model"
    shutil.copytree(trained_model, folder, ignore=shutil.ignore_patterns("checkpoint-*", "*.safetensors"))
    marker = tmp_path / "code-ran"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    if decoy:
        (folder / "decoy.safetensors").write_bytes(b"")
    message = r"holds its weights only as pickles \(pytorch_model.bin\), which can run code when loaded"
    image = trained_model / "report" / "confusion_matrix.png"
    for attempt in (lambda: evaluate_model(folder, data=str(toy_dataset), split="test", output_dir=tmp_path / "e"),
                    lambda: explain([image], folder, output_dir=tmp_path / "x"),
                    lambda: predict_command([image], folder),
                    lambda: push_model(folder, "me/model")):
        with pytest.raises(CifakeError, match=message):
            attempt()
    assert message.replace("\\", "") in Detector.load(folder).error
    assert not marker.exists()


def test_an_evaluation_follows_the_output_rules(tmp_path, trained_model, toy_dataset):
    from cifake_kit.errors import CifakeError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_text('{"my": "own report"}')
    with pytest.raises(CifakeError, match=r"already holds other files \(report.json\); nothing was written"):
        evaluate_model(trained_model, data=str(toy_dataset), output_dir=mine)
    assert (mine / "report.json").read_text() == '{"my": "own report"}'

    out = tmp_path / "eval"
    evaluate_model(trained_model, data=str(toy_dataset), output_dir=out, robustness=True)
    first = (out / "report.json").read_bytes()
    with pytest.raises(CifakeError, match="already holds an evaluation .*Pass --overwrite to replace it"):
        evaluate_model(trained_model, data=str(toy_dataset), split="train", output_dir=out)
    assert (out / "report.json").read_bytes() == first
    evaluate_model(trained_model, data=str(toy_dataset), split="train", output_dir=out, overwrite=True)
    assert json.loads((out / "report.json").read_text())["split"] == "train"
    assert not (out / "robustness.md").exists()  # the old evaluation's table went with it
    assert not list(out.glob(".cifake-evaluate*"))
    (out / ".cifake-evaluate.999999999").mkdir()  # left by an evaluation that was killed (no such process now)
    evaluate_model(trained_model, data=str(toy_dataset), split="train", output_dir=out, overwrite=True)
    assert not list(out.glob(".cifake-evaluate*"))

    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(CifakeError, match="is a file, not a folder"):
        evaluate_model(trained_model, data=str(toy_dataset), output_dir=afile)
    with pytest.raises(CifakeError, match="--batch-size must be at least 1, got 0"):
        evaluate_model(trained_model, data=str(toy_dataset), output_dir=tmp_path / "new", batch_size=0)
    assert not (tmp_path / "new").exists()


def test_a_missing_cross_data_folder_is_named_as_such_before_any_work(tmp_path, toy_dataset):
    from cifake_kit.errors import CifakeError

    with pytest.raises(CifakeError, match=r"Cannot open the dataset './nowhere' \(--cross-data\): there is no such folder "
                                          r"here, and it is no Hub dataset id .*Pass --cross-data with") as raised:
        evaluate_model(tmp_path / "no-model", data=str(toy_dataset), cross_data=["./nowhere"], output_dir=tmp_path / "e")
    assert "--data" not in str(raised.value) and not (tmp_path / "e").exists()
