"""Score a saved model on any split of any CIFAKE dataset, clean and under perturbations (JPEG, blur,
noise, down-and-up scaling), and on datasets made with other generators (the robustness table).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from cifake_kit.errors import CifakeError
from cifake_kit.outputs import check_output_dir, staged_files
from cifake_kit.schema import FAKE, LABEL_NAMES, REAL
from modeling.data import (
    DEFAULT_COLUMNS,
    CifakeCollator,
    CifakePixels,
    Columns,
    check_source,
    hub_dataset_id,
    load_pixels,
)
from modeling.inference.core import decision_threshold, load_model, score_pixels
from modeling.layout import EVAL_DIR, EVALUATION_FILES, PREDICTIONS_CSV, REPORT_JSON, ROBUSTNESS_JSON, ROBUSTNESS_MD
from modeling.layout import EVALUATION_STAGING as _STAGING
from modeling.scoring.detection import PREDICTION_COLUMNS, breakdown, one_label
from modeling.scoring.report import metrics_table, scored_metrics, write_report

# Degradations for the robustness table: name -> (kind, strength). JPEG qualities use PIL's
# libjpeg (75 is the release's own setting); blur is a Gaussian radius in pixels; noise is the
# standard deviation in grey levels (0-255); scale shrinks with bicubic and enlarges back.
PERTURBATIONS = {
    "jpeg q95": ("jpeg", 95),
    "jpeg q75": ("jpeg", 75),
    "jpeg q50": ("jpeg", 50),
    "jpeg q30": ("jpeg", 30),
    "blur r0.5": ("blur", 0.5),
    "blur r1.0": ("blur", 1.0),
    "noise s2": ("noise", 2.0),
    "noise s5": ("noise", 5.0),
    "noise s10": ("noise", 10.0),
    "rescale x0.75": ("rescale", 0.75),
    "rescale x0.5": ("rescale", 0.5),
}
ROBUSTNESS_COLUMNS = ["condition", "roc_auc", "average_precision", "accuracy", "accuracy_at_threshold", "recall_fake",
                      "recall_real", "f1_fake", "f1_real", "images"]


@dataclass
class Evaluation:
    output_dir: Path
    metrics: dict
    robustness: list[dict] = field(default_factory=list)


def score(model, processor, pixels: CifakePixels, batch_size: int = 1024) -> tuple[dict, np.ndarray]:
    """Every metric of `model` on decoded images (`scored_metrics`, at the model's threshold, and per
    generator, family and CIFAR-10 class), and their P(FAKE)."""
    p_fake, own = score_pixels(model, CifakeCollator(processor), pixels.pixels, batch_size)
    labels = pixels.labels.numpy()
    threshold = decision_threshold(model.config)
    metrics = scored_metrics(labels, p_fake, threshold)
    metrics["threshold_source"] = "validation split" if model.config.fake_threshold is not None else "default (0.5)"
    groups = breakdown(labels, p_fake, threshold, pixels.generator_ids, pixels.classes.numpy(), pixels.class_names, own)
    metrics.update(groups)
    metrics["per_cifar10_class_accuracy"] = {row["cifar10_class"]: row["accuracy"] for row in groups["per_cifar10_class"]}
    return one_label(metrics), p_fake


def report_head(model, data, split: str, images: int, generators: list[str], name: str | None = None) -> dict:
    """What a report scored, first in its report.json: the model (titled by `name`, else its folder's
    name), the data (and its Hub id, if read from the Hub), the split, its image count and generators."""
    return {"title": f"{name or Path(str(model)).name} on {Path(str(data)).name} [{split}]", "model": str(model),
            "data": str(data), "data_hub_id": hub_dataset_id(data), "split": split, "images": images,
            "generators": generators}


def evaluate_model(
    model: str | Path,
    data: str | Path = "cifake",
    split: str = "test",
    output_dir: str | Path | None = None,
    robustness: bool = False,
    cross_data: list[str] | None = None,
    batch_size: int = 1024,
    save_predictions: bool = False,
    overwrite: bool = False,
    columns: Columns = DEFAULT_COLUMNS,
) -> Evaluation:
    """Score `model` on `split` of `data`; write the report (and the robustness table, predictions.csv) to
    `output_dir`. An earlier evaluation there is replaced only with `overwrite`, once the new one is
    complete. `columns` names the image and label columns of `data` and the --cross-data datasets."""
    for other in cross_data or []:  # before the model loads and the data is scored
        if (Path(str(other)).expanduser() / "config.json").is_file():  # a model after the list flag, most likely
            raise CifakeError(
                f"--cross-data {str(other)!r} is a saved model (it has config.json), not a dataset. Name the model "
                f"with --model and only datasets after --cross-data."
            )
        check_source(other, "--cross-data")
    if batch_size < 1:
        raise CifakeError(f"--batch-size must be at least 1, got {batch_size}.")
    if not output_dir:  # beside a model folder, else under ./cifake-eval
        data_name, path = Path(str(data)).name or "data", Path(str(model)).expanduser()
        output_dir = (path / EVAL_DIR / f"{data_name}-{split}" if path.is_dir() else
                      Path("cifake-eval") / f"{str(model).replace('/', '--')}-on-{data_name}-{split}")
    output_dir = Path(output_dir).expanduser()
    _check_output(output_dir, overwrite)
    net, processor = load_model(model, batch_size=batch_size)
    pixels = load_pixels(data, split, processor, columns=columns)
    metrics, p_fake = score(net, processor, pixels, batch_size)
    summary = report_head(model, data, split, len(pixels), pixels.generators)
    rows = []
    if robustness or cross_data:
        rows.append(_row("clean", metrics, len(pixels)))
    if robustness:
        for name, (kind, strength) in PERTURBATIONS.items():
            degraded = dataclasses.replace(pixels, pixels=perturb(pixels.pixels, kind, strength, seed=0))
            rows.append(_row(name, score(net, processor, degraded, batch_size)[0], len(pixels)))
    for other in cross_data or []:
        other_pixels = load_pixels(other, split, processor, columns=columns, flag="--cross-data")
        rows.append(_row(f"data: {Path(str(other)).name}", score(net, processor, other_pixels, batch_size)[0], len(other_pixels)))
    with staged_files(output_dir, _STAGING, EVALUATION_FILES, last=REPORT_JSON) as staging:
        state = Path(str(model)).expanduser() / "trainer_state.json"
        log = json.loads(state.read_text()).get("log_history") if state.is_file() else None
        write_report(staging, summary, metrics, log, scores=(pixels.labels.numpy(), p_fake))
        if save_predictions:
            save_split_predictions(staging / PREDICTIONS_CSV, pixels, p_fake, metrics["threshold"])
        if rows:
            (staging / ROBUSTNESS_JSON).write_text(json.dumps(rows, indent=2) + "\n")
            (staging / ROBUSTNESS_MD).write_text(metrics_table(rows, ROBUSTNESS_COLUMNS) + "\n")
    return Evaluation(output_dir, metrics, rows)


def _holds_evaluation(folder: Path) -> bool:
    """Only what `evaluate` writes, with a report.json that is one of its reports (if any)."""
    if not all(name in EVALUATION_FILES or name.startswith(_STAGING + ".") for name in os.listdir(folder)):
        return False
    try:
        report = json.loads((folder / REPORT_JSON).read_text())
    except FileNotFoundError:
        return True  # a cut first run: only its staging folder or figures
    except ValueError:
        return False
    return isinstance(report, dict) and {"metrics", "split", "model"} <= set(report)


def _check_output(out: Path, overwrite: bool) -> None:
    """The same rules as every command's output: a new or empty folder, or an earlier evaluation
    replaced on request only, and a folder holding anything else refused untouched."""
    if check_output_dir(out, ours=_holds_evaluation, kit_names=EVALUATION_FILES) and not overwrite:
        if (out / REPORT_JSON).is_file():
            raise CifakeError(
                f"--output-dir {str(out)!r} already holds an evaluation (report.json). Pass --overwrite to replace it "
                f"(the old one stays until the new one is complete), or choose another --output-dir."
            )


def save_split_predictions(path: Path, pixels: CifakePixels, p_fake: np.ndarray, threshold: float) -> Path:
    """predictions.csv: one row per image of a scored split (PREDICTION_COLUMNS: index, stored path, true
    label, generator, CIFAR-10 class, P(FAKE), verdict at `threshold`)."""
    n, names = len(p_fake), pixels.class_names or []
    image_ids, generator_ids = pixels.image_ids or [""] * n, pixels.generator_ids or [None] * n
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PREDICTION_COLUMNS)
        rows = zip(pixels.labels.tolist(), pixels.classes.tolist(), p_fake.tolist(), (p_fake >= threshold).tolist())
        for i, (label, c, p, fake) in enumerate(rows):
            writer.writerow([i, image_ids[i], LABEL_NAMES[label], generator_ids[i] or "",
                             names[c] if 0 <= c < len(names) else "", f"{p:.6f}", LABEL_NAMES[FAKE if fake else REAL]])
    tmp.replace(path)
    return path


def perturb(pixels: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    """A degraded copy of uint8 images (N, 3, 32, 32)."""
    images = pixels.permute(0, 2, 3, 1).numpy()
    if kind == "noise":
        rng = np.random.default_rng(seed)
        noisy = images.astype(np.float32) + rng.normal(0.0, strength, images.shape).astype(np.float32)
        out = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    else:
        out = np.empty_like(images)
        for i, array in enumerate(images):
            image = Image.fromarray(array)
            if kind == "jpeg":
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=int(strength))
                image = Image.open(buffer).convert("RGB")
            elif kind == "blur":
                image = image.filter(ImageFilter.GaussianBlur(radius=strength))
            elif kind == "rescale":
                small = max(1, round(image.width * strength))
                image = image.resize((small, small), Image.Resampling.BICUBIC).resize(image.size, Image.Resampling.BICUBIC)
            else:
                raise ValueError(f"Unknown perturbation {kind!r}.")
            out[i] = np.asarray(image)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))


def _row(condition: str, metrics: dict, images: int) -> dict:
    return {"condition": condition, **{k: metrics[k] for k in ROBUSTNESS_COLUMNS[1:-1]}, "images": images}
