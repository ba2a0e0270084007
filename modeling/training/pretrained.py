"""`cifake train --pretrained`: start a timm backbone from pretrained (e.g. ImageNet) weights.

A saved model never downloads anything when it loads, so pretrained weights are a training option: timm
builds the same network with its pretrained weights (adapted to 32x32 input as timm does) and every
tensor whose shape matches is copied into the fresh model. Sources: `timm` (the backbone's default
weights, from the Hub), `hf-hub:owner/name`, or a local timm checkpoint folder (`config.json` +
`model.safetensors`, as `timm.models.save_for_hf` writes it), for offline machines.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cifake_kit.errors import CifakeError
from cifake_kit.hub import loading

_HINT = ("Pass --pretrained timm (the backbone's default weights, downloaded from the Hub), hf-hub:OWNER/NAME, or a "
         "local folder with a timm checkpoint (config.json + model.safetensors).")


def load_pretrained_backbone(model, source: str) -> dict:
    """Copy pretrained weights from `source` into `model`'s timm backbone; returns what was copied. Tensors
    whose shape differs (a 32x32 stem for ImageNet's strided one) stay fresh, listed under "kept_fresh"."""
    import timm

    config = model.config
    if not config.backbone:
        raise CifakeError(
            "--pretrained needs a timm backbone; this recipe is a small CNN trained from scratch. Use it with "
            "--config resnet18-cifar, vit-tiny-224, vit-tiny-32, or a JSON config with a 'backbone'."
        )
    name = _timm_name(source, config.backbone)
    kwargs = {"num_classes": 0, "in_chans": config.num_channels, **(config.backbone_kwargs or {})}
    with loading("pretrained weights", source, _HINT):
        donor = timm.create_model(name, pretrained=True, **kwargs)
    backbone = model.cifake.encoder.model
    if type(donor) is not type(backbone):
        raise CifakeError(
            f"--pretrained {source!r} holds a {type(donor).__name__}, but the recipe's backbone {config.backbone!r} "
            f"is a {type(backbone).__name__}. Use weights of the same architecture."
        )
    ours = backbone.state_dict()
    theirs = donor.state_dict()
    copied = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    if not copied:
        raise CifakeError(f"--pretrained {source!r}: no tensor fits the backbone {config.backbone!r}. {_HINT}")
    with torch.no_grad():
        backbone.load_state_dict(copied, strict=False)
    return {"source": source, "copied": len(copied), "kept_fresh": sorted(set(ours) - set(copied))}


def _timm_name(source: str, backbone: str) -> str:
    if source == "timm":
        return backbone
    if source.startswith("hf-hub:"):
        return source
    folder = Path(source).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise CifakeError(f"--pretrained {source!r} has no config.json: it is not a timm checkpoint folder. {_HINT}")
        if not (folder / "model.safetensors").is_file():  # never unpickle weights from a folder
            raise CifakeError(f"--pretrained {source!r} has no model.safetensors. Save the checkpoint with "
                              f"timm.models.save_for_hf(model, folder, safe_serialization=True).")
        return f"local-dir:{folder}"
    raise CifakeError(f"--pretrained {source!r} is neither 'timm', hf-hub:OWNER/NAME nor an existing folder. {_HINT}")
