import io

import numpy as np
import pytest
from PIL import Image

from cifake_kit.errors import CifakeError
from dataset_builder.features import CIFAKE_QTABLE_SUMS
from dataset_builder.imaging import downscale, encode_image, encoder_settings


def test_jpeg_encoder_writes_the_cifake_tables():
    ours = encoder_settings(encode_image(np.full((32, 32, 3), 128, np.uint8)))
    assert ours["qtable_sums"] == CIFAKE_QTABLE_SUMS and ours["subsampling"] == "4:2:0" and not ours["progressive"]


def test_jpeg_encoder_matches_the_published_cifake_files(shared_data):
    published = encoder_settings((shared_data / "cifar10-test-jpeg" / "cat" / "0000.jpg").read_bytes())
    assert published["qtable_sums"] == CIFAKE_QTABLE_SUMS
    assert encoder_settings(encode_image(np.full((32, 32, 3), 128, np.uint8))) == published


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
