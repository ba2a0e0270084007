"""CIFAKE's one encoder: the dataset side stores both halves with it, the model side scores a picture as its
training data stored it (`config.input_encoding`). The published CIFAKE JPEGs carry libjpeg's quality-75 tables
(luma/chroma sums 1858/2780) with 4:2:0 subsampling; a detector shown a lossless PNG instead sees a codec it never
met, and the same picture reads as more FAKE (measured in the README).
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, JpegImagePlugin

from .schema import IMAGE_SIZE

JPEG_QUALITY = 75
JPEG_SUBSAMPLING = "4:2:0"
CIFAKE_JPEG = "cifake-jpeg"  # what a model records as its `input_encoding` when trained on such files


def encode_jpeg(pixels) -> bytes:
    """H x W x 3 uint8 pixels (a C-contiguous numpy array, not imported here) as CIFAKE's JPEG."""
    return _jpeg(Image.fromarray(pixels, mode="RGB")).getvalue()


def _jpeg(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    return buffer


@lru_cache(maxsize=1)
def cifake_jpeg_tables() -> dict:
    """The quantisation tables `encode_jpeg` writes: libjpeg quality 75, the published CIFAKE ones."""
    with Image.open(_jpeg(Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE)))) as image:
        return {k: list(v) for k, v in image.quantization.items()}


def is_cifake_jpeg(image: Image.Image) -> bool:
    """Whether an opened file already is what the encoder writes: a baseline 32x32 RGB JPEG with
    exactly CIFAKE's tables and 4:2:0 subsampling (its bytes can be kept: no second compression)."""
    return (
        image.format == "JPEG"
        and image.size == (IMAGE_SIZE, IMAGE_SIZE)
        and image.mode == "RGB"
        and not image.info.get("progressive", False)
        and JpegImagePlugin.get_sampling(image) == 2
        and {k: list(v) for k, v in image.quantization.items()} == cifake_jpeg_tables()
    )


def stored_encoding(data: bytes) -> str | None:
    """CIFAKE_JPEG for the bytes of a file `is_cifake_jpeg` accepts, else None (lossless, or another codec)."""
    with Image.open(io.BytesIO(data)) as image:
        return CIFAKE_JPEG if is_cifake_jpeg(image) else None
