"""Pixels in, file bytes out: the downscale and the one encoder both halves of CIFAKE go through."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, JpegImagePlugin

from cifake_kit.errors import CifakeError
from cifake_kit.schema import IMAGE_SIZE

from .features import DOWNSCALE_FILTER, IMAGE_FORMATS, JPEG_QUALITY, JPEG_SUBSAMPLING

_FILTERS = {"bicubic": Image.Resampling.BICUBIC}
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def downscale(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """RGB `size` x `size` uint8 pixels of `image`, shrunk with the dataset's one filter."""
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), resample=_FILTERS[DOWNSCALE_FILTER])
    return np.asarray(image, dtype=np.uint8)


def encode_image(pixels: np.ndarray, image_format: str = "jpeg") -> bytes:
    """Encode H x W x 3 uint8 pixels with the dataset's encoder settings.

    JPEG uses libjpeg quality 75 with 4:2:0 subsampling (the tables of the published CIFAKE
    files); PNG is lossless. Real and generated images both come through here.
    """
    if image_format not in IMAGE_FORMATS:
        raise CifakeError(
            f"Unknown image format {image_format!r}. Use one of: {', '.join(IMAGE_FORMATS)}."
        )
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB")
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    else:
        image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def encoder_settings(data: bytes) -> dict:
    """What an encoded file reveals about its encoder: format, size, JPEG tables and subsampling.

    Two images with equal settings are indistinguishable by codec alone, which is what a fair
    real-vs-fake dataset needs.
    """
    with Image.open(io.BytesIO(data)) as image:
        settings = {"format": image.format, "mode": image.mode, "size": image.size}
        if image.format == "JPEG":
            tables = image.quantization
            settings["qtable_sums"] = tuple(sum(tables[k]) for k in sorted(tables))
            settings["subsampling"] = _SUBSAMPLING_NAMES.get(
                JpegImagePlugin.get_sampling(image), "unknown"
            )
            settings["progressive"] = bool(image.info.get("progressive", False))
    return settings
