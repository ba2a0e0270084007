"""What a CIFAKE dataset is made of: labels, classes, image size, splits, provenance columns.

Plain data, free to import. `dataset_builder.features` builds the `datasets.Features` from it;
`modeling` and `space` read the same names. (The three model files that travel to the Hub cannot
import the kit and spell the labels out themselves; a test keeps them equal.)
"""

# Same order as imagefolder / Keras give on the published folders (sorted names): FAKE=0, REAL=1.
LABEL_NAMES = ["FAKE", "REAL"]
FAKE, REAL = 0, 1

# CIFAR-10's own class order (batches.meta `label_names`).
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

SPLITS = ["train", "test"]
IMAGE_SIZE = 32  # pixels, height and width
# No picture for a 32x32 model is larger: a bigger file is refused before a byte of it is read.
MAX_IMAGE_FILE_BYTES = 64 << 20

# Provenance of a generated image (null for real photos). Names follow diffusers' arguments.
PROVENANCE_COLUMNS = ["prompt", "seed", "generator_id", "num_inference_steps", "guidance_scale"]

# `generator_id` of the images from the kit's tiny random-weight pipeline (the offline demo). They
# are noise-like textures, not the output of any trained generator: a model card or a Space that
# finds this id in a model's report says the model is a demonstration.
DEMO_GENERATOR_ID = "cifake-kit/tiny-random-sd"

# Generator families, read from a `generator_id` (first match wins): CIFAKE's own family first.
GENERATOR_FAMILIES = [("Stable Diffusion", ("stable-diffusion", "stable_diffusion")),
                      ("DDPM", ("ddpm", "ddim", "diffusion")),
                      ("GAN", ("gan",))]


def generator_family(generator_id: str | None) -> str | None:
    """"Stable Diffusion", "DDPM" or "GAN" where the id names one (`CompVis/stable-diffusion-v1-4`,
    `w86763777/pytorch-ddpm`, `pfnet-research/chainer-gan-lib:began`), else None."""
    name = (generator_id or "").lower()
    return next((family for family, words in GENERATOR_FAMILIES if any(word in name for word in words)), None)

