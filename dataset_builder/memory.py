"""How much memory `cifake build` needs to generate a batch, known before any of it is allocated.

`--resolution 65536` asks the VAE decoder for terabytes, which a machine finds out only when the kernel kills
the build. The generator is built from its configs alone under FakeTensorMode (shapes, no storage, the same
kernels: flash attention on CPU), and torch's MemTracker runs one denoising step and one VAE decode at the asked
size. Their peaks, plus weights and post-processing, with a margin measured against real generation, are compared
with the free memory before anything is written; what cannot fit is refused, naming a --resolution or
--batch-size that fits.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.hub import loading
from cifake_kit.memory import free_bytes

from .generate import TINY_GENERATOR, check_pipeline_folder, generator_hint
from .tiny_generator import make_tiny_pipeline

_RESOLUTION_STEP = 8  # build_dataset's rule for --resolution
_TEXT_TOKENS = 77  # CLIP's prompt length: the text embeddings every SD-family UNet attends to
# diffusers' postprocess to PIL, bytes per value of the decoded batch at its peak: the float32 tensor, its
# denormalised stack, `* 255` and `.round()`, and the uint8 copy.
_POSTPROCESS_BYTES_PER_VALUE = 4 + 4 + 4 + 4 + 1
# Against real generation on CPU (tiny pipeline 64-2048 px, SD v1.4's architecture 256 and 512 px, batches
# 1-8) the traced peak is within a few percent for large tensors and up to ~400 MB short below (allocator
# slack, first-call set-up): the margin and the fixed allowance make the estimate err high.
_ACTIVATION_MARGIN = 1.25
_FIXED_BYTES = 512 << 20


@dataclass
class GeneratorShape:
    """A text-to-image pipeline on fake tensors: what its generation allocates, measured without allocating."""
    unet: object | None  # the denoiser (a UNet2DConditionModel), traced one step; None: not traced
    vae: object  # decodes latents to images; traced once per batch
    fake_mode: object  # the FakeTensorMode both were built under
    weights: int  # bytes of weights still to be loaded (0 for a pipeline already in memory)
    scale_factor: int  # pixels per latent cell: --resolution must be a multiple of it
    native: int  # the pipeline's own image size, used when --resolution is left out
    element_size: int  # bytes per value where the pipeline runs (fp16 on CUDA, fp32 on CPU)

    def peak_bytes(self, batch_size: int, resolution: int, guided: bool) -> int:
        """Peak bytes of generating `batch_size` images at `resolution`, beyond the weights and the process."""
        import torch

        side = resolution // self.scale_factor
        vae, unet = self.vae, self.unet
        latent = (batch_size, vae.config.latent_channels, side, side)
        peaks = []
        with self.fake_mode, torch.inference_mode():
            if unet is not None:
                peaks.append(_traced_peak(unet, lambda: _denoise_step(unet, latent, guided)))
            peaks.append(_traced_peak(vae, lambda: vae.decode(torch.empty(latent) / vae.config.scaling_factor)))
        # Traced in float32 (FakeTensorMode cannot cast modules); activations scale with the element size.
        peak = max(peaks) * self.element_size // 4
        if self.element_size == 4:  # on CPU the images are post-processed in the same memory (on CUDA: the host's)
            peak = max(peak, batch_size * 3 * resolution * resolution * _POSTPROCESS_BYTES_PER_VALUE)
        return peak

    def need_bytes(self, batch_size: int, resolution: int, guided: bool) -> int:
        peak = self.peak_bytes(batch_size, resolution, guided)
        return self.weights + math.ceil(_ACTIVATION_MARGIN * peak) + _FIXED_BYTES


def _denoise_step(unet, latent: tuple, guided: bool) -> None:
    """One step as StableDiffusion(XL)Pipeline takes it: the batch doubled under guidance, the UNet, the guidance."""
    import torch

    config = unet.config
    latents = torch.empty(latent)
    model_input = torch.cat([latents] * 2) if guided else latents
    n = model_input.shape[0]
    extra = {}
    if config.addition_embed_type == "text_time":  # SDXL: pooled text embeddings and size conditioning
        extra["added_cond_kwargs"] = {
            "text_embeds": torch.empty(n, config.projection_class_embeddings_input_dim
                                       - 6 * config.addition_time_embed_dim),
            "time_ids": torch.empty(n, 6),
        }
    if config.time_cond_proj_dim is not None:
        extra["timestep_cond"] = torch.empty(n, config.time_cond_proj_dim)
    text = torch.empty(n, _TEXT_TOKENS, config.cross_attention_dim)
    noise = unet(model_input, 999, encoder_hidden_states=text, return_dict=False, **extra)[0]
    if guided:
        uncond, cond = noise.chunk(2)
        noise = uncond + 7.5 * (cond - uncond)
    del noise


def _traced_peak(module, run) -> int:
    """Bytes of the tensors alive at the peak of `run()` (on fake tensors), the weights of `module` left out."""
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(module)  # the weights from the start, so the peak is weights + the most activations
    with tracker, _convolution_workspaces():
        run()
    peak = 0
    for snapshot in tracker.get_tracker_snapshot("peak").values():
        weights = sum(size for kind, size in snapshot.items() if kind in ("Parameter", "Buffer"))
        peak += snapshot["Total"] - weights
    return peak


def _convolution_workspaces():
    """While each convolution runs, a buffer the size of its weight plus its larger of input and output: oneDNN's
    blocked-layout copies (measured on CPU), no tensors, which the tracker would not see otherwise."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    convolutions = {aten.conv1d, aten.conv2d, aten.conv3d, aten.convolution, aten._convolution}

    class ConvolutionWorkspaces(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            output = func(*args, **(kwargs or {}))
            if func.overloadpacket in convolutions:
                size = max(args[0].numel(), output.numel()) + args[1].numel()
                workspace = torch.empty(size, dtype=output.dtype, device=output.device)
                del workspace
            return output

    return ConvolutionWorkspaces()


def generator_shape(generator: str, pipe=None, device=None) -> GeneratorShape:
    """The shape of `generator` (or of `pipe`, loaded already) for generation on `device`, from configs alone."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    device = torch.device(device or "cpu")
    element_size = 2 if device.type == "cuda" else 4  # load_generator's dtypes
    fake_mode = FakeTensorMode()
    if pipe is not None:
        parts = {"unet": getattr(pipe, "unet", None), "vae": pipe.vae}
        with fake_mode:
            built = {name: type(part).from_config(part.config).eval() for name, part in parts.items()
                     if part is not None}
        weights = 0  # in memory already: not free
    else:
        with fake_mode:
            built = _fake_components(generator)
        weights = element_size * sum(t.numel() for part in built.values() if isinstance(part, torch.nn.Module)
                                     for t in part.state_dict().values())
    unet, vae = built.get("unet"), built["vae"]
    if unet is not None and type(unet).__name__ != "UNet2DConditionModel":
        unet = None
    scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    sample_size = unet.config.sample_size if unet is not None else vae.config.sample_size // scale_factor
    sample_size = sample_size if isinstance(sample_size, int) else max(sample_size)
    return GeneratorShape(unet, vae, fake_mode, weights, scale_factor, sample_size * scale_factor, element_size)


def _fake_components(generator: str) -> dict:
    """Every part of `generator` with weights, built from its configs (under the caller's FakeTensorMode)."""
    if generator == TINY_GENERATOR:
        return dict(make_tiny_pipeline().components)
    from diffusers import DiffusionPipeline

    path = Path(generator).expanduser()
    source = str(path) if path.exists() else generator
    check_pipeline_folder(path)
    with loading("the generator", generator, generator_hint(generator)):
        index = DiffusionPipeline.load_config(source)  # model_index.json: (library, class) of each part
        parts = {}
        for name, spec in index.items():
            if name.startswith("_") or not isinstance(spec, (list, tuple)) or len(spec) != 2 or None in spec:
                continue
            part = _from_config(source, name, *spec)
            if part is not None:
                parts[name] = part
    if "vae" not in parts:
        raise CifakeError(f"Generator {generator!r} has no VAE: the kit generates with text-to-image latent "
                          f"diffusion pipelines (Stable Diffusion and its kin). Pass one of those as --generator.")
    return parts


def _from_config(source: str, name: str, library: str, class_name: str):
    """Part `name` of the pipeline at `source`, with random (here: fake) weights; None for parts without weights."""
    import diffusers
    from diffusers import ModelMixin
    from transformers import PreTrainedModel

    module = getattr(diffusers.pipelines, library, None)  # a pipeline's own module, as diffusers resolves it
    module = module if module is not None else importlib.import_module(library)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        return None
    if issubclass(cls, ModelMixin):
        return cls.from_config(cls.load_config(source, subfolder=name)).eval()
    if issubclass(cls, PreTrainedModel):
        return cls._from_config(cls.config_class.from_pretrained(source, subfolder=name)).eval()
    return None  # tokenizer, scheduler, feature extractor


def check_generation_fits(settings, pipe=None, device=None) -> GeneratorShape:
    """CifakeError, with the numbers and what to change, unless `settings.batch_size` images at a time at
    `settings.resolution` fit in the memory free on `device`."""
    import torch

    device = torch.device(device or "cpu")
    shape = generator_shape(settings.generator, pipe, device)
    resolution, batch = settings.resolution or shape.native, settings.batch_size
    # build_dataset takes multiples of 8 (SD's latent grid); a VAE that scales by more needs multiples of its factor.
    factor = math.lcm(_RESOLUTION_STEP, shape.scale_factor)
    if resolution % factor:
        raise CifakeError(f"--resolution must be a multiple of {factor} for this generator (its VAE's scale factor), "
                          f"got {resolution}. Try {max(factor, resolution // factor * factor)}.")
    guided = settings.guidance_scale > 1 and (shape.unet is None or shape.unet.config.time_cond_proj_dim is None)
    need = functools.cache(lambda b, r: shape.need_bytes(b, r, guided))  # each a trace: none twice
    have = free_bytes(device)
    if need(batch, resolution) <= have:
        return shape
    # Activations grow with images x pixels: that gives the guesses, which the traces then confirm.
    room = have - shape.weights - _FIXED_BYTES
    per_pixel = (need(batch, resolution) - shape.weights - _FIXED_BYTES) / (batch * resolution**2)
    smaller_batch = _largest(lambda b: need(b, resolution) <= have, 1, batch - 1,
                             int(room / (per_pixel * resolution**2)))
    largest = factor * _largest(lambda side: need(batch, side * factor) <= have, 1, resolution // factor - 1,
                                int(math.sqrt(max(room, 0) / (per_pixel * batch)) / factor))
    fixes = [f"--batch-size {smaller_batch} or less"] if smaller_batch else []
    if largest:
        fixes.append(f"--resolution {largest} or less (a multiple of {factor})"
                     + (f" at --batch-size {batch}" if smaller_batch else ""))
    fix = ("Pass " + ", or ".join(fixes) + ".") if fixes else (
        f"Even {factor}x{factor} images one at a time need {_gb(need(1, factor))}: free some memory, or build on a "
        f"machine with more.")
    size = f"{resolution}x{resolution}" + ("" if settings.resolution else " (the pipeline's own size)")
    raise CifakeError(f"Generating {batch} image{'s' * (batch > 1)} at a time at {size} needs about "
                      f"{_gb(need(batch, resolution))} (weights and activations), more than the {_gb(have)} free "
                      f"{'on the GPU' if device.type == 'cuda' else 'here'}; nothing was generated. {fix}")


def _largest(fits, low: int, high: int, guess: int) -> int:
    """The largest n in [low, high] with fits(n) (true up to some n, false after), else 0: galloping from
    `guess` until bracketed, then bisecting, so a right guess costs two traces."""
    good, bad = low - 1, high + 1  # fits(good) and not fits(bad), where they lie inside [low, high]
    n, step = min(max(guess, low), high), 1
    while good < n < bad and bad - good > 1:
        if fits(n):
            good, n = n, n + step
        else:
            bad, n = n, n - step
        step *= 2
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good if good >= low else 0


def _gb(size: int) -> str:
    return f"{size / 2**30:,.1f} GB"
