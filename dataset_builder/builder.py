"""`CifakeBuilder`, for `cifake build`: CIFAR-10 photos (`cifar10.py`) and a finished `FakeStore` (`generate.py`),
both encoded by the one encoder. (Imports need no builder: importing.py writes their rows already.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets
import numpy as np
from datasets.builder import Key

from cifake_kit.schema import CIFAR10_CLASSES, FAKE, IMAGE_SIZE, PROVENANCE_COLUMNS, REAL, SPLITS

from .cifar10 import load_cifar10
from .features import cifake_features
from .generate import FakeItem, FakeStore, plan_fakes
from .imaging import encode_image
from .kaggle import kaggle_filename

_NO_PROVENANCE = dict.fromkeys(PROVENANCE_COLUMNS)


@dataclass
class CifakeConfig(datasets.BuilderConfig):
    """Where the examples come from; see the module docstring."""

    cifar10: str | None = None  # Hub id or path
    per_class: dict = field(default_factory=dict)  # images per class and label, by split
    fakes_dir: str | None = None  # a finished FakeStore folder
    generation: dict = field(default_factory=dict)  # generator_id, num_inference_steps, guidance_scale
    image_format: str = "jpeg"


class CifakeBuilder(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = CifakeConfig
    BUILDER_CONFIGS = [CifakeConfig(name="default")]
    VERSION = datasets.Version("1.0.0")

    def _info(self):
        # The card (description, citation, licence) is cards.py's: this info never leaves the Arrow cache.
        return datasets.DatasetInfo(features=cifake_features(), supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        fakes = FakeStore(self.config.fakes_dir).read_items(plan_fakes(self.config.per_class))
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split, "fakes": fakes}) for split in SPLITS]

    def _generate_examples(self, split, fakes):
        fmt = self.config.image_format
        count = self.config.per_class[split]
        generation = self.config.generation
        for class_idx in range(len(CIFAR10_CLASSES)):
            for index in range(count):
                row = fakes[FakeItem(split, class_idx, index)]
                pixels = np.frombuffer(row["pixels"], np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, 3)
                name = _with_format(kaggle_filename("FAKE", split, class_idx, index), fmt)
                yield Key(FAKE, class_idx * count + index), {
                    "image": {"bytes": encode_image(pixels, fmt), "path": f"{split}/FAKE/{name}"},
                    "label": FAKE,
                    "cifar10_class": class_idx,
                    "prompt": row["prompt"],
                    "seed": row["seed"],
                    **generation,
                }
        real = load_cifar10(self.config.cifar10, split)
        for position, idx in enumerate(real.first_per_class(count)):
            class_idx, index = divmod(position, count)
            name = _with_format(kaggle_filename("REAL", split, class_idx, index), fmt)
            yield Key(REAL, position), {
                "image": {"bytes": encode_image(real.images[idx], fmt), "path": f"{split}/REAL/{name}"},
                "label": REAL,
                "cifar10_class": class_idx,
                **_NO_PROVENANCE,
            }


def _with_format(name: str, image_format: str) -> str:
    return name if image_format == "jpeg" else name.rsplit(".", 1)[0] + ".png"

