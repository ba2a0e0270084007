"""Pixels in, file bytes out: the downscale and the one encoder both halves of CIFAKE go through."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin

from cifake_kit.codec import encode_jpeg, is_cifake_jpeg  # noqa: F401 (is_cifake_jpeg: importing's)
from cifake_kit.errors import CifakeError
from cifake_kit.schema import IMAGE_SIZE

from .features import IMAGE_FORMATS

# Downscaling filter for generated images (and the model's processor): PIL's bicubic, antialiased.
_DOWNSCALE = Image.Resampling.BICUBIC
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
_TRANSPARENT_BACKGROUND = (255, 255, 255)  # how viewers show transparent pixels
# Longer side / shorter side beyond which `fit` keeps only the centre before resizing (bounded work
# for a 300000x1 picture); the model's image processor keeps the same bound, a test keeps them equal.
MAX_ASPECT_RATIO = 4


def downscale(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """RGB `size` x `size` uint8 pixels of `image`, shrunk with the dataset's one filter."""
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), resample=_DOWNSCALE)
    return np.asarray(image, dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB view of any PIL image: EXIF-upright, 16-bit greyscale scaled, transparency on white (as the
    model's image processor, which travels alone and keeps its own copy; a test keeps them equal)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)  # convert() would clip at 255 instead of scaling
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        if image.mode == "F" and pixels.max(initial=0) <= 1.0:
            top = 1.0
        image = Image.fromarray(np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _TRANSPARENT_BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def fit(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """RGB `size` x `size` pixels of any image: its shorter side brought to `size` with the dataset's
    filter, then the centre cropped. A square image is resized exactly as `downscale` does; one more
    than `MAX_ASPECT_RATIO` times as long as wide (or the reverse) is cut to its central part first."""
    image = to_rgb(image)
    width, height = image.size
    keep = min(max(width, height), min(width, height) * MAX_ASPECT_RATIO)
    if width > keep or height > keep:
        left, top = (width - min(width, keep)) // 2, (height - min(height, keep)) // 2
        image = image.crop((left, top, left + min(width, keep), top + min(height, keep)))
        width, height = image.size
    if width == height:
        return downscale(image, size)
    scale = size / min(width, height)
    resized = image.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                           resample=_DOWNSCALE)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def encode_image(pixels: np.ndarray, image_format: str = "jpeg") -> bytes:
    """Encode H x W x 3 uint8 pixels as both halves are: CIFAKE's quality-75 4:2:0 JPEG, or lossless PNG."""
    if image_format not in IMAGE_FORMATS:
        raise CifakeError(f"Unknown image format {image_format!r}. Use one of: {', '.join(IMAGE_FORMATS)}.")
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if image_format == "jpeg":
        return encode_jpeg(pixels)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def codec_signature(image: Image.Image) -> str:
    """A short description of an opened file's encoding (format, size, mode, JPEG tables and
    subsampling): two halves of a dataset whose signatures differ can be told apart by codec alone."""
    if image.format != "JPEG":
        return f"{image.format} {image.size[0]}x{image.size[1]} {image.mode}"
    tables = image.quantization
    key = (image.size, image.mode, JpegImagePlugin.get_sampling(image), bool(image.info.get("progressive")),
           *(tuple(tables[k]) for k in sorted(tables)))
    return _jpeg_signature(key)


@lru_cache(maxsize=256)  # an import meets a handful of encodings, 120,000 times over
def _jpeg_signature(key: tuple) -> str:
    (width, height), mode, sampling, progressive, *tables = key
    sums = "/".join(str(sum(table)) for table in tables)
    return (f"JPEG {width}x{height} {mode}, tables {sums}, {_SUBSAMPLING_NAMES.get(sampling, 'unknown')}"
            f"{', progressive' if progressive else ''}")


@lru_cache(maxsize=2)
def encoder_signature(image_format: str) -> str:
    """The codec signature of what `encode_image` writes at 32x32."""
    data = encode_image(np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8), image_format)
    with Image.open(io.BytesIO(data)) as image:
        return codec_signature(image)
