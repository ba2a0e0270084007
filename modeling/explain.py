"""Grad-CAM for CIFAKE models (pytorch-grad-cam): heatmaps, overlays, a grid, and a measurement.

The target layer follows the config: the last convolution of the paper's CNN family (before its
pooling, so the map has the most detail), the last stage of a timm CNN, or the last block of a
timm ViT (its patch tokens laid back on their grid). Heatmaps are the input's size (32x32),
finite and scaled to [0, 1] per image. Overlays show the 32x32 input enlarged without blur
(nearest neighbour) with the heatmap on top.

`cam_mass_study` turns the paper's finding into numbers: over a sample of test images, the share
of Grad-CAM mass on the border against the centre, by true label and by correct / wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dataset_builder.errors import CifakeError

OVERLAY_SCALE = 8  # 32x32 -> 256x256 on screen
CENTRE = 16  # the centre region of the study: the middle 16x16 of 32x32 (a quarter of the area)


@dataclass
class Explanation:
    """One image: what the model saw, what it said, and where its evidence lies."""

    view: np.ndarray  # (32, 32, 3) uint8: the model's input, de-normalised
    probabilities: dict[str, float]  # label -> P
    predicted: str
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # label -> (32, 32) float in [0, 1]

    def overlay(self, label: str | None = None, scale: int = OVERLAY_SCALE) -> Image.Image:
        return overlay(self.view, self.heatmaps[label or self.predicted], scale)


class _Logits(torch.nn.Module):
    """pytorch-grad-cam wants a module that returns the logits tensor itself."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


def target_layer(model) -> tuple[torch.nn.Module, object]:
    """(layer to explain, reshape_transform or None) for a CifakeForImageClassification."""
    config = model.config
    encoder = model.cifake.encoder
    if not config.backbone:
        return encoder.blocks[-1].layers[-1], None
    net = encoder.model
    layer = net.get_submodule(net.feature_info[-1]["module"])
    prefix = getattr(net, "num_prefix_tokens", None)
    if prefix is None:
        return layer, None
    grid = tuple(net.patch_embed.grid_size)

    def tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, prefix:, :]
        return patches.reshape(tokens.shape[0], *grid, tokens.shape[-1]).permute(0, 3, 1, 2)

    return layer, tokens_to_map


def gradcam(model, pixel_values: torch.Tensor, labels: list[int]) -> np.ndarray:
    """Grad-CAM maps (B, 32, 32) in [0, 1] of `pixel_values` for class ids `labels`."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer, reshape = target_layer(model)
    device = next(model.parameters()).device
    # Gradients are needed even when the caller runs under torch.inference_mode().
    with torch.inference_mode(False), torch.enable_grad():
        inputs = pixel_values.to(device).clone()
        with GradCAM(model=_Logits(model).eval(), target_layers=[layer], reshape_transform=reshape) as cam:
            maps = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(int(c)) for c in labels])
    return np.nan_to_num(np.asarray(maps, dtype=np.float32)).clip(0.0, 1.0)


def explain_images(model, processor, images: list[Image.Image], all_classes: bool = False) -> list[Explanation]:
    """Predict and explain PIL images: the heatmap of the predicted class, or of every class."""
    pixel_values = processor(images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        logits = model(pixel_values=pixel_values.to(next(model.parameters()).device)).logits.float().cpu()
    probabilities = logits.softmax(-1)
    id2label = model.config.id2label
    predicted = probabilities.argmax(-1).tolist()
    classes = list(id2label) if all_classes else [None]
    heatmaps = {}
    for class_id in classes:
        targets = predicted if class_id is None else [class_id] * len(images)
        heatmaps[class_id] = (targets, gradcam(model, pixel_values, targets))
    views = _views(pixel_values, processor)
    explanations = []
    for i in range(len(images)):
        maps = {id2label[targets[i]]: cams[i] for targets, cams in heatmaps.values()}
        explanations.append(Explanation(
            view=views[i],
            probabilities={id2label[k]: float(probabilities[i, k]) for k in id2label},
            predicted=id2label[predicted[i]],
            heatmaps=maps,
        ))
    return explanations


def overlay(view: np.ndarray, heatmap: np.ndarray, scale: int = OVERLAY_SCALE, image_weight: float = 0.55) -> Image.Image:
    """The input enlarged `scale` times without blur, the heatmap (smoothly enlarged) on top."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    size = (view.shape[1] * scale, view.shape[0] * scale)
    sharp = np.asarray(Image.fromarray(view).resize(size, Image.Resampling.NEAREST), dtype=np.float32) / 255.0
    smooth = np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))
    return Image.fromarray(show_cam_on_image(sharp, np.clip(smooth, 0, 1), use_rgb=True, image_weight=image_weight))


def enlarge(view: np.ndarray, scale: int = OVERLAY_SCALE) -> Image.Image:
    """The model's 32x32 input, enlarged without blur."""
    return Image.fromarray(view).resize((view.shape[1] * scale, view.shape[0] * scale), Image.Resampling.NEAREST)


def explain(
    images: list[str | Path],
    model: str | Path,
    out_dir: str | Path = "cifake-explain",
    all_classes: bool = False,
) -> Path:
    """Write an overlay PNG per image (and class) and a grid figure; return the grid's path."""
    from .evaluation import load_model

    net, processor = load_model(model)
    pictures = [open_image(path)[0] for path in images]
    explanations = explain_images(net, processor, pictures, all_classes=all_classes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for path, result in zip(images, explanations):
        for label in result.heatmaps:
            result.overlay(label).save(out / f"{Path(path).stem}.gradcam-{label}.png")
        enlarge(result.view).save(out / f"{Path(path).stem}.input32.png")
    grid = out / "gradcam-grid.png"
    plot_grid([Path(p).name for p in images], explanations, grid, title=f"Grad-CAM of {Path(str(model)).name}")
    return grid


def open_image(path: str | Path) -> tuple[Image.Image, list[str]]:
    """A fully decoded image and notes about it; CifakeError for anything that is not one.

    Refuses decompression bombs (PIL's pixel limit), truncated or unreadable files; keeps the
    first frame of an animation and says so.
    """
    import warnings

    path = Path(path)
    notes = []
    if not path.is_file():
        raise CifakeError(f"{path.name!r} is not a file. Give the path of an image (PNG, JPEG, WebP, GIF, BMP, TIFF).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            frames = getattr(image, "n_frames", 1)
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise CifakeError(
            f"{path.name!r} is too large to open safely ({err}). Shrink it below "
            f"{Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels and try again."
        ) from err
    except Image.UnidentifiedImageError as err:
        raise CifakeError(
            f"{path.name!r} is not an image this app can read. Use a PNG, JPEG, WebP, GIF, BMP or TIFF file."
        ) from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or damaged data
        raise CifakeError(f"{path.name!r} is damaged or truncated ({err}). Try another copy of the image.") from err
    if frames > 1:
        notes.append(f"Animated image: the first of its {frames} frames was classified.")
    if min(image.size) < 8:
        notes.append(f"The image is only {image.width}x{image.height} pixels: it was enlarged to 32x32 and says little.")
    return image, notes


def plot_grid(names: list[str], explanations: list[Explanation], path: Path, title: str = "") -> None:
    """A figure like the paper's: per image, its 32x32 input and the Grad-CAM of each class shown."""
    from .report import pyplot

    plt = pyplot()
    columns = 1 + max(len(e.heatmaps) for e in explanations)
    fig, axes = plt.subplots(len(explanations), columns, figsize=(2.4 * columns, 2.5 * len(explanations)), dpi=110,
                             squeeze=False)
    for row, (name, result) in enumerate(zip(names, explanations)):
        axes[row, 0].imshow(enlarge(result.view))
        axes[row, 0].set_title(f"{name}\n{result.predicted} {result.probabilities[result.predicted]:.1%}", fontsize=8)
        for col, (label, _) in enumerate(result.heatmaps.items(), 1):
            axes[row, col].imshow(result.overlay(label))
            axes[row, col].set_title(f"Grad-CAM for {label}\nP({label}) = {result.probabilities[label]:.1%}", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def centre_share(heatmaps: np.ndarray, centre: int = CENTRE) -> np.ndarray:
    """Share of each map's mass inside the central `centre` x `centre` square (NaN for empty maps)."""
    size = heatmaps.shape[-1]
    start = (size - centre) // 2
    inner = heatmaps[:, start : start + centre, start : start + centre].sum(axis=(1, 2))
    total = heatmaps.sum(axis=(1, 2))
    return np.where(total > 0, inner / np.maximum(total, 1e-12), np.nan)


def cam_mass_study(
    model: str | Path,
    data: str | Path = "cifake",
    split: str = "test",
    sample: int = 1000,
    out_dir: str | Path = "cifake-explain",
    seed: int = 0,
    batch_size: int = 256,
) -> dict:
    """Where the model's Grad-CAM mass lies, border vs centre, by label and by correct / wrong.

    A uniform map puts (16/32)^2 = 25% of its mass in the centre; `centre_ratio` divides the
    measured share by that, so values below 1 mean the evidence sits on the border/background.
    """
    from dataset_builder.features import LABEL_NAMES

    from .data import CifakeCollator, load_pixels
    from .evaluation import load_model

    net, processor = load_model(model)
    pixels = load_pixels(data, split, processor)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(pixels), size=min(sample, len(pixels)), replace=False))
    collator = CifakeCollator(processor)
    shares, labels, predictions = [], [], []
    for start in range(0, len(chosen), batch_size):
        index = torch.as_tensor(chosen[start : start + batch_size])
        batch = collator.normalize(pixels.pixels[index])
        with torch.inference_mode():
            predicted = net(pixel_values=batch.to(next(net.parameters()).device)).logits.argmax(-1).cpu().tolist()
        shares.append(centre_share(gradcam(net, batch, predicted)))
        labels += pixels.labels[index].tolist()
        predictions += predicted
    shares, labels, predictions = np.concatenate(shares), np.asarray(labels), np.asarray(predictions)
    uniform = (CENTRE / pixels.pixels.shape[-1]) ** 2
    groups = {}
    for label_id, label in enumerate(LABEL_NAMES):
        for outcome, mask in (("correct", predictions == labels), ("wrong", predictions != labels)):
            chosen_mask = (labels == label_id) & mask & ~np.isnan(shares)
            values = shares[chosen_mask]
            groups[f"{label} {outcome}"] = {
                "images": int(chosen_mask.sum()),
                "centre_share": float(values.mean()) if len(values) else None,
                "border_share": float(1 - values.mean()) if len(values) else None,
                "centre_ratio": float(values.mean() / uniform) if len(values) else None,
            }
    result = {
        "model": str(model), "data": str(data), "split": split, "images": int(len(chosen)),
        "centre": f"middle {CENTRE}x{CENTRE} of {pixels.pixels.shape[-1]}x{pixels.pixels.shape[-1]}",
        "uniform_centre_share": uniform, "empty_maps": int(np.isnan(shares).sum()),
        "overall_centre_share": float(np.nanmean(shares)) if len(shares) else None,
        "groups": groups,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cam_mass.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot_mass(shares, labels, predictions, uniform, out / "cam_mass.png", result)
    return result


def _plot_mass(shares, labels, predictions, uniform, path: Path, result: dict) -> None:
    from dataset_builder.features import LABEL_NAMES

    from .report import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=120)
    bins = np.linspace(0, 1, 26)
    for label_id, label in enumerate(LABEL_NAMES):
        for outcome, mask, style in (("correct", predictions == labels, "-"), ("wrong", predictions != labels, ":")):
            values = shares[(labels == label_id) & mask & ~np.isnan(shares)]
            if len(values):
                ax.hist(values, bins=bins, histtype="step", linestyle=style, linewidth=1.6,
                        color="tab:red" if label == "FAKE" else "tab:blue",
                        label=f"{label} {outcome} (n={len(values)}, mean {values.mean():.0%})")
    ax.axvline(uniform, color="grey", linestyle="--", linewidth=1, label=f"uniform map ({uniform:.0%})")
    ax.set_xlabel(f"share of Grad-CAM mass in the centre ({result['centre']})")
    ax.set_ylabel("images")
    ax.set_title(f"Where the evidence lies: {Path(result['model']).name} on {Path(result['data']).name} [{result['split']}]",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _views(pixel_values: torch.Tensor, processor) -> np.ndarray:
    """uint8 (B, 32, 32, 3) images back from normalised pixel values."""
    mean = np.asarray(processor.image_mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(processor.image_std, dtype=np.float32)[None, :, None, None]
    pixels = (pixel_values.numpy() * std + mean) / processor.rescale_factor
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
