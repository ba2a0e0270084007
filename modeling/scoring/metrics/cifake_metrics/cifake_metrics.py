"""CIFAKE metrics: accuracy, and precision / recall / F1 with each class taken as the positive one.

Published CIFAKE code disagrees on which class is "positive" (some take REAL, some FAKE), so
this module reports both, named by class: `precision_fake`, `recall_fake`, `f1_fake` treat FAKE
as positive; `precision_real`, ... treat REAL as positive. It lives in the repository so that
`evaluate.load` finds it offline.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.metrics import confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

_DESCRIPTION = """
Accuracy plus per-class precision, recall and F1 for the two CIFAKE labels (FAKE=0, REAL=1),
the macro averages, and the 2x2 confusion matrix (rows: true label, columns: prediction).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels, FAKE=0, REAL=1.
    references (`list` of `int`): true labels, FAKE=0, REAL=1.
    label_names (`list` of `str`, *optional*): names of labels 0 and 1; defaults to ["FAKE", "REAL"].
Returns:
    accuracy, precision_<name>, recall_<name>, f1_<name> for each label (that label taken as the
    positive class), macro_precision, macro_recall, macro_f1, confusion_matrix, support_<name>.
Examples:
    >>> metric = evaluate.load("modeling/scoring/metrics/cifake_metrics")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])["recall_fake"]
    0.5
"""

_CITATION = """
@article{bird2024cifake,
  title   = {{CIFAKE}: Image Classification and Explainable Identification of {AI}-Generated Synthetic Images},
  author  = {Bird, Jordan J. and Lotfi, Ahmad},
  journal = {IEEE Access}, volume = {12}, pages = {15642--15650}, year = {2024}
}
"""

DEFAULT_LABEL_NAMES = ["FAKE", "REAL"]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CifakeMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
            reference_urls=["https://arxiv.org/abs/2303.14126"],
        )

    def _compute(self, predictions, references, label_names=None):
        names = [name.lower() for name in (label_names or DEFAULT_LABEL_NAMES)]
        labels = list(range(len(names)))
        predictions, references = np.asarray(predictions), np.asarray(references)
        precision, recall, f1, support = precision_recall_fscore_support(
            references, predictions, labels=labels, zero_division=0
        )
        result = {"accuracy": float(accuracy_score(references, predictions))}
        for i, name in enumerate(names):
            result[f"precision_{name}"] = float(precision[i])
            result[f"recall_{name}"] = float(recall[i])
            result[f"f1_{name}"] = float(f1[i])
            result[f"support_{name}"] = int(support[i])
        result["macro_precision"] = float(np.mean(precision))
        result["macro_recall"] = float(np.mean(recall))
        result["macro_f1"] = float(np.mean(f1))
        result["confusion_matrix"] = confusion_matrix(references, predictions, labels=labels).tolist()
        return result
