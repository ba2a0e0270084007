"""The CIFAKE classifier: the paper's small CNN family, or a timm backbone, with a dense head.

Reads from small to big: one conv layer, a block (convs + 2x2 max-pool), the encoder, the timm
backbone wrapper, then the PreTrainedModel classes. This file travels to the Hub with the weights
(`trust_remote_code`): it imports only torch, transformers and timm, and its own config by a
relative import.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutputWithNoAttention

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


class CifakeEncoder(nn.Module):
    """The stack of conv blocks; one block per entry of `config.conv_filters`."""

    def __init__(self, config: CifakeConfig):
        super().__init__()
        channels = [config.num_channels] + config.conv_filters
        self.blocks = nn.ModuleList(CifakeConvBlock(config, a, b) for a, b in zip(channels, channels[1:]))
        self.num_features = config.conv_filters[-1] * config.feature_map_size() ** 2

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False):
        # Channels-last activations: on CPU (oneDNN) and GPU (cuDNN) the convolutions and above all the
        # max-pooling run much faster in this layout (pooling ~7x on CPU). The flattened features keep
        # the usual (channel, row, column) order, so weights do not depend on it.
        hidden_state, hidden_states = pixel_values.contiguous(memory_format=torch.channels_last), ()
        for block in self.blocks:
            hidden_state = block(hidden_state)
            if output_hidden_states:
                hidden_states += (hidden_state,)
        return hidden_state, torch.flatten(hidden_state, 1), hidden_states


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
        elif isinstance(module, nn.BatchNorm2d):
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
        self.num_features = self.encoder.num_features
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        output_hidden_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        last_hidden_state, pooled, hidden_states = self.encoder(pixel_values, output_hidden_states=output_hidden_states)
        if not return_dict:
            return (last_hidden_state, pooled) + ((hidden_states,) if output_hidden_states else ())
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last_hidden_state,
            pooler_output=pooled,
            hidden_states=hidden_states if output_hidden_states else None,
        )


class CifakeForImageClassification(CifakePreTrainedModel):
    """CifakeModel plus the dense head and the REAL/FAKE output layer (logits; softmax gives P)."""

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
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, 32, 32)`):
            Images as the image processor makes them.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class ids (FAKE=0, REAL=1); when given, the cross-entropy loss is returned too.
        """
        if pixel_values is None:
            raise ValueError("pixel_values is required: pass images through the CIFAKE image processor.")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.cifake(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(self.head(outputs.pooler_output)))
        loss = nn.functional.cross_entropy(logits, labels.to(logits.device)) if labels is not None else None
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if outputs.hidden_states is not None else ())
            return (loss,) + output if loss is not None else output
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["CifakeForImageClassification", "CifakeModel", "CifakePreTrainedModel"]
