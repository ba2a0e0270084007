"""Column names, label order and image conventions: the one source of truth for the dataset.

Everything here is plain data so that importing it is free; `cifake_features()` builds the
`datasets.Features` object on demand.
"""

# Same order as imagefolder / Keras give on the published folders (sorted names): FAKE=0, REAL=1.
LABEL_NAMES = ["FAKE", "REAL"]
FAKE, REAL = 0, 1

# CIFAR-10's own class order (batches.meta `label_names`).
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

SPLITS = ["train", "test"]
# The paper's sizes: images per CIFAR-10 class and label.
FULL_PER_CLASS = {"train": 5000, "test": 1000}

# Provenance of a generated image (null for real photos). Names follow diffusers' arguments.
PROVENANCE_COLUMNS = ["prompt", "seed", "generator_id", "num_inference_steps", "guidance_scale"]

IMAGE_SIZE = 32
# Downscaling filter for generated images (and for any image the model's processor receives):
# PIL's bicubic, which antialiases when shrinking.
DOWNSCALE_FILTER = "bicubic"

# The encoder both halves go through. The published CIFAKE JPEGs carry libjpeg's quality-75
# tables (luma/chroma sums 1858/2780) with 4:2:0 chroma subsampling.
IMAGE_FORMATS = ["jpeg", "png"]
JPEG_QUALITY = 75
JPEG_SUBSAMPLING = "4:2:0"
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
