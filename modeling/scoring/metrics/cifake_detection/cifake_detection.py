"""CIFAKE detection metrics from scores: ROC AUC, average precision, calibration, accuracy at a threshold.

Detection research ranks detectors by how well their scores separate the classes, not only by
accuracy at one cut-off. This module takes P(FAKE), the model's probability that an image is
generated, and treats FAKE as the positive class throughout. It lives in the repository so that
`evaluate.load` finds it offline.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.metrics import roc_auc_score

_DESCRIPTION = """
Threshold-free and calibration metrics of a REAL/FAKE detector from its P(FAKE) scores, FAKE
(label 0) as the positive class: ROC AUC, average precision, the expected calibration error with
its reliability bins, the Brier score, and accuracy and balanced accuracy at a decision threshold.
"""

_KWARGS_DESCRIPTION = """
Args:
    references (`list` of `int`): true labels, FAKE=0, REAL=1.
    prediction_scores (`list` of `float`): P(FAKE) of each image, in [0, 1].
    threshold (`float`, *optional*, defaults to 0.5): an image is called FAKE when P(FAKE) >= threshold.
    bins (`int`, *optional*, defaults to 15): equal-width bins of P(FAKE) for the calibration error.
Returns:
    roc_auc, average_precision (None when only one class is present), ece, brier, threshold,
    accuracy_at_threshold, balanced_accuracy_at_threshold, reliability (one dict per non-empty bin:
    lower, upper, count, mean_score, fake_share).
    ECE = sum over bins of (count / N) * |fake_share - mean_score|: how far P(FAKE) is from the
    observed share of FAKE images among the images given that score.
Examples:
    >>> metric = evaluate.load("modeling/scoring/metrics/cifake_detection")
    >>> metric.compute(references=[0, 1, 0, 1], prediction_scores=[0.9, 0.2, 0.6, 0.4])["roc_auc"]
    1.0
"""

_CITATION = """
@article{bird2024cifake,
  title   = {{CIFAKE}: Image Classification and Explainable Identification of {AI}-Generated Synthetic Images},
  author  = {Bird, Jordan J. and Lotfi, Ahmad},
  journal = {IEEE Access}, volume = {12}, pages = {15642--15650}, year = {2024}
}
"""

FAKE = 0


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CifakeDetection(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"prediction_scores": datasets.Value("float64"), "references": datasets.Value("int32")}),
            reference_urls=["https://arxiv.org/abs/2303.14126"],
        )

    def _compute(self, prediction_scores, references, threshold=0.5, bins=15):
        scores = np.asarray(prediction_scores, dtype=np.float64)
        is_fake = np.asarray(references) == FAKE
        if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
            raise ValueError("prediction_scores must be probabilities P(FAKE) in [0, 1].")
        both = 0 < is_fake.sum() < len(is_fake)
        called_fake = scores >= threshold
        result = {
            "roc_auc": float(roc_auc_score(is_fake, scores)) if both else None,
            "average_precision": float(average_precision_score(is_fake, scores)) if both else None,
            "threshold": float(threshold),
            "accuracy_at_threshold": float(np.mean(called_fake == is_fake)) if len(scores) else None,
            "balanced_accuracy_at_threshold": (
                float((np.mean(called_fake[is_fake]) + np.mean(~called_fake[~is_fake])) / 2) if both else None
            ),
            "brier": float(np.mean((scores - is_fake) ** 2)) if len(scores) else None,
        }
        edges = np.linspace(0.0, 1.0, bins + 1)
        which = np.searchsorted(edges[1:-1], scores)  # a score on an edge joins the lower bin, as sklearn's calibration_curve
        reliability, ece = [], 0.0
        for b in range(bins):
            members = which == b
            if not members.any():
                continue
            mean_score, fake_share = float(scores[members].mean()), float(is_fake[members].mean())
            ece += members.sum() / len(scores) * abs(fake_share - mean_score)
            reliability.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(members.sum()),
                                "mean_score": mean_score, "fake_share": fake_share})
        result["ece"] = float(ece) if len(scores) else None
        result["reliability"] = reliability
        return result
