"""Grad-CAM for CIFAKE models (pytorch-grad-cam): heatmaps and overlays, in memory.

The target layer follows the config: the last convolution of the paper's CNN family (before its
pooling), the last stage of a timm CNN, or the last block of a timm ViT (patch tokens laid back on their
grid). Heatmaps are 32x32 in [0, 1]; overlays enlarge the input without blur. The Space uses this as it
is; explain.py turns it into files, figures and the border-versus-centre study.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from modeling.inference.core import LogitsOnly, fake_probability, own_scores, verdict_ids

OVERLAY_SCALE = 8  # 32x32 -> 256x256 on screen


@dataclass
class Explanation:
    """One image: what the model saw, what it said, and where its evidence lies."""

    view: np.ndarray  # (32, 32, 3) uint8: the model's input, de-normalised
    probabilities: dict[str, float]  # label -> P
    predicted: str
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # label -> (32, 32) float in [0, 1]
    family_scores: dict[str, float] = field(default_factory=dict)  # a family head's: family -> P(family | it or REAL)

    def overlay(self, label: str | None = None, scale: int = OVERLAY_SCALE) -> Image.Image:
        return overlay(self.view, self.heatmaps[label or self.predicted], scale)


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
        with GradCAM(model=LogitsOnly(model).eval(), target_layers=[layer], reshape_transform=reshape) as cam:
            maps = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(int(c)) for c in labels])
    return np.nan_to_num(np.asarray(maps, dtype=np.float32)).clip(0.0, 1.0)


def explain_images(model, processor, images: list[Image.Image], all_classes: bool = False) -> list[Explanation]:
    """Predict and explain PIL images: the heatmap of the predicted class, or of every class."""
    pixel_values = processor(images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        outputs = model(pixel_values=pixel_values.to(next(model.parameters()).device))
    logits, families = outputs.logits.float().cpu(), getattr(model.config, "fake_families", None) or []
    own = own_scores(outputs.family_logits.float().cpu()).tolist() if families else [[] for _ in images]
    probabilities, id2label = logits.softmax(-1), model.config.id2label
    predicted = verdict_ids(fake_probability(logits, model.config), model.config).tolist()  # its decision threshold
    targets = [[class_id] * len(images) for class_id in id2label] if all_classes else [predicted]
    heatmaps = [(chosen, gradcam(model, pixel_values, chosen)) for chosen in targets]
    views = _views(pixel_values, processor)
    return [Explanation(view=views[i], probabilities={id2label[k]: float(probabilities[i, k]) for k in id2label},
                        predicted=id2label[predicted[i]], heatmaps={id2label[t[i]]: cams[i] for t, cams in heatmaps},
                        family_scores=dict(zip(families, own[i])))
            for i in range(len(images))]


def overlay(view: np.ndarray, heatmap: np.ndarray, scale: int = OVERLAY_SCALE) -> Image.Image:
    """The input enlarged `scale` times without blur, the heatmap (smoothly enlarged) on top."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    size = (view.shape[1] * scale, view.shape[0] * scale)
    sharp = np.asarray(Image.fromarray(view).resize(size, Image.Resampling.NEAREST), dtype=np.float32) / 255.0
    smooth = np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))
    return Image.fromarray(show_cam_on_image(sharp, np.clip(smooth, 0, 1), use_rgb=True, image_weight=0.55))


def enlarge(view: np.ndarray, scale: int = OVERLAY_SCALE) -> Image.Image:
    """The model's 32x32 input, enlarged without blur."""
    return Image.fromarray(view).resize((view.shape[1] * scale, view.shape[0] * scale), Image.Resampling.NEAREST)


def _views(pixel_values: torch.Tensor, processor) -> np.ndarray:
    """uint8 (B, 32, 32, 3) images back from normalised pixel values."""
    mean = np.asarray(processor.image_mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(processor.image_std, dtype=np.float32)[None, :, None, None]
    pixels = (pixel_values.numpy() * std + mean) / processor.rescale_factor
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
