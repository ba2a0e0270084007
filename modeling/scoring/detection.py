"""Detection results of a scored split beyond the metric module's scalars, from P(FAKE), FAKE the positive
class throughout: the validation-chosen threshold (`choose_threshold`), results per `generator_id` and per
CIFAR-10 class (`breakdown`), splits of one label (`one_label`), and the ROC, PR and reliability plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifake_kit.schema import FAKE, GENERATOR_FAMILIES, LABEL_NAMES, generator_family
from modeling.layout import PR_PNG, RELIABILITY_PNG, ROC_PNG
from modeling.plotting import pyplot, save

PREDICTION_COLUMNS = ["index", "path", "label", "generator_id", "cifar10_class", "p_fake", "verdict"]


# What a split of one label still says: the share of its images called that label, at 0.5 and at
# the threshold. Every other metric compares the labels (or, like accuracy, reads as if it did).
_NEEDS_BOTH_LABELS = ("accuracy", "accuracy_at_threshold", "balanced_accuracy_at_threshold", "roc_auc",
                      "average_precision", "precision_fake", "precision_real", "f1_fake", "f1_real", "macro_precision",
                      "macro_recall", "macro_f1", "ece", "brier")


def one_label(metrics: dict) -> dict:
    """`metrics` of a split, with those that need both labels set to None where it holds one label only
    (`only_label` then names it, and `called_<label>[_at_threshold]` give the share called right)."""
    supports = {name: metrics.get(f"support_{name.lower()}", 0) for name in LABEL_NAMES}
    present = [name for name, n in supports.items() if n]
    if len(present) != 1:
        return metrics
    (label,) = present
    other = next(name for name in LABEL_NAMES if name != label).lower()
    # The correct calls of the one label present, counted before the shared metrics go.
    share = metrics.get(f"recall_{label.lower()}")
    share_at_threshold = metrics.get("accuracy_at_threshold")
    return {**metrics, **dict.fromkeys(_NEEDS_BOTH_LABELS), f"recall_{other}": None, "only_label": label,
            f"called_{label.lower()}": share, f"called_{label.lower()}_at_threshold": share_at_threshold}


def choose_threshold(labels, p_fake) -> float:
    """The P(FAKE) cut-off with the best balanced accuracy (Youden's J) on these images.

    Candidates are the scores themselves (an image is FAKE at score >= cut-off); among equally good
    ones the closest to 0.5 wins, so a model already balanced at 0.5 keeps it.
    """
    from sklearn.metrics import roc_curve

    is_fake = np.asarray(labels) == FAKE
    if is_fake.all() or not is_fake.any():
        return 0.5
    fpr, tpr, thresholds = roc_curve(is_fake, np.asarray(p_fake, dtype=np.float64), drop_intermediate=False)
    usable = np.isfinite(thresholds)
    j = np.where(usable, tpr - fpr, -np.inf)
    if j.max() <= 0:  # no cut-off tells the labels apart better than chance (a collapsed model): keep 0.5
        return 0.5
    best = np.flatnonzero(np.isclose(j, j.max(), rtol=0.0, atol=1e-12))
    chosen = float(min(thresholds[best], key=lambda t: (abs(t - 0.5), t)))
    # A stored threshold lies strictly between 0 and 1; a best cut at a score of exactly 1.0 becomes the
    # largest number below 1, which calls the same images FAKE. (A cut at 0 calls everything FAKE: J = 0.)
    return min(chosen, float(np.nextafter(1.0, 0.0)))


def breakdown(labels, p_fake, threshold: float, generator_ids=None, classes=None, class_names=None,
              family_scores: dict | None = None) -> dict:
    """Results per `generator_id` and per family (`generator_family`): its FAKE images against all REAL
    ones (ROC AUC, average precision) and the share called FAKE at 0.5 and at `threshold`; per CIFAR-10
    class, accuracy at both and ROC AUC within it. Groups of one label get None for pairwise metrics.
    `family_scores` (a family head's own scores, `inference.core.score_pixels`) add each family's ROC AUC by its own
    score, `roc_auc_vs_real_own_score`."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels, p_fake = np.asarray(labels), np.asarray(p_fake, dtype=np.float64)
    is_fake = labels == FAKE
    real = ~is_fake
    out = {"per_generator": [], "per_family": [], "per_cifar10_class": []}

    def against_real(mine) -> dict:
        pair, both = mine | real, real.any()
        return {
            "images": int(mine.sum()),
            "recall_fake": float(np.mean(p_fake[mine] >= 0.5)),
            "recall_fake_at_threshold": float(np.mean(p_fake[mine] >= threshold)),
            "mean_p_fake": float(p_fake[mine].mean()),
            "roc_auc_vs_real": float(roc_auc_score(is_fake[pair], p_fake[pair])) if both else None,
            "average_precision_vs_real": float(average_precision_score(is_fake[pair], p_fake[pair])) if both else None,
        }

    if generator_ids is not None:
        generator_ids = np.array([g or "" for g in generator_ids], dtype=object)
        names = sorted({g for g in generator_ids[is_fake] if g})
        for name in names:
            out["per_generator"].append({"generator_id": name, **against_real(is_fake & (generator_ids == name))})
        families = np.array([generator_family(g) for g in generator_ids], dtype=object)
        for family, _ in GENERATOR_FAMILIES:
            mine = is_fake & (families == family)
            if mine.any():
                row = {"family": family, "generators": sum(generator_family(g) == family for g in names),
                       **against_real(mine)}
                if family in (family_scores or {}) and real.any():
                    pair = mine | real
                    row["roc_auc_vs_real_own_score"] = float(roc_auc_score(is_fake[pair], family_scores[family][pair]))
                out["per_family"].append(row)
    if classes is not None and class_names:
        classes = np.asarray(classes)
        for index, name in enumerate(class_names):
            mine = classes == index
            if not mine.any():
                continue
            both = 0 < is_fake[mine].sum() < mine.sum()
            out["per_cifar10_class"].append({
                "cifar10_class": name,
                "images": int(mine.sum()),
                "accuracy": float(np.mean((p_fake[mine] >= 0.5) == is_fake[mine])),
                "accuracy_at_threshold": float(np.mean((p_fake[mine] >= threshold) == is_fake[mine])),
                "roc_auc": float(roc_auc_score(is_fake[mine], p_fake[mine])) if both else None,
            })
    return out


def plot_detection(labels, p_fake, metrics: dict, out_dir: Path, title: str = "") -> list[str]:
    """ROC curve, precision-recall curve and reliability diagram (from `metrics`, as
    `report.scored_metrics` gives them) as PNG files in `out_dir`; returns their names."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    is_fake = np.asarray(labels) == FAKE
    if is_fake.all() or not is_fake.any():
        return []
    plt = pyplot()
    p_fake = np.asarray(p_fake, dtype=np.float64)
    threshold, reliability = metrics.get("threshold"), metrics.get("reliability") or []
    written = []

    fpr, tpr, cuts = roc_curve(is_fake, p_fake)
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=120)
    ax.plot(fpr, tpr, color="tab:blue", label=f"AUROC {metrics['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    for cut, marker, name in ((0.5, "o", "P(FAKE) = 0.5"), (threshold, "s", f"threshold {threshold or 0:.3g}")):
        if cut is None or (cut == 0.5 and marker == "s"):
            continue
        called = p_fake >= cut
        ax.plot(np.mean(called[~is_fake]), np.mean(called[is_fake]), marker, color="black", label=name)
    ax.set(xlabel="false positive rate (REAL called FAKE)", ylabel="true positive rate (FAKE caught)")
    ax.set_title(_titled("ROC, FAKE positive", title), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    written.append(save(fig, out_dir / ROC_PNG))

    precision, recall, _ = precision_recall_curve(is_fake, p_fake)
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=120)
    ax.plot(recall, precision, color="tab:purple", label=f"AP {metrics['average_precision']:.3f}")
    ax.axhline(is_fake.mean(), linestyle=":", color="grey", label=f"chance ({is_fake.mean():.0%} FAKE)")
    ax.set(xlabel="recall (FAKE caught)", ylabel="precision (called FAKE that are FAKE)", ylim=(0, 1.02))
    ax.set_title(_titled("Precision-recall, FAKE positive", title), fontsize=9)
    ax.legend(loc="lower left", fontsize=8)
    written.append(save(fig, out_dir / PR_PNG))

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.2, 5.0), dpi=120, height_ratios=[3, 1], sharex=True)
    centres = [(b["lower"] + b["upper"]) / 2 for b in reliability]
    width = reliability[0]["upper"] - reliability[0]["lower"] if reliability else 0.1
    top.bar(centres, [b["fake_share"] for b in reliability], width=width * 0.9, color="tab:orange", alpha=0.8,
            label="observed share of FAKE")
    top.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    top.plot([b["mean_score"] for b in reliability], [b["fake_share"] for b in reliability], "o", color="black",
             markersize=3)
    top.set_ylabel("share of FAKE images")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(_titled("Reliability of P(FAKE)", title), fontsize=9)
    bottom.bar(centres, [b["count"] for b in reliability], width=width * 0.9, color="grey")
    bottom.set_xlabel("P(FAKE)")
    bottom.set_ylabel("images")
    bottom.set_xlim(0, 1)
    written.append(save(fig, out_dir / RELIABILITY_PNG))
    return written


def _titled(what: str, title: str) -> str:
    return f"{what}\n{title}" if title else what
