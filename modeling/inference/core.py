"""A saved model at work: load it, open a user's picture safely, score decoded images in batches.
Everything that runs a trained model goes through here (evaluate, explain, predict, the Space).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

from cifake_kit.codec import CIFAKE_JPEG, encode_jpeg, is_cifake_jpeg
from cifake_kit.errors import CifakeError
from cifake_kit.hub import loading
from modeling.configuration_cifake import CifakeConfig
from modeling.image_processing_cifake import MAX_ASPECT_RATIO, CifakeImageProcessor
from modeling.memory import check_fits, meta_model

SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")  # what save_pretrained writes
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_MODEL_HINT = ("Pass a folder written by `cifake train` (config.json, model.safetensors, preprocessor_config.json), "
               "or a Hub model id while online.")


def load_model(model: str | Path, device: str | torch.device | None = None, batch_size: int = 1):
    """(model, image processor) from a saved folder or Hub id, in eval mode on `device`. Weights load from
    safetensors only, with no remote code; before anything is allocated, the config must describe a
    CIFAKE model that fits in free memory at `batch_size`, and the stored tensors must have its shapes."""
    where = str(model)
    path = Path(where).expanduser()
    if path.exists():
        check_model_folder(path)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with loading("the model", where, _MODEL_HINT):
        config = AutoConfig.from_pretrained(where, trust_remote_code=False)
        if not isinstance(config, CifakeConfig):
            raise CifakeError(f"{where!r} is a {config.model_type!r} model, not a CIFAKE one ({CifakeConfig.model_type!r}). "
                              f"{_MODEL_HINT}")
        shapes = meta_model(config)
        if path.exists():
            check_stored_shapes(path, shapes)
        check_fits(config, batch_size, training=False, device=device, what=f"the model {where!r}", model=shapes)
        net = AutoModelForImageClassification.from_pretrained(where, config=config, use_safetensors=True,
                                                              trust_remote_code=False)
        processor = AutoImageProcessor.from_pretrained(where, trust_remote_code=False)
    check_processor(processor, config, where)
    return net.to(device).eval(), processor


def check_processor(processor, config, where: str) -> None:
    """CifakeError unless `processor` makes the input the model was built for: the kit's processor,
    shorter side resized to the config's image_size and a centred square crop of that size. A
    processor file edited to ask for 4096x4096 would make every picture gigabytes of floats."""
    side = config.image_size
    if not isinstance(processor, CifakeImageProcessor):
        raise CifakeError(f"{where!r}: preprocessor_config.json names a {type(processor).__name__}, not the kit's "
                          f"CifakeImageProcessor; nothing was scored. Restore the file written with the model.")
    asked = {"size": {"shortest_edge": processor.size.shortest_edge}, "crop_size": {"height": processor.crop_size.height,
             "width": processor.crop_size.width}, "do_resize": processor.do_resize, "do_center_crop": processor.do_center_crop}
    needed = {"size": {"shortest_edge": side}, "crop_size": {"height": side, "width": side}, "do_resize": True,
              "do_center_crop": True}
    for key, value in needed.items():
        if asked[key] != value:
            raise CifakeError(
                f"{where!r}: preprocessor_config.json sets {key} {asked[key]}, but the model takes {side}x{side} pictures "
                f"(config.json image_size {side}), which needs {key} {value}; nothing was scored. Restore the file "
                f"written with the model."
            )


def check_stored_shapes(folder: Path, model) -> None:
    """CifakeError unless every tensor stored in `folder`'s safetensors that `model` (a meta model of
    its config) has is of the shape the config gives: a config edited to ask for a far larger model
    than its weights is found from the files' headers, before anything is allocated."""
    index = folder / "model.safetensors.index.json"
    names = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    stored = {}
    for name in names:
        with safe_open(str(folder / name), framework="pt") as weights:
            stored.update({key: (name, tuple(weights.get_slice(key).get_shape())) for key in weights.keys()})
    for key, tensor in model.state_dict().items():  # in the model's order: the first layer that differs
        if key in stored and stored[key][1] != tuple(tensor.shape):
            name, shape = stored[key]
            raise CifakeError(
                f"{str(folder)!r}: config.json and {name} disagree ({key} is {list(shape)} in the file but "
                f"{list(tensor.shape)} by the config); nothing was loaded. Restore the config.json written "
                f"with these weights, or train again."
            )


def check_model_folder(path: Path) -> None:
    """CifakeError unless `path` is a saved model folder whose weights are in safetensors."""
    where = str(path)
    if not (path / "config.json").is_file():
        raise CifakeError(f"{where!r} has no config.json: it is not a saved model. Pass a folder written by `cifake train`.")
    if any((path / name).is_file() for name in SAFE_WEIGHTS):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES and p.name != "training_args.bin")
    if pickles:
        raise CifakeError(
            f"{where!r} holds its weights only as pickles ({', '.join(pickles)}), which can run code when loaded; the "
            f"kit loads model.safetensors only. Where you trust the file, convert it once "
            f"(from_pretrained(folder).save_pretrained(new_folder) writes safetensors), or train again."
        )
    raise CifakeError(
        f"{where!r} has no model.safetensors: the weights are missing. Copy the whole folder written by "
        f"`cifake train`, or train again."
    )


def iter_outputs(model, collator, pixels: torch.Tensor, batch_size: int = 1024, indices=None) -> Iterator[tuple]:
    """(indices, normalised batch, the model's outputs) for uint8 images (N, 3, 32, 32), batch by batch;
    `collator` is a `data.CifakeCollator`, `indices` picks and orders the images (default: all)."""
    device = next(model.parameters()).device
    order = torch.arange(len(pixels)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = collator.normalize(pixels[index]).to(device, non_blocking=True)
        with torch.inference_mode():
            outputs = model(pixel_values=batch)
        yield index, batch, outputs


def iter_logits(
    model, collator, pixels: torch.Tensor, batch_size: int = 1024, indices=None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """`iter_outputs` with the float logits on the CPU in place of the outputs."""
    for index, batch, outputs in iter_outputs(model, collator, pixels, batch_size, indices):
        yield index, batch, outputs.logits.float().cpu()


class LogitsOnly(torch.nn.Module):
    """The model as a function of `pixel_values` to the logits tensor alone, which pytorch-grad-cam
    and torch's ONNX exporter want (a ModelOutput is neither)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


def decision_threshold(config) -> float:
    """The P(FAKE) at which `config`'s model says FAKE: its stored `fake_threshold`, else 0.5."""
    threshold = getattr(config, "fake_threshold", None)
    return 0.5 if threshold is None else float(threshold)


def fake_probability(logits: torch.Tensor, config) -> torch.Tensor:
    """P(FAKE) of each row of logits."""
    return logits.float().softmax(-1)[:, config.label2id.get("FAKE", 0)]


def verdict_ids(p_fake: torch.Tensor | np.ndarray, config, threshold: float | None = None) -> np.ndarray:
    """Label ids the model gives: FAKE when P(FAKE) reaches `threshold` (default: its decision threshold), else REAL."""
    fake, real = config.label2id.get("FAKE", 0), config.label2id.get("REAL", 1)
    cut = decision_threshold(config) if threshold is None else threshold
    return np.where(np.asarray(p_fake, dtype=np.float64) >= cut, fake, real)  # in float64, as the metrics compare


def predict(model, collator, pixels: torch.Tensor, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(the model's verdicts at its decision threshold, P(FAKE)) for uint8 images (N, 3, 32, 32)."""
    p_fake = score_pixels(model, collator, pixels, batch_size)[0]
    return verdict_ids(p_fake, model.config), p_fake


def own_scores(family_logits: torch.Tensor) -> torch.Tensor:
    """P(family | that family or REAL) for each row of a family head's logits (REAL's first): (N, families)."""
    return torch.sigmoid(family_logits[:, 1:] - family_logits[:, :1])


def likeliest_family(scores: dict[str, float]) -> str:
    """"most like FAMILY (its own score)" for a family head's scores of one picture (the highest); "" for none."""
    if not scores:
        return ""
    family = max(scores, key=scores.get)
    return f"most like {family} ({scores[family]:.4f})"


def score_pixels(model, collator, pixels: torch.Tensor, batch_size: int = 1024) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """P(FAKE) of uint8 images (N, 3, 32, 32) and, with a family head (`config.fake_families`), each family's
    own score, P(family | that family or REAL), which ranks that family's fakes against real photos untroubled
    by the other families' doubts (P(FAKE) sums them all); {} for a plain REAL/FAKE model. One pass."""
    families = getattr(model.config, "fake_families", None) or []
    p_fake, own = [], []
    for _, _, outputs in iter_outputs(model, collator, pixels, batch_size):
        p_fake.append(fake_probability(outputs.logits.float().cpu(), model.config))
        if families:
            own.append(own_scores(outputs.family_logits.float().cpu()))
    joined = torch.cat(own).numpy() if own else np.empty((0, len(families)), dtype=np.float32)
    return (torch.cat(p_fake).numpy() if p_fake else np.empty(0, dtype=np.float32),
            {family: joined[:, i] for i, family in enumerate(families)})


# What a reduced picture's verdict is worth (docs/detection.md, "Real photos reduced as the SD images were").
REDUCTION_CAVEAT = ("A model trained on CIFAKE-style data (real photos at CIFAR-10's native 32x32, generated images "
                    "reduced from larger ones) can take the reduction itself for a sign of FAKE: the kit's Stable "
                    "Diffusion detector calls most real photos reduced this way FAKE (the CIFAKE kit's "
                    "docs/detection.md). A FAKE verdict on a reduced photo says little.")


def is_reduced(model, image: Image.Image) -> bool:
    """Whether the model's processor shrinks `image` (its shorter side is longer than the model's input)."""
    return min(image.size) > model.config.image_size


def image_scores(model, processor, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(P(FAKE), a family head's `own_scores` (N, families) or None) of pictures already stored as the model's
    training data was (`as_stored_for`), in one batch on the model's device; returned on the CPU."""
    pixel_values = processor(images, return_tensors="pt")["pixel_values"].to(next(model.parameters()).device)
    with torch.inference_mode():
        outputs = model(pixel_values=pixel_values)
    family_logits = getattr(outputs, "family_logits", None)  # a model of an older kit has none
    return (fake_probability(outputs.logits.cpu(), model.config),
            None if family_logits is None else own_scores(family_logits.float().cpu()))


def score_images(model, processor, images: list[Image.Image]) -> torch.Tensor:
    """P(FAKE) of pictures already stored as the model's training data was (`image_scores`' first)."""
    return image_scores(model, processor, images)[0]


def as_stored_for(model, processor, image: Image.Image) -> Image.Image:
    """`image` as the model's training data stored its images (`config.input_encoding`): for "cifake-jpeg",
    reduced to the model's input size by its processor and saved as CIFAKE's JPEG, unless it already is
    one; else as given. A lossless PNG and a q75 JPEG photo then meet the model through one codec."""
    if model.config.input_encoding != CIFAKE_JPEG or is_cifake_jpeg(image):
        return image
    pixels = processor(image, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0]
    stored = Image.open(io.BytesIO(encode_jpeg(np.ascontiguousarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8).transpose(1, 2, 0)))))
    stored.load()
    return stored


def open_image(path: str | Path) -> tuple[Image.Image, list[str]]:
    """A fully decoded image and notes about it (the first frame of an animation, and so on); CifakeError
    for anything that is not one: a decompression bomb (PIL's pixel limit), a truncated or unreadable file."""
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
            f"{path.name!r} is not an image the CIFAKE kit can read. Use a PNG, JPEG, WebP, GIF, BMP or TIFF file."
        ) from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or damaged data
        raise CifakeError(f"{path.name!r} is damaged or truncated ({err}). Try another copy of the image.") from err
    if frames > 1:
        notes.append(f"Animated image: the first of its {frames} frames was classified.")
    if min(image.size) < 8:
        notes.append(f"The image is only {image.width}x{image.height} pixels: it was enlarged to 32x32 and says little.")
    if max(image.size) > MAX_ASPECT_RATIO * min(image.size):
        notes.append(f"The image is {image.width}x{image.height} pixels: only its central square was classified.")
    return image, notes
