"""CIFAKE metrics of a REAL/FAKE detector from its scores, P(FAKE): the label metrics of its verdicts
(FAKE where P(FAKE) >= 0.5), both classes taken as the positive one in turn, and the threshold-free and
calibration metrics, FAKE positive. Published CIFAKE code disagrees on which class is "positive", so
precision / recall / F1 are named by class. It lives in the repository so that `evaluate.load` finds it
offline.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.metrics import average_precision_score
from sklearn.metrics import confusion_matrix
from sklearn.metrics import precision_recall_fscore_support
from sklearn.metrics import roc_auc_score

_DESCRIPTION = """
Metrics of a CIFAKE detector from P(FAKE) (FAKE=0, REAL=1): accuracy, per-class precision, recall
and F1, their macro averages and the 2x2 confusion matrix of the verdicts at 0.5; ROC AUC, average
precision, the expected calibration error with its reliability bins, the Brier score, and accuracy
and balanced accuracy at a decision threshold.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): P(FAKE) of each image, in [0, 1].
    references (`list` of `int`): true labels, FAKE=0, REAL=1.
    threshold (`float`, *optional*, defaults to 0.5): for the `*_at_threshold` metrics, an image is
        called FAKE when P(FAKE) >= threshold.
    bins (`int`, *optional*, defaults to 15): equal-width bins of P(FAKE) for the calibration error.
Returns:
    accuracy, precision_<label>, recall_<label>, f1_<label>, support_<label> (that label taken as the
    positive class), macro_precision, macro_recall, macro_f1, confusion_matrix (rows: true label,
    columns: verdict); roc_auc, average_precision (None when only one class is present), ece, brier,
    threshold, accuracy_at_threshold, balanced_accuracy_at_threshold, reliability (one dict per
    non-empty bin: lower, upper, count, mean_score, fake_share).
    ECE = sum over bins of (count / N) * |fake_share - mean_score|: how far P(FAKE) is from the
    observed share of FAKE images among the images given that score.
Examples:
    >>> metric = evaluate.load("modeling/scoring/metrics/cifake_metrics")
    >>> result = metric.compute(predictions=[0.9, 0.2, 0.6, 0.4], references=[0, 1, 0, 0])
    >>> result["roc_auc"], result["recall_fake"]
    (1.0, 0.6666666666666666)
"""

_CITATION = """
@article{bird2024cifake,
  title   = {{CIFAKE}: Image Classification and Explainable Identification of {AI}-Generated Synthetic Images},
  author  = {Bird, Jordan J. and Lotfi, Ahmad},
  journal = {IEEE Access}, volume = {12}, pages = {15642--15650}, year = {2024}
}
"""

DEFAULT_LABEL_NAMES = ["FAKE", "REAL"]
FAKE, REAL = 0, 1


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CifakeMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}),
            reference_urls=["https://arxiv.org/abs/2303.14126"],
        )

    def _compute(self, predictions, references, threshold=0.5, bins=15):
        scores, references = np.asarray(predictions, dtype=np.float64), np.asarray(references)
        if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
            raise ValueError("predictions must be probabilities P(FAKE) in [0, 1].")
        result = _label_metrics(np.where(scores >= 0.5, FAKE, REAL), references)
        result.update(_score_metrics(scores, references == FAKE, threshold, bins))
        return result


def _label_metrics(verdicts, references):
    labels = [FAKE, REAL]
    precision, recall, f1, support = precision_recall_fscore_support(references, verdicts, labels=labels,
                                                                     zero_division=0)
    result = {"accuracy": float(accuracy_score(references, verdicts))}
    for i, name in enumerate(name.lower() for name in DEFAULT_LABEL_NAMES):
        result[f"precision_{name}"] = float(precision[i])
        result[f"recall_{name}"] = float(recall[i])
        result[f"f1_{name}"] = float(f1[i])
        result[f"support_{name}"] = int(support[i])
    result["macro_precision"] = float(np.mean(precision))
    result["macro_recall"] = float(np.mean(recall))
    result["macro_f1"] = float(np.mean(f1))
    result["confusion_matrix"] = confusion_matrix(references, verdicts, labels=labels).tolist()
    return result


def _score_metrics(scores, is_fake, threshold, bins):
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
