"""The CIFAKE image processor: any picture -> RGB -> 32x32 the way the dataset was made -> tensor.

The dataset builder shrinks generated images with PIL's bicubic filter (antialiased); this
processor uses the same filter, so a 512x512 picture reaches the model as the dataset's fakes did.
It is transformers' PIL-backend processor with CIFAKE's settings, plus a careful conversion to
8-bit RGB for modes a plain `convert("RGB")` gets wrong (16-bit greyscale, transparency) and EXIF
rotation. This file travels to the Hub with the weights: it imports only transformers, PIL, numpy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling

CIFAKE_MEAN = [0.5, 0.5, 0.5]
CIFAKE_STD = [0.5, 0.5, 0.5]
_TRANSPARENT_BACKGROUND = (255, 255, 255)  # how viewers show transparent pixels


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB view of any PIL image: first frame, EXIF-upright, transparency on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit greyscale: PIL's convert() clips at 255 instead of scaling.
        pixels = np.asarray(image, dtype=np.float64)
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


class CifakeImageProcessor(PilBackend):
    r"""
    Turns images of any size and mode into the CIFAKE model's `pixel_values` (batch, 3, 32, 32).

    Steps: 8-bit RGB conversion (`to_rgb`); shorter side to 32 with PIL bicubic (the filter the
    dataset builder downscales with), then a centred 32x32 crop, so a square picture is resized
    exactly as the dataset's fakes were and a 32x32 one is left untouched; scale to [0, 1];
    normalise with mean 0.5 and std 0.5 to [-1, 1].
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    size = {"shortest_edge": 32}
    do_center_crop = True
    crop_size = {"height": 32, "width": 32}
    image_mean = CIFAKE_MEAN
    image_std = CIFAKE_STD
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    def process_image(self, image, do_convert_rgb: bool | None = None, input_data_format=None, **kwargs):
        if isinstance(image, Image.Image):
            image = to_rgb(image)
            return np.moveaxis(np.asarray(image), -1, 0)  # channels first, as the backend works
        return super().process_image(image, do_convert_rgb=False, input_data_format=input_data_format, **kwargs)


__all__ = ["CifakeImageProcessor"]
