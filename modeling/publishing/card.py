"""The model card's text: `model_card.md` with a "This model" section and `model-index` metadata built from
the folder's own reports (`ModelCardData` + `EvalResult`), so every number on it was measured. `cifake train`
writes it as the folder's README.md; `cifake push-model` sends it with the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard

from cifake_kit.errors import CifakeError
from cifake_kit.hub import is_hub_id
from cifake_kit.schema import DEMO_GENERATOR_ID
from modeling.layout import REPORT_DIR, REPORT_JSON, RUN_FILE
from modeling.scoring.evaluation import ROBUSTNESS_COLUMNS
from modeling.scoring.report import metrics_table

CARD_TEMPLATE = Path(__file__).parent / "model_card.md"


def scored_dataset_id(folder: Path, dataset_id: str | None = None) -> str | None:
    """The Hub id of the dataset the model's report scored: `dataset_id` (checked), or the report's own
    data when that is a Hub id; None for a local folder."""
    if dataset_id is not None:
        if "/" not in dataset_id or not is_hub_id(dataset_id):
            raise CifakeError(f"--dataset-id {dataset_id!r} is not a Hub dataset id. Use the form your-name/cifake.")
        return dataset_id
    report = report_of(folder)
    if "data_hub_id" in report:  # recorded when the data was read: a Hub id, or None for a folder
        return report["data_hub_id"]
    data = str(report.get("data", ""))  # a report of an earlier kit: its data, when that is owner/name
    return data if "/" in data and is_hub_id(data) else None


def render_model_card(folder: Path, repo_id: str | None = None, dataset_id: str | None = None) -> str:
    """model_card.md + this model's measured results: "This model", and the model-index only when the data
    is known by Hub id (`dataset_id`, or the report's own). `repo_id` None: the local folder's card."""
    card = ModelCard.load(CARD_TEMPLATE)
    name = repo_id or str(folder)
    card.text = card.text.replace("REPO_ID", name)
    report = report_of(folder)
    run = json.loads((folder / RUN_FILE).read_text()) if (folder / RUN_FILE).is_file() else {}
    metrics = report["metrics"]
    data = scored_dataset_id(folder, dataset_id)
    generators = report.get("generators") or []
    demo = DEMO_GENERATOR_ID in generators
    dataset_name = f"CIFAKE-style data ({', '.join(generators) or 'generator not recorded'})"
    card.data.model_name = (repo_id or Path(folder).resolve().name).split("/")[-1]
    card.data.datasets = [data] if data else None
    card.data.base_model = _base_model(report)
    # (metric type, name on the card, value, args): the whole split's figures, then each family's ROC AUC. The Hub
    # lists one result per (task, dataset, split), so a family's figure says in its args which images it scored.
    measured = [
        (metric, metric_name, metrics[key], None)
        for key, metric, metric_name in [
            ("roc_auc", "roc_auc", "ROC AUC (FAKE positive)"),
            ("average_precision", "average_precision", "Average precision (FAKE positive)"),
            ("accuracy", "accuracy", "Accuracy"),
            ("accuracy_at_threshold", "accuracy", "Accuracy at the decision threshold"),
            ("f1_fake", "f1", "F1 (FAKE positive)"),
            ("f1_real", "f1", "F1 (REAL positive)"),
            ("precision_fake", "precision", "Precision (FAKE positive)"),
            ("recall_fake", "recall", "Recall (FAKE positive)"),
        ]
        if metrics.get(key) is not None
    ] + [
        ("roc_auc", f"ROC AUC, {row['family']} images vs REAL (FAKE positive)", row["roc_auc_vs_real"],
         {"fake_family": row["family"], "fake_images": row["images"], "against": "every REAL image of the split"})
        for row in metrics.get("per_family") or []
        if row.get("roc_auc_vs_real") is not None
    ] + [
        ("roc_auc", f"ROC AUC, {row['family']} images vs REAL, by the family's own score", row["roc_auc_vs_real_own_score"],
         {"fake_family": row["family"], "fake_images": row["images"], "against": "every REAL image of the split",
          "score": "P(family | family or REAL)"})
        for row in metrics.get("per_family") or []
        if row.get("roc_auc_vs_real_own_score") is not None
    ]
    card.data.eval_results = ([
        EvalResult(
            task_type="image-classification",
            task_name="Real vs AI-generated image classification",
            dataset_type=data,
            dataset_name=dataset_name,
            dataset_split=report["split"],
            metric_type=metric,
            metric_name=metric_name,
            metric_value=round(float(value), 4),
            metric_args=args,
        )
        for metric, metric_name, value, args in measured
    ] if data else None) or None  # a split of one label has no result to list
    section = _this_model_section(report, run, data or str(report.get("data", "")), generators, demo,
                                  _robustness_tables(folder))
    head, citation, tail = card.text.partition("## Citation")
    card.text = f"{head.rstrip()}\n\n{section}\n\n{citation}{tail}"
    return str(card)


def _base_model(report: dict) -> str | None:
    """The Hub id of the pretrained weights a `--pretrained` run started from (timm's default weights,
    or hf-hub:ID), for the card's `base_model`; None for a model trained from scratch or a local folder."""
    source = (report.get("pretrained_weights") or {}).get("source")
    if not source:
        return None
    if source.startswith("hf-hub:"):
        return source.removeprefix("hf-hub:")
    backbone = (report.get("model_config") or {}).get("backbone")
    if source == "timm" and backbone:
        import timm

        try:
            return timm.models.get_pretrained_cfg(backbone).hf_hub_id or None
        except Exception:  # a backbone timm names no default weights for
            return None
    return None


def report_of(folder: Path) -> dict:
    path = Path(folder) / REPORT_DIR / REPORT_JSON
    if not path.is_file():
        raise CifakeError(
            f"{str(folder)!r} has no {REPORT_DIR}/{REPORT_JSON}: the card's results come from it. Train the model "
            f"with `cifake train` (which writes it), or score it with `cifake evaluate {folder} --output-dir {path.parent}`."
        )
    return json.loads(path.read_text())


def _this_model_section(report: dict, run: dict, data: str, generators: list, demo: bool,
                        robustness: list[tuple[str, list[dict]]] = ()) -> str:
    metrics = report["metrics"]
    lines = ["## This model", ""]
    if demo:
        lines += [
            "**Demonstration model.** Its FAKE training and test images came from the CIFAKE kit's tiny "
            f"random-weight pipeline (`{DEMO_GENERATOR_ID}`): noise-like textures, not Stable Diffusion "
            "output. The scores below say nothing about detecting real generators.",
            "",
        ]
    lines += [
        f"- Recipe: `{report.get('recipe', run.get('recipe', 'unknown'))}`; {report.get('parameters', 0):,} parameters.",
        f"- Data: `{data}`; FAKE images from {', '.join(f'`{g}`' for g in generators) or 'an unrecorded generator'}.",
        f"- Scored on the `{report['split']}` split, {report.get('images', 0):,} images.",
    ]
    if report.get("sizes"):
        lines.append(f"- Trained on {report['sizes']['train']:,} images; {report['sizes']['validation']:,} held out for validation.")
    if report.get("training"):
        hyper = ", ".join(f"{k}={v}" for k, v in report["training"].items())
        lines.append(f"- Training settings: {hyper}; epochs run: {report.get('epochs_run')}.")
    threshold = metrics.get("threshold", 0.5)
    if metrics.get("only_label"):
        label = metrics["only_label"]
        lines += ["", f"**The `{report['split']}` split holds {label} images only**, so no metric that compares REAL and "
                      f"FAKE is given for it (the model-index has none): {metrics[f'called_{label.lower()}']:.2%} of them "
                      f"were called {label} at P(FAKE) = 0.5, {metrics[f'called_{label.lower()}_at_threshold']:.2%} at "
                      f"the model's threshold. Score it on a split with both labels for its accuracy and ROC AUC."]
        return "\n".join(lines)
    lines += [
        "",
        "ROC AUC and average precision take FAKE as the positive class and need no cut-off; `accuracy` is at "
        f"P(FAKE) = 0.5; `accuracy_at_threshold` is at the model's decision threshold, {threshold:.3g} "
        f"({metrics.get('threshold_source', 'default (0.5)')}), which `pipeline` users should apply to the FAKE score. "
        "ECE: expected calibration error of P(FAKE).",
        "",
        metrics_table([{"split": report["split"], **metrics}],
                      ["split", "roc_auc", "average_precision", "accuracy", "accuracy_at_threshold", "ece",
                       "precision_fake", "recall_fake", "f1_fake", "precision_real", "recall_real", "f1_real"]),
    ]
    if metrics.get("per_family"):
        own = any(row.get("roc_auc_vs_real_own_score") is not None for row in metrics["per_family"])
        lines += ["", "### Per generator family", "",
                  "Each family's FAKE images (Stable Diffusion, DDPM, GAN, as their `generator_id` names them) against "
                  "all REAL images of the split." + (
                      " This model names the family of each FAKE image it learnt from (`fake_families` in its "
                      "config): `roc_auc_vs_real_own_score` ranks by P(that family | that family or REAL), the "
                      "`score_pixels` of the kit's `modeling.inference.core`." if own else ""), "",
                  metrics_table(metrics["per_family"], ["family", "generators", "images", "roc_auc_vs_real"]
                                + (["roc_auc_vs_real_own_score"] if own else [])
                                + ["average_precision_vs_real", "recall_fake", "recall_fake_at_threshold"])]
    if metrics.get("per_generator"):
        lines += ["", "### Per generator", "",
                  "Each generator's FAKE images against all REAL images of the split; `recall_fake`: share called FAKE.", "",
                  metrics_table(metrics["per_generator"], ["generator_id", "images", "roc_auc_vs_real", "recall_fake",
                                                           "recall_fake_at_threshold", "mean_p_fake"])]
    for where, rows in robustness:
        lines += ["", f"### Robustness and other data ({where})", "", metrics_table(rows, ROBUSTNESS_COLUMNS)]
    for figure in report.get("figures", []):
        lines += ["", f"![{figure}](report/{figure})"]
    return "\n".join(lines)


def _robustness_tables(folder: Path) -> list[tuple[str, list[dict]]]:
    """The robustness / cross-data tables `cifake evaluate` left under MODEL/eval/, by folder."""
    tables = []
    for path in sorted(folder.glob("eval/*/robustness.json")):
        try:
            tables.append((f"`{path.parent.name}`", json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):  # a torn file: the card goes without it
            continue
    return tables

