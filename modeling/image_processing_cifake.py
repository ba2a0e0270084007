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
# Longer side / shorter side beyond which only the centre is kept before resizing. The 32x32 centre
# crop never sees more than the central square; without this bound a 300000x1 picture (1 KB as a PNG)
# would first be enlarged to 9,600,000x32 pixels.
MAX_ASPECT_RATIO = 4
_TRANSPARENT_BACKGROUND = (255, 255, 255)  # how viewers show transparent pixels


def central_part(image: np.ndarray, max_aspect_ratio: int = MAX_ASPECT_RATIO) -> np.ndarray:
    """The centre of a channels-first image whose longer side is at most `max_aspect_ratio` times its
    shorter side (a view, nothing copied); the image itself when it is within that bound."""
    height, width = image.shape[-2:]
    short = min(height, width)
    keep = min(max(height, width), short * max_aspect_ratio)
    if height > keep:
        top = (height - keep) // 2
        return image[..., top : top + keep, :]
    if width > keep:
        left = (width - keep) // 2
        return image[..., :, left : left + keep]
    return image


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
    normalise with mean 0.5 and std 0.5 to [-1, 1]. A picture more than 4 times as long as it is
    wide (or the reverse) is first cut to its central 4:1 part: the crop keeps less than that anyway,
    and the work stays bounded by the output, not by an attacker's choice of side length.
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

    def _preprocess(self, images, do_resize: bool, size, **kwargs):
        if do_resize and size.shortest_edge:  # images are channels first here (process_image)
            images = [central_part(image) for image in images]
        return super()._preprocess(images, do_resize=do_resize, size=size, **kwargs)


__all__ = ["CifakeImageProcessor"]
