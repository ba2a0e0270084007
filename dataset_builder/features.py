"""The dataset's columns as `datasets.Features` (labels, classes, sizes from `cifake_kit.schema`) and the
builder's own settings. Importing it is free; `cifake_features()` imports `datasets` when called."""

from cifake_kit.codec import JPEG_QUALITY, JPEG_SUBSAMPLING  # noqa: F401 (the one encoder's settings, one place)
from cifake_kit.schema import CIFAR10_CLASSES, LABEL_NAMES

# The paper's sizes: images per CIFAR-10 class and label.
FULL_PER_CLASS = {"train": 5000, "test": 1000}

# The generator of the published CIFAKE FAKE half, per the paper; `cifake build`'s default.
CIFAKE_GENERATOR_ID = "CompVis/stable-diffusion-v1-4"

IMAGE_FORMATS = ["jpeg", "png"]  # the encoder both halves go through
IMPORT_ENCODINGS = ["cifake-jpeg", "png", "keep"]  # what an import does with a file's bytes (importing.Encoding)


def cifake_features():
    """The `datasets.Features` of every CIFAKE split, built or imported."""
    from datasets import ClassLabel, Features, Image, Value

    return Features({"image": Image(), "label": ClassLabel(names=LABEL_NAMES),
                     "cifar10_class": ClassLabel(names=CIFAR10_CLASSES), "prompt": Value("string"),
                     "seed": Value("int64"), "generator_id": Value("string"),
                     "num_inference_steps": Value("int32"), "guidance_scale": Value("float32")})
