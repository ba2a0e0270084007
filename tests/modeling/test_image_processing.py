import io

import numpy as np
import pytest
from PIL import Image

from dataset_builder.imaging import downscale
from modeling import CifakeImageProcessor
from modeling.image_processing_cifake import to_rgb


@pytest.fixture(scope="module")
def processor():
    return CifakeImageProcessor()


def raw(processor, image):
    """The processor's 32x32 pixels before scaling, as 0-255 values (H, W, C)."""
    out = processor(image, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0]
    return out.transpose(1, 2, 0)


def png_round_trip(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue()))


def sixteen_bit(value, size=(40, 30)):
    return png_round_trip(Image.fromarray(np.full(size[::-1], value, dtype=np.uint16)))


def odd_images():
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    return {
        "1x1": Image.new("RGB", (1, 1), (200, 10, 10)),
        "4000x3000": Image.new("RGB", (4000, 3000), (10, 200, 10)),
        "RGBA": rgb.convert("RGBA"),
        "greyscale": rgb.convert("L"),
        "palette": palette,
        "16-bit PNG": sixteen_bit(40000),
        "CMYK": rgb.convert("CMYK"),
        "bilevel": rgb.convert("1"),
        "LA": rgb.convert("LA"),
        "float": Image.fromarray(rng.random((20, 20), dtype=np.float32), mode="F"),
    }


@pytest.mark.parametrize("name", list(odd_images()))
def test_odd_images_become_the_models_input(processor, name):
    image = odd_images()[name]
    pixel_values = processor(image, return_tensors="pt")["pixel_values"]
    assert tuple(pixel_values.shape) == (1, 3, 32, 32)
    assert pixel_values.isfinite().all() and pixel_values.min() >= -1 and pixel_values.max() <= 1


def test_sixteen_bit_is_scaled_not_clipped(processor):
    # PIL's own convert("RGB") clips 16-bit values at 255: mid-grey would turn white.
    assert np.allclose(raw(processor, sixteen_bit(32768)), 128, atol=1)
    assert np.allclose(raw(processor, sixteen_bit(65535)), 255, atol=1)
    assert np.allclose(raw(processor, sixteen_bit(0)), 0, atol=1)


def test_transparency_is_shown_on_white():
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert to_rgb(half).getpixel((0, 0)) == (127, 127, 127)


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    upright = to_rgb(Image.open(io.BytesIO(buffer.getvalue())))
    assert upright.size == (20, 40)
    assert upright.getpixel((10, 5))[2] > 200  # blue now on top


def test_square_pictures_shrink_exactly_like_the_dataset_builder(processor):
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    assert np.array_equal(raw(processor, image), downscale(image))


def test_32x32_input_is_untouched(processor, sample_photos):
    photo = sample_photos[0][0]
    assert np.array_equal(raw(processor, Image.fromarray(photo)), photo)
    pixel_values = processor(Image.fromarray(photo), return_tensors="np")["pixel_values"][0]
    assert np.allclose(pixel_values, (photo.transpose(2, 0, 1) / 255 - 0.5) / 0.5, atol=1e-6)


def test_wide_pictures_are_centre_cropped_not_squashed(processor):
    image = Image.new("RGB", (300, 100), (255, 0, 0))
    image.paste((0, 255, 0), (100, 0, 200, 100))  # the middle third is green
    pixels = raw(processor, image)[:, 1:-1]  # the outermost columns blend with red under bicubic
    assert np.all(pixels[..., 1] > 250) and np.all(pixels[..., 0] < 5)  # squashed, two thirds would be red


def test_arrays_and_batches_work(processor, sample_photos):
    batch = [sample_photos[0][i] for i in range(4)]
    out = processor(batch, return_tensors="pt")["pixel_values"]
    assert tuple(out.shape) == (4, 3, 32, 32)
    from_pil = processor([Image.fromarray(a) for a in batch], return_tensors="pt")["pixel_values"]
    assert np.allclose(out.numpy(), from_pil.numpy())


def test_the_dataset_builder_converts_odd_modes_as_the_processor_does():
    # image_processing_cifake.py travels to the Hub alone, so the builder keeps its own copy of to_rgb.
    from PIL import ImageOps

    from dataset_builder.imaging import to_rgb as builder_to_rgb

    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    rotated = rgb.copy()
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate
    buffer = io.BytesIO()
    rotated.save(buffer, "JPEG", exif=exif)
    cases = [rgb.convert("RGBA"), rgb.convert("LA"), rgb.convert("P"), rgb.convert("CMYK"), rgb.convert("L"),
             Image.fromarray(rng.integers(0, 65536, (20, 30), dtype=np.uint16)), Image.open(buffer)]
    transparent = rgb.convert("P")
    transparent.info["transparency"] = 0
    cases.append(transparent)
    for image in cases:
        assert np.array_equal(np.asarray(builder_to_rgb(image)), np.asarray(to_rgb(image))), image.mode
    assert to_rgb(Image.open(buffer)).size == ImageOps.exif_transpose(Image.open(buffer)).size == (20, 30)


def test_extreme_aspect_ratios_cost_the_output_not_the_side_length(tmp_path):
    # A 300000x1 PNG is under 1 KB; enlarging its shorter side to 32 first took 3.7 GB and 10 s.
    import subprocess
    import sys
    import textwrap

    bomb = tmp_path / "wide.png"
    Image.new("RGB", (300_000, 1), (10, 200, 30)).save(bomb)
    assert bomb.stat().st_size < 2048
    script = textwrap.dedent(f"""
        import resource
        from PIL import Image
        from modeling import CifakeImageProcessor
        processor = CifakeImageProcessor()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for image in (Image.open({str(bomb)!r}), Image.new("RGB", (1, 300_000))):
            assert tuple(processor(image, return_tensors="pt")["pixel_values"].shape) == (1, 3, 32, 32)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    grown_mb = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert grown_mb < 100


def test_a_very_wide_picture_keeps_its_centre(processor):
    from dataset_builder.imaging import fit

    image = Image.new("RGB", (2000, 40), (255, 0, 0))
    image.paste((0, 255, 0), (980, 0, 1020, 40))  # the central square is green
    for pixels in (raw(processor, image)[:, 2:-2], fit(image)[:, 2:-2]):
        assert np.all(pixels[..., 1] > 250) and np.all(pixels[..., 0] < 5)


def test_pictures_within_the_aspect_bound_are_resized_as_before(processor):
    from transformers.image_transforms import resize

    rng = np.random.default_rng(5)
    for width, height in [(128, 32), (40, 160), (97, 33)]:  # 4:1, 1:4 and just under 3:1
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        short = min(width, height)
        whole = resize(np.asarray(image), (int(32 * height / short), int(32 * width / short)),
                       resample=Image.Resampling.BICUBIC)  # the backend's resize of the whole picture
        top, left = (whole.shape[0] - 32) // 2, (whole.shape[1] - 32) // 2
        assert np.array_equal(raw(processor, image), whole[top : top + 32, left : left + 32])


def test_the_dataset_builder_bounds_aspect_ratios_as_the_processor_does():
    from dataset_builder import imaging
    from modeling import image_processing_cifake

    assert imaging.MAX_ASPECT_RATIO == image_processing_cifake.MAX_ASPECT_RATIO
