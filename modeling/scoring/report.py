"""Evaluation reports: metrics JSON, the confusion matrix, training curves and detection plots. The
metrics come from the offline `evaluate` module metrics/cifake_metrics.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from cifake_kit.schema import LABEL_NAMES
from modeling.layout import CONFUSION_PNG, CURVES_PNG, REPORT_JSON
from modeling.plotting import pyplot, save
from modeling.scoring.detection import plot_detection

METRICS_MODULE = Path(__file__).parent / "metrics" / "cifake_metrics"


@lru_cache(maxsize=1)
def cifake_metric():
    """The kit's `evaluate` metric module."""
    import evaluate

    return evaluate.load(str(METRICS_MODULE))


def scored_metrics(labels, p_fake, threshold: float = 0.5) -> dict:
    """The label metrics of the verdicts at P(FAKE) >= 0.5 (the argmax) and the detection metrics, accuracy
    at `threshold` included."""
    return cifake_metric().compute(predictions=list(map(float, p_fake)), references=list(map(int, labels)),
                                   threshold=float(threshold))


def write_report(out_dir: str | Path, summary: dict, metrics: dict, log_history: list | None = None,
                 scores: tuple | None = None) -> Path:
    """Write report.json (summary + metrics) and its figures: the confusion matrix, the training
    curves given a log, and given `scores` (labels, P(FAKE)) the ROC, precision-recall and
    reliability plots."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {**summary, "metrics": metrics}
    title = summary.get("title", "")
    plot_confusion_matrix(metrics["confusion_matrix"], out_dir / CONFUSION_PNG, title=title)
    report["figures"] = [CONFUSION_PNG]
    if scores is not None:
        report["figures"] += plot_detection(*scores, metrics, out_dir, title)
    if log_history:
        plot_training_curves(log_history, out_dir / CURVES_PNG)
        report["figures"].append(CURVES_PNG)
        report["log_history"] = log_history
    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    return out_dir / REPORT_JSON


def plot_confusion_matrix(matrix, path: Path, title: str = "") -> None:
    plt = pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count:,}\n{shares[i, j]:.1%}", ha="center", va="center",
                color="white" if shares[i, j] > 0.6 else "black", fontsize=10)
    ax.set_xticks(range(len(LABEL_NAMES)), LABEL_NAMES)
    ax.set_yticks(range(len(LABEL_NAMES)), LABEL_NAMES)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title or "Confusion matrix", fontsize=10)
    save(fig, path)


def plot_training_curves(log_history: list, path: Path) -> None:
    """Training and validation loss, and validation accuracy and ROC AUC, against epochs (Trainer's log)."""
    plt = pyplot()
    train = [(e["epoch"], e["loss"]) for e in log_history if "loss" in e and "epoch" in e]
    evals = [(e["epoch"], e["eval_loss"], e.get("eval_accuracy"), e.get("eval_roc_auc"))
             for e in log_history if "eval_loss" in e]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=120)
    if train:
        left.plot(*zip(*train), label="training loss", color="tab:blue", linewidth=1)
    if evals:
        left.plot([e[0] for e in evals], [e[1] for e in evals], "o-", label="validation loss", color="tab:orange")
        right.plot([e[0] for e in evals], [e[2] for e in evals], "o-", color="tab:green", label="accuracy")
        if any(e[3] is not None for e in evals):
            right.plot([e[0] for e in evals if e[3] is not None], [e[3] for e in evals if e[3] is not None], "s-",
                       color="tab:purple", label="ROC AUC (FAKE positive)")
        right.legend()
    left.set(xlabel="epoch", ylabel="cross-entropy")
    left.legend()
    right.set(xlabel="epoch", ylabel="validation score", ylim=(None, 1.0))
    for ax in (left, right):
        ax.grid(alpha=0.3)
    save(fig, path)


def metrics_table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of `rows`; rate metrics (accuracy, precision, recall, F1) as percentages."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c, row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if column.split("_")[-1] in _RATES or column.split("_")[0] in _RATES:
            return f"{value:.2%}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


_RATES = {"accuracy", "precision", "recall", "f1"}
