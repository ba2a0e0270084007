import io

import numpy as np
import pytest
from PIL import Image

from cifake_kit.errors import CifakeError
from dataset_builder.imaging import codec_signature, downscale, encode_image

CIFAKE_JPEG = "JPEG 32x32 RGB, tables 1858/2780, 4:2:0"  # the published JPEGs' libjpeg quality-75 tables, baseline


def codec(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return codec_signature(image)


def test_jpeg_encoder_writes_the_cifake_tables():
    assert codec(encode_image(np.full((32, 32, 3), 128, np.uint8))) == CIFAKE_JPEG


def test_jpeg_encoder_matches_the_published_cifake_files(shared_data):
    assert codec((shared_data / "cifar10-test-jpeg" / "cat" / "0000.jpg").read_bytes()) == CIFAKE_JPEG


def test_encoding_a_bundled_photo_is_close_to_the_published_jpeg(shared_data, sample_photos):
    images, labels = sample_photos
    first_cat = images[np.flatnonzero(labels == 3)[0]]
    ours = np.asarray(Image.open(io.BytesIO(encode_image(first_cat))), dtype=np.int16)
    published = np.asarray(Image.open(shared_data / "cifar10-test-jpeg" / "cat" / "0000.jpg"), dtype=np.int16)
    assert np.abs(ours - published).mean() < 1.0


def test_png_is_lossless(sample_photos):
    image = sample_photos[0][0]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_image(image, "png")))), image)


def test_unknown_format():
    with pytest.raises(CifakeError, match="Unknown image format 'gif'"):
        encode_image(np.zeros((32, 32, 3), np.uint8), "gif")


@pytest.mark.parametrize("mode, size", [("RGB", (512, 512)), ("RGBA", (64, 48)), ("L", (33, 33)), ("P", (32, 32))])
def test_downscale_gives_32x32_rgb(mode, size):
    image = Image.new(mode, size)
    pixels = downscale(image)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


def test_downscale_is_pil_bicubic():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    expected = np.asarray(image.resize((32, 32), Image.Resampling.BICUBIC))
    assert np.array_equal(downscale(image), expected)
