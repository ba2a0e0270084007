"""CIFAKE model configuration: the paper's small-CNN family, or a timm backbone behind one head.

This file travels to the Hub with the weights (`trust_remote_code`): it imports only
transformers and the standard library.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# FAKE=0, REAL=1: the order imagefolder and Keras give on the published CIFAKE folders.
CIFAKE_ID2LABEL = {0: "FAKE", 1: "REAL"}


@strict
class CifakeConfig(PreTrainedConfig):
    r"""
    Configuration of a [`CifakeForImageClassification`]. The defaults build the paper's best
    topology (Bird & Lotfi 2024): two 3x3 convolutions of 32 filters, each followed by ReLU and
    2x2 max-pooling, then one dense layer of 64 units and the REAL/FAKE output.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the input images.
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input the model is built for.
        conv_filters (`list[int]`, *optional*, defaults to `[32, 32]`):
            Filters of each convolutional layer, first to last. One entry per layer.
        kernel_size (`int`, *optional*, defaults to 3):
            Kernel size of every convolution.
        conv_padding (`str`, *optional*, defaults to `"valid"`):
            `"valid"` (no padding, as Keras' default in the paper) or `"same"`.
        convs_per_block (`int`, *optional*, defaults to 1):
            Convolutions before each max-pooling (2 gives VGG-style blocks).
        use_batch_norm (`bool`, *optional*, defaults to `False`):
            Batch normalisation after each convolution (not in the paper's networks).
        dense_units (`list[int]`, *optional*, defaults to `[64]`):
            Units of each hidden dense layer before the output layer; empty for none.
        hidden_act (`str`, *optional*, defaults to `"relu"`):
            Activation of the convolutional and dense layers (any key of `transformers.activations.ACT2FN`).
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout before each dense layer and the output layer.
        backbone (`str`, *optional*):
            A `timm` model name. When set, the timm network replaces the convolutional layers and
            `conv_*` fields are ignored; its pooled features feed the same dense head.
        backbone_kwargs (`dict`, *optional*):
            Extra arguments for `timm.create_model` (for example `{"img_size": 32, "patch_size": 4}`).
        backbone_input_size (`int`, *optional*):
            Upscale the 32x32 input to this size before the backbone (for networks made for 224x224).
        backbone_cifar_stem (`bool`, *optional*, defaults to `False`):
            Replace a ResNet-style stem (strided 7x7 conv + max-pool) by one 3x3 stride-1 conv, the
            usual adaptation of ImageNet ResNets to 32x32 input.
        highpass_input (`bool`, *optional*, defaults to `False`):
            Feed the convolutions the image plus fixed high-pass residuals of it (SRM-style kernels,
            every kernel on every channel), as forensic detectors do to see traces rather than content.
        global_pooling (`str`, *optional*, defaults to `"flatten"`):
            How the last feature map becomes a vector: `"flatten"` (the paper), `"mean"` or
            `"mean_std"` (average and standard deviation of each channel over positions).
        histogram_bins (`int`, *optional*, defaults to 0):
            When positive, whole-image colour statistics join the features: a soft histogram with this
            many bins per channel, mean, standard deviation, clipped shares, channel correlations.
        spectrum_size (`int`, *optional*, defaults to 0):
            When positive, the log-magnitude Fourier spectrum of the image's high-frequency residual,
            pooled to this many cells per side, joins the features.
        fake_threshold (`float`, *optional*):
            The model says FAKE when P(FAKE) is at least this. `cifake train` sets it to the cut-off
            with the best balanced accuracy on its validation split; unset means 0.5 (the argmax).
        input_encoding (`str`, *optional*):
            How the training images were stored: `"cifake-jpeg"` (32x32 JPEG, libjpeg quality 75, 4:2:0, as
            the CIFAKE release and the kit's datasets store both halves) or unset (lossless, or unknown).
            The kit's `predict`, `explain` and Space store a picture the same way before scoring it, so that
            a lossless PNG is not judged by its codec; the image processor itself leaves pixels as given.
        fake_families (`list[str]`, *optional*):
            Families of generators (two or more: "Stable Diffusion", "GAN", "DDPM", ...) that the output layer
            tells apart: one logit for REAL and one per family, trained on each FAKE image's family. The
            model's `logits` stay REAL/FAKE (P(FAKE) is the families' P summed); `family_logits` give each
            family's own, and each family's own score is P(family | family or REAL). `cifake train` sets it where its
            recipe asks for a family head and the training images come from two families or more;
            unset is the plain REAL/FAKE output.

    Example:

    ```python
    >>> from modeling import CifakeConfig, CifakeForImageClassification

    >>> config = CifakeConfig()  # the paper's best topology
    >>> model = CifakeForImageClassification(config)
    >>> model.config.id2label
    {0: 'FAKE', 1: 'REAL'}
    ```
    """

    model_type = "cifake_cnn"
    paddings: ClassVar[tuple[str, ...]] = ("valid", "same")
    poolings: ClassVar[tuple[str, ...]] = ("flatten", "mean", "mean_std")

    num_channels: int = 3
    image_size: int = 32
    conv_filters: list[int] | tuple[int, ...] = (32, 32)
    kernel_size: int = 3
    conv_padding: str = "valid"
    convs_per_block: int = 1
    use_batch_norm: bool = False
    dense_units: list[int] | tuple[int, ...] = (64,)
    hidden_act: str = "relu"
    dropout: float = 0.0
    backbone: str | None = None
    backbone_kwargs: dict | None = None
    backbone_input_size: int | None = None
    backbone_cifar_stem: bool = False
    highpass_input: bool = False
    global_pooling: str = "flatten"
    histogram_bins: int = 0
    spectrum_size: int = 0
    fake_threshold: float | None = None
    input_encoding: str | None = None
    fake_families: list[str] | tuple[str, ...] | None = None
    # Trainer keeps only the REAL/FAKE logits as predictions (validation, `trainer.predict`).
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["family_logits"]

    def __post_init__(self, **kwargs):
        self.conv_filters = list(self.conv_filters)
        self.dense_units = list(self.dense_units)
        if self.fake_families is not None:
            self.fake_families = list(self.fake_families)
        if self.id2label is None and kwargs.get("num_labels") in (None, 2):
            kwargs.pop("num_labels", None)
            self.id2label = dict(CIFAKE_ID2LABEL)
        if self.label2id is None and self.id2label is not None:
            self.label2id = {label: int(i) for i, label in self.id2label.items()}
        super().__post_init__(**kwargs)
        self._check()

    def _check(self) -> None:
        # Plain ValueErrors, raised here rather than in `validate_*` methods, so that callers see the
        # message itself and not a wrapper.
        for name in ("num_channels", "image_size", "kernel_size", "convs_per_block"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1.")
        if self.conv_padding not in self.paddings:
            raise ValueError(f"conv_padding={self.conv_padding!r} is not one of {', '.join(self.paddings)}.")
        if self.global_pooling not in self.poolings:
            raise ValueError(f"global_pooling={self.global_pooling!r} is not one of {', '.join(self.poolings)}.")
        if self.histogram_bins < 0 or self.histogram_bins == 1 or self.spectrum_size < 0:
            raise ValueError(f"histogram_bins={self.histogram_bins} and spectrum_size={self.spectrum_size} must be 0 (off) "
                             f"or at least 2 and 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1).")
        for name in ("conv_filters", "dense_units"):
            sizes = getattr(self, name)
            if any(size < 1 for size in sizes):
                raise ValueError(f"{name}={sizes}: every layer needs at least 1 unit; drop the layer instead.")
        if self.fake_threshold is not None and not 0.0 < self.fake_threshold < 1.0:
            raise ValueError(f"fake_threshold={self.fake_threshold} must be between 0 and 1 (exclusive), or None for 0.5.")
        if self.input_encoding not in (None, "cifake-jpeg"):
            raise ValueError(f"input_encoding={self.input_encoding!r} is not 'cifake-jpeg' or None.")
        if self.fake_families is not None and (len(set(self.fake_families)) != len(self.fake_families) or
                                               len(self.fake_families) < 2 or not all(self.fake_families)):
            raise ValueError(f"fake_families={self.fake_families} must name two families or more, each once; "
                             f"leave it unset for the plain REAL/FAKE output.")
        if self.backbone is None:
            if not self.conv_filters:
                raise ValueError("conv_filters is empty: give at least one convolutional layer, or a timm backbone.")
            if self.feature_map_size() < 1:
                raise ValueError(
                    f"{len(self.conv_filters)} conv layers with {self.conv_padding} padding shrink a "
                    f"{self.image_size}x{self.image_size} input to nothing. Use fewer layers or conv_padding='same'."
                )
        elif self.backbone_input_size is not None and self.backbone_input_size < 1:
            raise ValueError(f"backbone_input_size={self.backbone_input_size} must be at least 1.")

    def architecture(self) -> dict:
        """This class's own fields (the network's shape), for reports and tables."""
        own = set(CifakeConfig.__annotations__)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in own}

    def feature_map_size(self) -> int:
        """Height (= width) of the last convolutional feature map of the small-CNN family."""
        size = self.image_size
        for _ in self.conv_filters:
            for _ in range(self.convs_per_block):
                if self.conv_padding == "valid":
                    size -= self.kernel_size - 1
            if size < 2:
                return 0  # nothing left to pool
            size //= 2
        return size


__all__ = ["CifakeConfig"]
