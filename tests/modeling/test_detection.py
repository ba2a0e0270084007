"""The detection metrics against scikit-learn on fixed arrays, and the report fields they feed."""

import csv
import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, roc_auc_score

from modeling import CifakeConfig
from modeling.scoring.detection import PREDICTION_COLUMNS, breakdown, choose_threshold
from modeling.scoring.report import scored_metrics

FAKE, REAL = 0, 1


def _scores(n=400, seed=0, separation=1.0):
    """Labels (FAKE=0, REAL=1) and P(FAKE) scores that separate them partly."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    logits = rng.normal(0.0, 1.0, n) + np.where(labels == FAKE, separation, -separation)
    return labels, 1.0 / (1.0 + np.exp(-logits))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_average_precision_match_sklearn_with_fake_positive(seed):
    labels, p_fake = _scores(seed=seed)
    metrics = scored_metrics(labels, p_fake)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels == FAKE, p_fake), abs=1e-12)
    assert metrics["average_precision"] == pytest.approx(average_precision_score(labels == FAKE, p_fake), abs=1e-12)
    assert 0.6 < metrics["roc_auc"] < 0.99  # partly separable: neither chance nor perfect
    # Scoring REAL instead of FAKE would flip the ROC AUC.
    assert scored_metrics(labels, 1 - p_fake)["roc_auc"] == pytest.approx(1 - metrics["roc_auc"])


def test_ece_and_reliability_bins_match_sklearns_calibration_curve():
    labels, p_fake = _scores(n=1000, seed=3, separation=0.7)
    metrics = scored_metrics(labels, p_fake)
    fake_share, mean_score = calibration_curve(labels == FAKE, p_fake, n_bins=15, strategy="uniform")
    counts = np.array([b["count"] for b in metrics["reliability"]])
    assert counts.sum() == 1000
    assert [b["fake_share"] for b in metrics["reliability"]] == pytest.approx(fake_share)
    assert [b["mean_score"] for b in metrics["reliability"]] == pytest.approx(mean_score)
    assert metrics["ece"] == pytest.approx(np.sum(counts / 1000 * np.abs(fake_share - mean_score)))
    assert metrics["brier"] == pytest.approx(np.mean((p_fake - (labels == FAKE)) ** 2))
    # A calibrated score (the true probability of FAKE) has a small ECE; a pushed one does not.
    calibrated = scored_metrics(labels, p_fake)["ece"]
    overconfident = scored_metrics(labels, np.clip((p_fake - 0.5) * 3 + 0.5, 0, 1))["ece"]
    assert overconfident > calibrated + 0.05


def test_accuracy_at_a_threshold_counts_fake_at_or_above_it():
    labels = np.array([FAKE, FAKE, REAL, REAL, FAKE])
    p_fake = np.array([0.9, 0.4, 0.4, 0.1, 0.3])
    assert scored_metrics(labels, p_fake, 0.5)["accuracy_at_threshold"] == pytest.approx(3 / 5)
    at_04 = scored_metrics(labels, p_fake, 0.4)
    assert at_04["accuracy_at_threshold"] == pytest.approx(3 / 5)  # 0.4 REAL now called FAKE, 0.4 FAKE caught
    assert at_04["balanced_accuracy_at_threshold"] == pytest.approx((2 / 3 + 1 / 2) / 2)


@pytest.mark.parametrize("seed", [0, 4, 5])
def test_chosen_threshold_has_the_best_balanced_accuracy_of_all_cut_offs(seed):
    labels, p_fake = _scores(n=300, seed=seed, separation=0.8)
    p_fake = p_fake * 0.5  # every score below 0.5: at 0.5 nothing is called FAKE
    is_fake = labels == FAKE

    def balanced(cut):
        called = p_fake >= cut
        return (called[is_fake].mean() + (~called[~is_fake]).mean()) / 2

    chosen = choose_threshold(labels, p_fake)
    best = max(balanced(cut) for cut in np.unique(p_fake))
    assert balanced(chosen) == pytest.approx(best)
    assert balanced(chosen) > balanced(0.5) + 0.1


@pytest.mark.parametrize("p_fake", [[0.0, 0.0, 0.0, 0.0], [0.3, 0.3, 0.3, 0.3], [0.1, 0.2, 0.8, 0.9]])
def test_a_model_that_separates_nothing_keeps_one_half(p_fake):
    # A collapsed model (every score the same, here 0.0 where softmax underflowed) or one that ranks the labels
    # backwards: no cut-off beats chance, and a cut at 0.0 would be stored as an invalid fake_threshold.
    assert choose_threshold(np.array([FAKE, FAKE, REAL, REAL]), np.array(p_fake)) == 0.5


def test_a_best_cut_at_a_score_of_one_is_stored_below_one_and_calls_the_same_images_fake():
    labels, p_fake = np.array([FAKE, FAKE, REAL, REAL]), np.array([1.0, 1.0, 0.9999, 0.2], dtype=np.float32)
    chosen = choose_threshold(labels, p_fake)
    assert 0.0 < chosen < 1.0
    CifakeConfig(fake_threshold=chosen)  # a valid config
    assert ((p_fake >= chosen) == (labels == FAKE)).all()


def test_a_model_balanced_at_one_half_keeps_it_and_one_class_falls_back_to_it():
    labels = np.array([FAKE, FAKE, REAL, REAL])
    assert choose_threshold(labels, np.array([0.9, 0.5, 0.2, 0.1])) == 0.5
    assert choose_threshold(np.array([FAKE, FAKE]), np.array([0.2, 0.3])) == 0.5
    one_class = scored_metrics([FAKE, FAKE], [0.2, 0.9])
    assert one_class["roc_auc"] is None and one_class["accuracy_at_threshold"] == 0.5


def test_breakdown_scores_each_generator_against_all_real_images():
    labels, p_fake = _scores(n=600, seed=6)
    rng = np.random.default_rng(7)
    generators = np.where(labels == FAKE, rng.choice(["gan:a", "ddpm:b", "ddpm:c"], len(labels)), None)
    p_fake = np.where(generators == "gan:a", np.clip(p_fake + 0.3, 0, 1), p_fake)  # gan:a is easy to catch
    classes = rng.integers(0, 3, len(labels))
    groups = breakdown(labels, p_fake, 0.4, list(generators), classes, ["cat", "dog", "ship"])
    rows = {row["generator_id"]: row for row in groups["per_generator"]}
    assert sorted(rows) == ["ddpm:b", "ddpm:c", "gan:a"]
    real = labels == REAL
    for name, row in rows.items():
        mine = generators == name
        assert row["images"] == mine.sum()
        pair = mine | real
        assert row["roc_auc_vs_real"] == pytest.approx(roc_auc_score(labels[pair] == FAKE, p_fake[pair]))
        assert row["recall_fake"] == pytest.approx(np.mean(p_fake[mine] >= 0.5))
        assert row["recall_fake_at_threshold"] == pytest.approx(np.mean(p_fake[mine] >= 0.4))
    assert rows["gan:a"]["roc_auc_vs_real"] > rows["ddpm:b"]["roc_auc_vs_real"] + 0.05
    families = {row["family"]: row for row in groups["per_family"]}
    assert list(families) == ["DDPM", "GAN"] and families["DDPM"]["generators"] == 2  # ddpm:b and ddpm:c together
    ddpm = np.isin(generators, ["ddpm:b", "ddpm:c"])
    assert families["DDPM"]["images"] == ddpm.sum()
    assert families["DDPM"]["roc_auc_vs_real"] == pytest.approx(
        roc_auc_score(labels[ddpm | real] == FAKE, p_fake[ddpm | real]))
    assert families["GAN"]["roc_auc_vs_real"] == pytest.approx(rows["gan:a"]["roc_auc_vs_real"])
    per_class = {row["cifar10_class"]: row for row in groups["per_cifar10_class"]}
    dogs = classes == 1
    assert per_class["dog"]["roc_auc"] == pytest.approx(roc_auc_score(labels[dogs] == FAKE, p_fake[dogs]))
    assert per_class["dog"]["accuracy"] == pytest.approx(np.mean((p_fake[dogs] >= 0.5) == (labels[dogs] == FAKE)))


def test_reports_carry_every_detection_field(tmp_path, trained_model, toy_dataset):
    from modeling.scoring.evaluation import evaluate_model

    result = evaluate_model(trained_model, data=str(toy_dataset), split="test", output_dir=tmp_path / "eval",
                            save_predictions=True)
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    metrics = report["metrics"]
    for key in ("roc_auc", "average_precision", "ece", "brier", "threshold", "accuracy_at_threshold",
                "balanced_accuracy_at_threshold", "reliability", "per_generator", "per_cifar10_class"):
        assert metrics[key] is not None, key
    assert metrics["roc_auc"] > 0.9  # the toy task is separable
    assert {row["generator_id"] for row in metrics["per_generator"]} == {"toy-pattern:even", "toy-pattern:odd"}
    assert len(metrics["per_cifar10_class"]) == len({row["cifar10_class"] for row in metrics["per_cifar10_class"]}) > 1
    for figure in ("roc_curve.png", "pr_curve.png", "reliability.png", "confusion_matrix.png"):
        assert figure in report["figures"] and (tmp_path / "eval" / figure).stat().st_size > 5000, figure
    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == PREDICTION_COLUMNS and len(rows) == report["images"] == 200
    labels = [row["label"] for row in rows]
    p_fake = np.array([float(row["p_fake"]) for row in rows])
    assert roc_auc_score(np.array(labels) == "FAKE", p_fake) == pytest.approx(metrics["roc_auc"], abs=1e-4)
    threshold = metrics["threshold"]
    assert all(row["verdict"] == ("FAKE" if float(row["p_fake"]) >= threshold else "REAL") for row in rows)
    assert {row["generator_id"] for row in rows if row["label"] == "FAKE"} == {"toy-pattern:even", "toy-pattern:odd"}
    assert all(row["path"].startswith("test-") for row in rows)
    assert result.metrics["accuracy_at_threshold"] == metrics["accuracy_at_threshold"]


def test_training_stores_a_validation_threshold_that_evaluate_and_predict_use(trained_model):
    from transformers import AutoConfig

    report = json.loads((trained_model / "report" / "report.json").read_text())
    config = AutoConfig.from_pretrained(trained_model)
    chosen = report["decision_threshold"]
    assert chosen["chosen_on"] == "validation" and chosen["validation_images"] == 80
    assert config.fake_threshold == pytest.approx(chosen["fake_threshold"])
    assert report["metrics"]["threshold"] == pytest.approx(config.fake_threshold)
    assert report["metrics"]["threshold_source"] == "validation split"
    assert any("eval_roc_auc" in entry for entry in report["log_history"])  # AUROC every epoch


def test_a_split_of_one_label_keeps_only_the_share_called_right():
    from modeling.scoring.detection import one_label
    labels, p_fake = np.array([REAL, REAL, REAL, REAL]), np.array([0.1, 0.2, 0.6, 0.3])
    metrics = scored_metrics(labels, p_fake, threshold=0.25)
    shown = one_label(metrics)
    assert shown["only_label"] == "REAL" and shown["called_real"] == 0.75 and shown["called_real_at_threshold"] == 0.5
    assert all(shown[key] is None for key in ("accuracy", "accuracy_at_threshold", "roc_auc", "average_precision",
                                               "f1_real", "precision_real", "recall_fake", "macro_f1"))
    both = {**metrics, "support_fake": 2}
    assert one_label(both) is both  # two labels: untouched


@pytest.mark.parametrize("generator_id, family", [
    ("CompVis/stable-diffusion-v1-4", "Stable Diffusion"), ("stable-diffusion:vincegmz/stable-diffusion", "Stable Diffusion"),
    ("w86763777/pytorch-ddpm", "DDPM"), ("kopper-xdu/diffusion_model_pytorch:epoch220", "DDPM"),
    ("zoubohao/DenoisingDiffusionProbabilityModel-ddpm-:uncond", "DDPM"),
    ("pfnet-research/chainer-gan-lib:began", "GAN"), ("cifake-kit/tiny-random-sd", None), (None, None)])
def test_a_generator_id_names_its_family(generator_id, family):
    from cifake_kit.schema import generator_family

    assert generator_family(generator_id) == family
