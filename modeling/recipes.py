"""Every named model of the kit in one table: the paper's 36 topologies and the stronger recipes.

A recipe is a model config (fields of `CifakeConfig`) plus training hyperparameters. The paper
(Bird & Lotfi 2024) searched two grids of 18, as it is usually read: (a) convolutional layers 1-3 x
filters {16, 32, 64, 128, 256, 512}, no hidden dense layer; (b) the best conv block of (a), 2 x 32,
with 1-3 dense layers x units {32, ..., 1024}. All use 3x3 kernels, ReLU and 2x2 max-pooling after
each convolution. The best network, 2 conv x 32 filters + 1 dense x 64 units, scored 92.98% on the
test split. If a closer reading of the paper corrects the grid, change CONV_FILTERS / DENSE_UNITS /
BEST_CONV here and nothing else. The paper publishes no optimiser settings we could copy, so its
recipes use Keras' Adam defaults (the framework it used); the improved recipes are ours.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path

from modeling.configuration_cifake import CifakeConfig

CONV_LAYERS = [1, 2, 3]
CONV_FILTERS = [16, 32, 64, 128, 256, 512]
DENSE_LAYERS = [1, 2, 3]
DENSE_UNITS = [32, 64, 128, 256, 512, 1024]
BEST_CONV = (2, 32)  # (layers, filters): the conv block sweep (b) builds on
PAPER_BEST = "conv2x32-dense1x64"

# What the kit's own recipes share: AdamW with decoupled decay per step, a short warm-up into a cosine
# schedule, clipped gradients; each recipe below states only what differs.
_MODERN = dict(batch_size=128, weight_decay=5e-2, lr_scheduler_type="cosine", warmup_ratio=0.05, optim="adamw_torch",
               max_grad_norm=1.0, crop_padding=4, selection_metric="accuracy", family_head=False)
TRAINING = {
    # The paper's family: Adam with Keras' defaults, constant rate, no augmentation.
    "paper": dict(
        epochs=50,  # upper bound; early stopping on the validation split ends most runs sooner
        batch_size=128,  # images per step, per device
        learning_rate=1e-3,  # Adam, Keras default
        weight_decay=0.0,
        lr_scheduler_type="constant",
        warmup_ratio=0.0,
        optim="adamw_torch",  # with weight_decay=0 this is Adam
        max_grad_norm=0.0,  # no clipping, as Keras
        label_smoothing=0.0,
        augment=False,
        crop_padding=4,  # pixels of zero padding for random crops when augmenting; 0 = flips only
        early_stopping_patience=5,  # epochs without a better validation score, the best model kept; 0: the final one
        selection_metric="accuracy",  # the validation score that picks the best epoch and drives early stopping
        family_head=False,  # one output per generator family of the training fakes (CifakeConfig.fake_families)
    ),
    # Our improved small CNN: flips + padded random crops, cosine schedule, AdamW, smoothing.
    "improved": dict(
        _MODERN,
        epochs=40,
        learning_rate=2e-3,
        label_smoothing=0.05,
        augment=True,  # random horizontal flip + 4-pixel padded random crop, on whole batches
        early_stopping_patience=8,
    ),
    # timm backbones: as the improved recipe, smaller rate.
    "backbone": dict(_MODERN, epochs=30, learning_rate=1e-3, label_smoothing=0.05, augment=True, early_stopping_patience=6),
    # Forensic recipes: a few thousand images, weak traces. Flips only (a crop's zero border is a
    # trace of its own), smaller batches, stronger smoothing, and every epoch of the cosine schedule
    # with the final model kept: on a few hundred validation images the best epoch is mostly noise
    # (docs/detection.md). With early stopping turned on, validation ROC AUC picks the best epoch. Fakes of
    # several generator families each get their own output: a joint model then tells each family from real
    # photos as well as a specialist (docs/detection.md, "One detector").
    "forensic": dict(
        _MODERN,
        epochs=40,
        batch_size=64,
        learning_rate=2e-3,
        label_smoothing=0.1,
        augment=True,
        crop_padding=0,
        early_stopping_patience=0,
        selection_metric="roc_auc",
        family_head=True,
    ),
}


def _paper(conv_layers: int, filters: int, dense: list[int]) -> dict:
    return {"model": {"conv_filters": [filters] * conv_layers, "dense_units": dense}, "training": "paper"}


def paper_topologies() -> dict[str, dict]:
    """The 36 topologies of the paper's two sweeps, by name, in the paper's order."""
    grid = {}
    for layers in CONV_LAYERS:
        for filters in CONV_FILTERS:
            grid[f"conv{layers}x{filters}"] = _paper(layers, filters, [])
    for layers in DENSE_LAYERS:
        for units in DENSE_UNITS:
            grid[f"conv{BEST_CONV[0]}x{BEST_CONV[1]}-dense{layers}x{units}"] = _paper(*BEST_CONV, [units] * layers)
    return grid


RECIPES: dict[str, dict] = {
    **paper_topologies(),
    # A VGG-style small CNN at native 32x32: 3 blocks of 2 same-padded convs with batch norm.
    "cifake-cnn-plus": {
        "model": {"conv_filters": [32, 64, 128], "convs_per_block": 2, "conv_padding": "same",
                  "use_batch_norm": True, "dense_units": [128], "dropout": 0.3},
        "training": "improved",
    },
    # The forensic CNN: the image plus fixed high-pass residuals into 3 small conv blocks, pooled to the
    # mean and spread of each channel, with the residual's Fourier spectrum beside it. The README's
    # ablation measured each part; whole-image colour statistics (histogram_bins) did not help and
    # are left out.
    "cifake-forensic": {
        "model": {"conv_filters": [16, 32, 64], "conv_padding": "same", "use_batch_norm": True, "highpass_input": True,
                  "global_pooling": "mean_std", "spectrum_size": 8, "dense_units": [128], "dropout": 0.3},
        "training": "forensic",
    },
    # ResNet-18 adapted to 32x32: 3x3 stride-1 stem, no stem pooling.
    "resnet18-cifar": {"model": {"backbone": "resnet18", "backbone_cifar_stem": True, "dense_units": []},
                       "training": "backbone"},
    # A ViT-Tiny fed the 32x32 images upscaled to its native 224x224.
    "vit-tiny-224": {"model": {"backbone": "vit_tiny_patch16_224", "backbone_input_size": 224, "dense_units": []},
                     "training": "backbone"},
    # The same ViT-Tiny at native 32x32, with 4x4 patches (64 tokens).
    "vit-tiny-32": {"model": {"backbone": "vit_tiny_patch16_224", "backbone_kwargs": {"img_size": 32, "patch_size": 4},
                              "dense_units": []},
                    "training": "backbone"},
}
RECIPES["paper-best"] = RECIPES[PAPER_BEST]
DEFAULT_RECIPE = "paper-best"
MAX_CONFIG_BYTES = 1 << 20  # a --config file: a few lines of JSON, never a gigabyte


def resolve_recipe(name_or_json: str | dict | None = None) -> tuple[str, dict, dict]:
    """(name, model config fields, training hyperparameters) of a name from RECIPES, a JSON file or a JSON
    string: `{"model": {...}, "training": "paper" | {...}}`, or a flat dict of CifakeConfig fields (trained
    with the paper recipe). ValueError, with the known names, if nothing matches."""
    spec = name_or_json if name_or_json is not None else DEFAULT_RECIPE
    name = "custom"
    if isinstance(spec, str):
        if spec in RECIPES:
            name, spec = spec, RECIPES[spec]
        elif spec.lstrip().startswith("{"):
            spec = _parse_json(spec, "the --config JSON")
        elif spec.endswith(".json"):
            path = Path(spec).expanduser()
            if not path.is_file():
                raise ValueError(f"Config file {spec!r} does not exist. Pass a recipe name or an existing JSON file.")
            name, spec = path.stem, _parse_json(_read_small(path), f"config file {spec!r}")
        else:
            known = ", ".join(n for n in RECIPES if not n.startswith("conv")) + ", or one of the 36 conv* topologies"
            raise ValueError(f"Unknown config {spec!r}. Use a recipe name ({known}), a JSON file, or a JSON string.")
    if not isinstance(spec, dict):
        raise ValueError(f"A config must be a JSON object, got {type(spec).__name__}.")
    if "model" in spec:
        _refuse_unknown(spec, ("model", "training"), "config key")
    model = spec.get("model", {k: v for k, v in spec.items() if k != "training"})
    if not isinstance(model, dict):
        raise ValueError(f"A config's model must be a JSON object of model fields, got {type(model).__name__}.")
    _refuse_unknown(model, model_fields(), "model field")
    model = dict(model)
    training = spec.get("training", "paper")
    if isinstance(training, str):
        if training not in TRAINING:
            raise ValueError(f"Unknown training recipe {training!r}. Use one of: {', '.join(TRAINING)}.")
        training = TRAINING[training]
    else:
        if not isinstance(training, dict):
            raise ValueError(f"A config's training must be a recipe name ({', '.join(TRAINING)}) or a JSON object.")
        _refuse_unknown(training, TRAINING["paper"], "training setting")
        training = {**TRAINING["paper"], **training}
    return name, model, dict(training)


def model_fields() -> list[str]:
    """The fields a config's model may set: CifakeConfig's own (the network's shape and threshold)."""
    return [field.name for field in dataclasses.fields(CifakeConfig) if field.name in CifakeConfig.__annotations__]


def _refuse_unknown(given: dict, known, what: str) -> None:
    """ValueError naming the first key of `given` that is not in `known`, and the nearest known one:
    a misspelt field would otherwise be ignored, and the run would train something else."""
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"Unknown {what} {key!r} in the config: {hint}Known: {', '.join(known)}.")


def _read_small(path: Path) -> str:
    """A config file's text; a file far larger than any config is refused before it is read."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"Config file {str(path)!r} is {size:,} bytes; a config is a few lines of JSON (at most "
                         f"{MAX_CONFIG_BYTES // 1024} KB). Pass the right file.")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(MAX_CONFIG_BYTES + 1)
    except UnicodeDecodeError:
        raise ValueError(f"Config file {str(path)!r} is not UTF-8 text: a config is a JSON file.") from None


def _parse_json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} is not valid JSON ({err}).") from err
