"""The dataset's columns as `datasets.Features`, and the builder's own settings.

Labels, classes, image size and splits come from `cifake_kit.schema`, shared with the rest of the
kit; what is only the builder's business (sizes, filter, encoder) is set here. Importing this
module is free; `cifake_features()` imports `datasets` when called.
"""

from cifake_kit.codec import JPEG_QUALITY, JPEG_SUBSAMPLING  # noqa: F401 (the one encoder's settings, one place)
from cifake_kit.schema import CIFAR10_CLASSES, LABEL_NAMES

# The paper's sizes: images per CIFAR-10 class and label.
FULL_PER_CLASS = {"train": 5000, "test": 1000}

# The generator of the published CIFAKE FAKE half, per the paper; `cifake build`'s default.
CIFAKE_GENERATOR_ID = "CompVis/stable-diffusion-v1-4"

# Downscaling filter for generated images (and for any image the model's processor receives):
# PIL's bicubic, which antialiases when shrinking.
DOWNSCALE_FILTER = "bicubic"

# The encoder both halves go through. The published CIFAKE JPEGs carry libjpeg's quality-75
# tables (luma/chroma sums 1858/2780) with 4:2:0 chroma subsampling.
IMAGE_FORMATS = ["jpeg", "png"]
# What an import does with each file's bytes (importing.Encoding): re-encode with the one encoder
# unless already in it, lossless PNG for both halves, or keep every file as it is.
IMPORT_ENCODINGS = ["cifake-jpeg", "png", "keep"]
CIFAKE_QTABLE_SUMS = (1858, 2780)


def cifake_features():
    """The `datasets.Features` of every CIFAKE split, built or imported."""
    from datasets import ClassLabel, Features, Image, Value

    return Features(
        {
            "image": Image(),
            "label": ClassLabel(names=LABEL_NAMES),
            "cifar10_class": ClassLabel(names=CIFAR10_CLASSES),
            "prompt": Value("string"),
            "seed": Value("int64"),
            "generator_id": Value("string"),
            "num_inference_steps": Value("int32"),
            "guidance_scale": Value("float32"),
        }
    )
