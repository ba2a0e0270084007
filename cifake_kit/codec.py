"""CIFAKE's one encoder, shared by the dataset side (which stores both halves with it) and the model
side (which scores a picture as its training data stored it).

The published CIFAKE JPEGs carry libjpeg's quality-75 tables (luma/chroma sums 1858/2780) with 4:2:0
chroma subsampling. A detector trained on such files and shown a lossless PNG sees a codec it never
met: the same picture reads as more FAKE (measured in the README), so kit tools store a picture the
way the model's training data was stored before scoring it (`config.input_encoding`).
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
    """H x W x 3 uint8 pixels (a C-contiguous numpy array) as CIFAKE's JPEG (libjpeg quality 75, 4:2:0).

    No numpy import here: the kit's leaf package stays light (a test keeps it so)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def cifake_jpeg_tables() -> dict:
    """The quantisation tables `encode_jpeg` writes: libjpeg quality 75, the published CIFAKE ones."""
    buffer = io.BytesIO()
    Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE)).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    with Image.open(buffer) as image:
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
