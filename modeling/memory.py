"""How much memory a model will take, known before any of it is allocated: the model is built on
PyTorch's `meta` device (shapes, no storage) and run once there, which gives its parameters and every
layer's activations, for the small CNNs and timm backbones alike (`conv_filters: [100000]` asks for a
1.4-billion-parameter dense layer). `train` and `evaluate` refuse with the numbers what does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cifake_kit.errors import CifakeError
from cifake_kit.memory import free_bytes
from modeling.modeling_cifake import CifakeForImageClassification

_FLOAT_BYTES = 4
# Training holds the weights, their gradients and Adam's two moments; the forward pass keeps (about)
# every layer's new output for the backward pass. Against the measured peak of real steps of the
# kit's recipes (bench/bench_memory.py) the estimate is 0.4x-0.95x: it errs low, so what it refuses
# cannot fit, and what fits is never refused.
_TRAINING_COPIES_PER_PARAMETER = 4
_TRAINING_COPIES_PER_ACTIVATION = 1
# Scoring frees each layer's output once the next is made: a layer's input and output at once, and
# some room for the libraries' workspaces.
_INFERENCE_COPIES_OF_PEAK = 3
# A smaller batch is suggested only when the model's own share leaves room to spare: where its
# weights and optimiser state take most of the free memory, a batch size that fits by the estimate
# (which errs low) is refused, or killed, by the next run.
_MOST_FOR_THE_MODEL = 0.5


@dataclass(frozen=True)
class Footprint:
    parameters: int  # weights and buffers, in elements
    activations: int  # every layer's output for one image, in elements
    peak_activation: int  # the largest single layer output for one image, in elements

    def training_bytes(self, batch_size: int) -> int:
        return _FLOAT_BYTES * (_TRAINING_COPIES_PER_PARAMETER * self.parameters
                               + _TRAINING_COPIES_PER_ACTIVATION * self.activations * batch_size)

    def inference_bytes(self, batch_size: int) -> int:
        return _FLOAT_BYTES * (self.parameters + _INFERENCE_COPIES_OF_PEAK * self.peak_activation * batch_size)


def meta_model(config):
    """The CifakeForImageClassification `config` describes, on the meta device: shapes, no storage."""
    with torch.device("meta"):
        return CifakeForImageClassification(config).eval()


def footprint(config, model=None) -> Footprint:
    """The model `config` describes (or its `meta_model`), measured on the meta device: nothing is allocated."""
    model = meta_model(config) if model is None else model
    parameters = sum(t.numel() for t in model.state_dict().values())
    outputs = []

    def record(module, inputs, output):
        if torch.is_tensor(output) and not any(output is given for given in inputs):  # Identity, Dropout: no new memory
            outputs.append(output.numel())

    leaves = [module for module in model.modules() if not any(module.children())]
    hooks = [module.register_forward_hook(record) for module in leaves]
    side = config.image_size
    try:
        with torch.no_grad():
            model(pixel_values=torch.empty(1, config.num_channels, side, side, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return Footprint(parameters, sum(outputs), max(outputs, default=0))


def check_fits(config, batch_size: int, training: bool, device=None, batch_flag: str | None = "--batch-size",
               what: str = "the model", model=None) -> Footprint:
    """CifakeError, with the numbers and what to change, unless `config`'s model fits in free memory
    for `batch_size` images at a time (training: weights, gradients, optimiser state and activations).
    `batch_flag` None: the batch size cannot change (a resumed run), so none is suggested."""
    found = footprint(config, model)
    cost = found.training_bytes if training else found.inference_bytes
    need, have = cost(batch_size), free_bytes(device)
    if need <= have:
        return found
    doing = "train" if training else "score"
    share, per_batch = cost(0), cost(1) - cost(0)
    fits = int((have - share) // per_batch) if per_batch and have > share else 0
    smaller = "Use fewer or smaller layers (conv_filters, dense_units) or a smaller backbone."
    if batch_flag is None:
        fix = "Free some memory, or go on where more is free (a resumed run keeps its batch size)."
    elif share > have * _MOST_FOR_THE_MODEL:  # a smaller batch would fit today, and not after a browser tab opens
        held = "weights, gradients and optimiser state" if training else "weights"
        fix = f"Its {held} alone take about {_gb(share)}, whatever the batch size. {smaller}"
    elif fits >= 1:
        fix = f"Pass {batch_flag} {fits}{' or less' if fits > 1 else ''}."
    else:
        fix = smaller
    raise CifakeError(
        f"{what[0].upper() + what[1:]} ({found.parameters:,} parameters, {found.activations:,} activations per image) "
        f"needs about {_gb(need)} to {doing} {batch_size} images at a time, more than the {_gb(have)} free here; "
        f"nothing was allocated. {fix}"
    )


def _gb(size: int) -> str:
    return f"{size / 2**30:,.1f} GB"
