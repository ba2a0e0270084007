"""`cifake explain`: per image, the 32x32 input enlarged and a Grad-CAM overlay, plus a grid figure
like the paper's; `cam_mass_study` measures the paper's finding: over a sample of a split, the share
of Grad-CAM mass on the border against the centre, by true label and by correct / wrong.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

import numpy as np

from cifake_kit.errors import CifakeError
from cifake_kit.outputs import check_output_dir
from cifake_kit.schema import FAKE, IMAGE_SIZE, LABEL_NAMES
from modeling.data import DEFAULT_COLUMNS, CifakeCollator, load_pixels
from modeling.inference.core import (
    as_stored_for,
    fake_probability,
    iter_logits,
    likeliest_family,
    load_model,
    open_image,
    verdict_ids,
)
from modeling.inference.gradcam import Explanation, enlarge, explain_images, gradcam
from modeling.plotting import pyplot, save

CENTRE = 16  # the centre region of the study: the middle 16x16 of 32x32 (a quarter of the area)
# What explain writes: a folder holding only these takes more of them (pictures of other images are
# added, those of the same images redrawn); a folder holding anything else is refused.
OUTPUT_PATTERNS = ("*.gradcam-*.png", "*.input32.png", "gradcam-grid.png", "cam_mass.json", "cam_mass.png")


def check_output(output_dir: str | Path) -> Path:
    """`output_dir`, checked before anything is computed: new, empty, or holding explain's pictures only."""
    out = Path(output_dir).expanduser()
    ours = [name for name in (os.listdir(out) if out.is_dir() else [])
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in OUTPUT_PATTERNS)]
    check_output_dir(out, ours=lambda folder: set(os.listdir(folder)) == set(ours), kit_names=ours)
    return out


def explain(
    images: list[str | Path],
    model: str | Path,
    output_dir: str | Path = "cifake-explain",
    all_classes: bool = False,
) -> Path:
    """Write an overlay PNG per image (and class) and a grid figure; return the grid's path."""
    out = check_output(output_dir)
    net, processor = load_model(model)
    pictures = [as_stored_for(net, processor, open_image(path)[0]) for path in images]
    explanations = explain_images(net, processor, pictures, all_classes=all_classes)
    out.mkdir(parents=True, exist_ok=True)
    for stem, result in zip(unique_stems(images), explanations):
        for label in result.heatmaps:
            result.overlay(label).save(out / f"{stem}.gradcam-{label}.png")
        enlarge(result.view).save(out / f"{stem}.input32.png")
    grid = out / "gradcam-grid.png"
    plot_grid([Path(p).name for p in images], explanations, grid, title=f"Grad-CAM of {Path(str(model)).name}")
    return grid


def unique_stems(paths: list[str | Path]) -> list[str]:
    """The file-name stem of each path, "-2", "-3", ... added to the second, third image of one stem (a/x.jpg and
    b/x.png), so that no picture overwrites another's."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def plot_grid(names: list[str], explanations: list[Explanation], path: Path, title: str = "") -> None:
    """A figure like the paper's: per image, its 32x32 input and the Grad-CAM of each class shown."""
    plt = pyplot()
    columns = 1 + max(len(e.heatmaps) for e in explanations)
    fig, axes = plt.subplots(len(explanations), columns, figsize=(2.4 * columns, 2.5 * len(explanations)), dpi=110,
                             squeeze=False)
    for row, (name, result) in enumerate(zip(names, explanations)):
        axes[row, 0].imshow(enlarge(result.view))
        like = likeliest_family(result.family_scores) if result.predicted == "FAKE" else ""
        axes[row, 0].set_title(f"{name}\n{result.predicted} {result.probabilities[result.predicted]:.1%}"
                               + (f"\n{like}" if like else ""), fontsize=8)
        for col, (label, _) in enumerate(result.heatmaps.items(), 1):
            axes[row, col].imshow(result.overlay(label))
            axes[row, col].set_title(f"Grad-CAM for {label}\nP({label}) = {result.probabilities[label]:.1%}", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    save(fig, path)


def centre_share(heatmaps: np.ndarray) -> np.ndarray:
    """Share of each map's mass inside the central CENTRE x CENTRE square (NaN for empty maps)."""
    start = (heatmaps.shape[-1] - CENTRE) // 2
    inner = heatmaps[:, start : start + CENTRE, start : start + CENTRE].sum(axis=(1, 2))
    total = heatmaps.sum(axis=(1, 2))
    return np.where(total > 0, inner / np.maximum(total, 1e-12), np.nan)


def cam_mass_study(
    model: str | Path,
    data: str | Path = "cifake",
    split: str = "test",
    sample: int = 1000,
    output_dir: str | Path = "cifake-explain",
    seed: int = 0,
    batch_size: int = 256,
    columns=None,
) -> dict:
    """Where the model's Grad-CAM mass lies, border vs centre, by label and by correct / wrong. A uniform map
    puts 25% of it in the centre; `centre_ratio` below 1 means the evidence sits on the border/background."""
    if sample < 1:
        raise CifakeError(f"--sample must be at least 1, got {sample}.")
    check_output(output_dir)
    net, processor = load_model(model, batch_size=batch_size)
    pixels = load_pixels(data, split, processor, columns=columns or DEFAULT_COLUMNS)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(pixels), size=min(sample, len(pixels)), replace=False))
    shares, predictions = [], []
    for _, batch, logits in iter_logits(net, CifakeCollator(processor), pixels.pixels, batch_size, chosen):
        predicted = verdict_ids(fake_probability(logits, net.config), net.config).tolist()  # at its threshold
        shares.append(centre_share(gradcam(net, batch, predicted)))
        predictions += predicted
    shares = np.concatenate(shares) if shares else np.empty(0, dtype=np.float32)
    labels, predictions = pixels.labels.numpy()[chosen], np.asarray(predictions)  # in `chosen` order, as scored
    generators = np.array([pixels.generator_ids[i] for i in chosen] if pixels.generator_ids else [None] * len(chosen),
                          dtype=object)
    uniform = (CENTRE / IMAGE_SIZE) ** 2
    right, mapped = predictions == labels, ~np.isnan(shares)
    by_group = {f"{label} {outcome}": shares[(labels == label_id) & mask & mapped]  # "FAKE correct": its maps' shares
                for label_id, label in enumerate(LABEL_NAMES) for outcome, mask in (("correct", right), ("wrong", ~right))}
    groups = {}
    for group, values in by_group.items():
        mean = float(values.mean()) if len(values) else None
        groups[group] = {"images": len(values), "centre_share": mean, "border_share": None if mean is None else 1 - mean,
                         "centre_ratio": None if mean is None else mean / uniform}
    per_generator, fakes = [], (labels == FAKE) & mapped
    for name in sorted({g for g in generators[fakes] if g}):
        mask = fakes & (generators == name)
        per_generator.append({"generator_id": name, "images": int(mask.sum()), "centre_share": float(shares[mask].mean()),
                              "centre_ratio": float(shares[mask].mean() / uniform),
                              "called_fake": float(np.mean(predictions[mask] == FAKE))})
    result = {
        "model": str(model), "data": str(data), "split": split, "images": int(len(chosen)),
        "centre": f"middle {CENTRE}x{CENTRE} of {IMAGE_SIZE}x{IMAGE_SIZE}",
        "uniform_centre_share": uniform, "empty_maps": int(np.isnan(shares).sum()),
        "overall_centre_share": float(np.nanmean(shares)) if len(shares) else None,
        "groups": groups,
        "per_generator": per_generator,
    }
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cam_mass.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot_mass(by_group, shares, labels, predictions, uniform, out / "cam_mass.png", result)
    return result


def _plot_mass(by_group: dict, shares, labels, predictions, uniform, path: Path, result: dict) -> None:
    plt = pyplot()
    rows = result.get("per_generator") or []
    fig, axes = plt.subplots(1, 2 if rows else 1, figsize=(12 if rows else 7, 3.8 + 0.12 * len(rows)), dpi=120,
                             width_ratios=[1, 1] if rows else None, squeeze=False)
    ax = axes[0, 0]
    bins = np.linspace(0, 1, 26)
    for group, values in by_group.items():
        if len(values):
            ax.hist(values, bins=bins, histtype="step", linestyle="-" if group.endswith("correct") else ":",
                    linewidth=1.6, color="tab:red" if group.startswith("FAKE") else "tab:blue",
                    label=f"{group} (n={len(values)}, mean {values.mean():.0%})")
    ax.axvline(uniform, color="grey", linestyle="--", linewidth=1, label=f"uniform map ({uniform:.0%})")
    ax.set(xlabel=f"share of Grad-CAM mass in the centre ({result['centre']})", ylabel="images")
    ax.set_title(f"Where the evidence lies: {Path(result['model']).name} on {Path(result['data']).name} [{result['split']}]",
                 fontsize=9)
    ax.legend(fontsize=7)
    if rows:
        ax = axes[0, 1]
        real = shares[(labels != FAKE) & ~np.isnan(shares)]
        names = [r["generator_id"] for r in rows] + (["REAL photos"] if len(real) else [])
        values = [r["centre_share"] for r in rows] + ([float(real.mean())] if len(real) else [])
        caught = [r["called_fake"] for r in rows] + ([float(np.mean(predictions[labels != FAKE] == FAKE))] if len(real) else [])
        colours = ["tab:red"] * len(rows) + ["tab:blue"] * (len(names) - len(rows))
        ax.barh(range(len(names)), values, color=colours, alpha=0.8)
        for y, (value, share) in enumerate(zip(values, caught)):
            ax.text(value + 0.005, y, f"{value:.0%} (called FAKE: {share:.0%})", va="center", fontsize=7)
        ax.axvline(uniform, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, max(values + [uniform]) * 1.45)
        ax.set_xlabel("mean share of Grad-CAM mass in the centre")
        ax.set_title("By generator (FAKE images) and for the real photos", fontsize=9)
    save(fig, path)
