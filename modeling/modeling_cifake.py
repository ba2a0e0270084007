"""The CIFAKE classifier: the paper's small CNN family, or a timm backbone, with a dense head.

Reads from small to big: one conv layer, a block (convs + 2x2 max-pool), the forensic inputs
(fixed high-pass residuals, whole-image statistics, the residual's spectrum), the encoder, the
timm backbone wrapper, then the PreTrainedModel classes. This file travels to the Hub with the weights
(`trust_remote_code`): it imports only torch, transformers, timm and the standard library, and its
own config by a relative import.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutputWithNoAttention
from transformers.utils import can_return_tuple

from .configuration_cifake import CifakeConfig


class CifakeConvLayer(nn.Module):
    """Convolution, optional batch norm, activation."""

    def __init__(self, config: CifakeConfig, in_channels: int, out_channels: int):
        super().__init__()
        padding = config.kernel_size // 2 if config.conv_padding == "same" else 0
        self.convolution = nn.Conv2d(
            in_channels, out_channels, config.kernel_size, padding=padding, bias=not config.use_batch_norm
        )
        self.normalization = nn.BatchNorm2d(out_channels) if config.use_batch_norm else nn.Identity()
        self.activation = ACT2FN[config.hidden_act]

    def forward(self, hidden_state: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.convolution(hidden_state)))


class CifakeConvBlock(nn.Module):
    """`convs_per_block` conv layers, then 2x2 max-pooling."""

    def __init__(self, config: CifakeConfig, in_channels: int, out_channels: int):
        super().__init__()
        channels = [in_channels] + [out_channels] * config.convs_per_block
        self.layers = nn.ModuleList(CifakeConvLayer(config, a, b) for a, b in zip(channels, channels[1:]))
        self.pooler = nn.MaxPool2d(2)

    def forward(self, hidden_state: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden_state = layer(hidden_state)
        return self.pooler(hidden_state)


# Fixed high-pass kernels in the spirit of steganalysis' spatial rich models (SRM): a second-order
# horizontal and vertical residual, the 3x3 "KB" and the 5x5 "KV" kernel. Each keeps the noise-like
# part of an image (demosaicing, sensor noise, a generator's upsampling traces) and drops its content.
HIGHPASS_KERNELS = (
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    [[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, -2, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]],
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
)
HIGHPASS_GAIN = 4.0  # residuals of [-1, 1] pixels are small; this brings them near the pixels' scale


class CifakeHighPass(nn.Module):
    """The image plus its fixed high-pass residuals (every kernel on every channel), as extra channels.

    The kernels are a constant of the architecture, not learnt: a buffer, saved with the weights so
    that `from_pretrained` (which builds the model without running this constructor's arithmetic on
    real tensors) restores them."""

    def __init__(self, num_channels: int):
        super().__init__()
        kernels = torch.tensor(HIGHPASS_KERNELS, dtype=torch.float32)
        kernels = kernels / kernels.abs().sum(dim=(1, 2), keepdim=True) * 2 * HIGHPASS_GAIN
        self.register_buffer("kernels", kernels[:, None].repeat(num_channels, 1, 1, 1))
        self.num_channels = num_channels
        self.out_channels = num_channels * (1 + len(HIGHPASS_KERNELS))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        residuals = nn.functional.conv2d(pixel_values, self.kernels.to(pixel_values.dtype), padding=2,
                                         groups=self.num_channels)
        return torch.cat([pixel_values, residuals], dim=1)


class CifakeImageStatistics(nn.Module):
    """Global statistics of the whole image, no learnt weights: the distribution of each colour channel
    (a histogram of `bins` bins over [-1, 1], each pixel shared between its two nearest bin centres,
    mean, standard deviation, the share of pixels at the extremes) and the correlation between
    channels. Real photos clip highlights and shadows and carry a camera's colour statistics; a
    generator reproduces them only approximately."""

    def __init__(self, num_channels: int, bins: int):
        super().__init__()
        self.bins = bins
        self.register_buffer("centres", torch.linspace(-1.0, 1.0, bins))  # saved, as the high-pass kernels
        pairs = num_channels * (num_channels - 1) // 2
        self.num_features = num_channels * (bins + 4) + pairs

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        flat = pixel_values.flatten(2).float()  # (N, C, H*W)
        batch, channels, pixels = flat.shape
        position = (flat.clamp(-1.0, 1.0) + 1.0) * ((self.bins - 1) / 2.0)  # in bin units, 0 .. bins-1
        lower = position.floor().clamp(max=self.bins - 2)
        upper_weight = position - lower
        histogram = torch.zeros(batch, channels, self.bins, device=flat.device)
        histogram.scatter_add_(2, lower.long(), 1.0 - upper_weight)
        histogram.scatter_add_(2, lower.long() + 1, upper_weight)
        histogram = histogram / pixels
        mean, std = flat.mean(2), flat.std(2, correction=0)
        dark, bright = (flat <= -0.98).float().mean(2), (flat >= 0.98).float().mean(2)
        centred = (flat - mean[..., None]) / std[..., None].clamp_min(1e-3)
        correlation = centred @ centred.transpose(1, 2) / pixels
        rows, cols = torch.triu_indices(channels, channels, offset=1)
        features = [histogram.flatten(1), mean, std, dark, bright, correlation[:, rows, cols]]
        return torch.cat(features, dim=1).to(pixel_values.dtype)


class CifakeSpectrum(nn.Module):
    """The log-magnitude Fourier spectrum of the grey image's high-frequency residual, pooled to
    `size` x `size` cells (zero frequency in the middle): periodic traces of upsampling layers show
    as peaks at fixed frequencies, whatever the image shows."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.num_features = size * size

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        grey = pixel_values.float().mean(1, keepdim=True)
        residual = grey - nn.functional.avg_pool2d(grey, 3, stride=1, padding=1, count_include_pad=False)
        spectrum = nn.functional.adaptive_avg_pool2d(torch.log1p(torch.fft.fft2(residual).abs()), self.size)
        # Zero frequency to the middle. Rolling the pooled cells equals fftshift before pooling when the
        # cells tile the spectrum's halves exactly (32x32 into 8x8, 4x4, ...), and costs nothing.
        spectrum = torch.roll(spectrum, shifts=(self.size // 2, self.size // 2), dims=(-2, -1))
        return spectrum.flatten(1).to(pixel_values.dtype)


class CifakeEncoder(nn.Module):
    """The stack of conv blocks (one per entry of `config.conv_filters`), after the optional fixed
    high-pass input layer, then flattened (the paper) or pooled over positions."""

    def __init__(self, config: CifakeConfig):
        super().__init__()
        self.highpass = CifakeHighPass(config.num_channels) if config.highpass_input else None
        in_channels = self.highpass.out_channels if self.highpass is not None else config.num_channels
        channels = [in_channels] + config.conv_filters
        self.blocks = nn.ModuleList(CifakeConvBlock(config, a, b) for a, b in zip(channels, channels[1:]))
        self.global_pooling = config.global_pooling
        per_channel = {"flatten": config.feature_map_size() ** 2, "mean": 1, "mean_std": 2}[config.global_pooling]
        self.num_features = config.conv_filters[-1] * per_channel

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False):
        # Channels-last activations: on CPU (oneDNN) and GPU (cuDNN) the convolutions and above all the
        # max-pooling run much faster in this layout (pooling ~7x on CPU). The flattened features keep
        # the usual (channel, row, column) order, so weights do not depend on it.
        if self.highpass is not None:
            pixel_values = self.highpass(pixel_values)
        hidden_state, hidden_states = pixel_values.contiguous(memory_format=torch.channels_last), ()
        for block in self.blocks:
            hidden_state = block(hidden_state)
            if output_hidden_states:
                hidden_states += (hidden_state,)
        if self.global_pooling == "flatten":
            pooled = torch.flatten(hidden_state, 1)
        elif self.global_pooling == "mean":
            pooled = hidden_state.mean((2, 3))
        else:  # mean_std: the average response and how much it varies over the image
            pooled = torch.cat([hidden_state.mean((2, 3)), hidden_state.flatten(2).std(2)], dim=1)
        return hidden_state, pooled, hidden_states


class CifakeTimmBackbone(nn.Module):
    """A timm network without its classifier: feature map out, plus its own pooled features."""

    def __init__(self, config: CifakeConfig):
        super().__init__()
        import timm

        if not timm.is_model(config.backbone):
            raise ValueError(
                f"backbone={config.backbone!r} is not a timm model. List the known names with "
                f"`timm.list_models('*resnet*')`, for example 'resnet18' or 'vit_tiny_patch16_224'."
            )
        self.input_size = config.backbone_input_size
        self.model = timm.create_model(
            config.backbone, pretrained=False, num_classes=0, in_chans=config.num_channels, **(config.backbone_kwargs or {})
        )
        if config.backbone_cifar_stem:
            if not (isinstance(getattr(self.model, "conv1", None), nn.Conv2d) and hasattr(self.model, "maxpool")):
                raise ValueError(
                    f"backbone_cifar_stem needs a ResNet-style timm model (a `conv1` convolution and a "
                    f"`maxpool`); {config.backbone!r} has no such stem. Set backbone_cifar_stem=False."
                )
            stem = self.model.conv1
            self.model.conv1 = nn.Conv2d(stem.in_channels, stem.out_channels, 3, stride=1, padding=1, bias=False)
            self.model.maxpool = nn.Identity()
        # timm initialises its own layers; the PreTrainedModel init must leave them as they are.
        for module in self.model.modules():
            module._is_hf_initialized = True
        self.num_features = self.model.num_features

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False):
        if self.input_size is not None and pixel_values.shape[-1] != self.input_size:
            pixel_values = nn.functional.interpolate(
                pixel_values, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        features = self.model.forward_features(pixel_values)
        pooled = self.model.forward_head(features, pre_logits=True)
        return features, pooled, (features,) if output_hidden_states else ()


class CifakePreTrainedModel(PreTrainedModel):
    config: CifakeConfig
    config_class = CifakeConfig
    base_model_prefix = "cifake"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["CifakeConvBlock"]

    def _init_weights(self, module):
        # Keras' defaults, as in the paper's networks: Glorot-uniform kernels, zero biases.
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)


class CifakeModel(CifakePreTrainedModel):
    """The feature extractor: conv encoder (or timm backbone), no head."""

    def __init__(self, config: CifakeConfig):
        super().__init__(config)
        self.encoder = CifakeTimmBackbone(config) if config.backbone else CifakeEncoder(config)
        self.statistics = CifakeImageStatistics(config.num_channels, config.histogram_bins) if config.histogram_bins else None
        self.spectrum = CifakeSpectrum(config.spectrum_size) if config.spectrum_size else None
        extra = sum(branch.num_features for branch in (self.statistics, self.spectrum) if branch is not None)
        # The whole-image features come in their own units (shares, log magnitudes): standardise them.
        self.branch_norm = nn.BatchNorm1d(extra) if extra else None
        self.num_features = self.encoder.num_features + extra
        self.post_init()

    @can_return_tuple  # return_dict=False (or the config's): the output's tuple, as transformers' models give
    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, **kwargs
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        output_hidden_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        last_hidden_state, pooled, hidden_states = self.encoder(pixel_values, output_hidden_states=output_hidden_states)
        branches = [branch(pixel_values) for branch in (self.statistics, self.spectrum) if branch is not None]
        if branches:  # whole-image features beside the learnt ones
            pooled = torch.cat([pooled, self.branch_norm(torch.cat(branches, dim=1))], dim=1)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last_hidden_state,
            pooler_output=pooled,
            hidden_states=hidden_states if output_hidden_states else None,
        )


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """The batch's mean cross-entropy; given `num_items_in_batch` (Trainer's count of the accumulated batch), its
    sum over that count, as Trainer expects of a model that takes loss kwargs (identical without accumulation)."""
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(logits, targets.to(logits.device))
    loss = nn.functional.cross_entropy(logits, targets.to(logits.device), reduction="sum")
    return loss / torch.as_tensor(num_items_in_batch, device=loss.device)


@dataclass
class CifakeClassifierOutput(ImageClassifierOutputWithNoAttention):
    r"""
    family_logits (`torch.FloatTensor` of shape `(batch_size, 1 + len(config.fake_families))`, *optional*):
        With a family head (`config.fake_families`): REAL's logit, then each family's, in that order.
    """

    family_logits: torch.FloatTensor | None = None


class CifakeForImageClassification(CifakePreTrainedModel):
    """CifakeModel plus the dense head and the REAL/FAKE output layer (logits; softmax gives P). With
    `config.fake_families`, the output layer has a logit for REAL and one per family, and FAKE's logit is
    their log-sum-exp: P(FAKE) is the families' P summed."""

    def __init__(self, config: CifakeConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.cifake = CifakeModel(config)
        layers, width = [], self.cifake.num_features
        for units in config.dense_units:
            layers += [nn.Dropout(config.dropout), nn.Linear(width, units), ACT2FN[config.hidden_act]]
            width = units
        self.head = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        families = config.fake_families or []
        self.classifier = nn.Linear(width, 1 + len(families) if families else config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        family_targets: torch.LongTensor | None = None,
        **kwargs,
    ) -> CifakeClassifierOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, 32, 32)`):
            Images as the image processor makes them.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class ids (FAKE=0, REAL=1); when given, the cross-entropy loss is returned too.
        family_targets (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            With a family head: 0 for REAL, 1 + the index in `config.fake_families` for FAKE; when given, the
            loss is the cross-entropy over the families (in place of `labels`').
        kwargs:
            `num_items_in_batch`, which `Trainer` passes: the images of the whole accumulated batch. The loss is then
            this batch's sum over that count, so that gradient accumulation's steps add up to one mean.
        """
        if pixel_values is None:
            raise ValueError("pixel_values is required: pass images through the CIFAKE image processor.")
        outputs = self.cifake(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = family_logits = self.classifier(self.dropout(self.head(outputs.pooler_output)))
        if self.config.fake_families:
            merged = {"REAL": family_logits[:, 0], "FAKE": torch.logsumexp(family_logits[:, 1:], dim=-1)}
            logits = torch.stack([merged[self.config.id2label[i]] for i in range(len(merged))], dim=-1)
        else:
            family_logits = None
        loss = None
        if family_targets is not None and family_logits is not None:
            loss = _cross_entropy(family_logits, family_targets, kwargs.get("num_items_in_batch"))
        elif labels is not None:
            loss = _cross_entropy(logits, labels, kwargs.get("num_items_in_batch"))
        return CifakeClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                      family_logits=family_logits)

    def save_pretrained(self, *args, **kwargs):
        # `auto_map` names the classes a saved folder loads as with remote code; transformers lists only the
        # one being saved. The feature extractor beneath the head loads from the same weights
        # (AutoModel, pipeline("image-feature-extraction")): list it too.
        if getattr(self, "_auto_class", None) is not None:
            module = CifakeModel.__module__.split(".")[-1]
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), "AutoModel": f"{module}.CifakeModel"}
        return super().save_pretrained(*args, **kwargs)


__all__ = ["CifakeClassifierOutput", "CifakeForImageClassification", "CifakeModel", "CifakePreTrainedModel"]
