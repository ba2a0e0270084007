"""`CifakeBuilder`: the dataset's features and splits, and the examples of each split, for `cifake build`.

Real photos come from CIFAR-10 (`cifar10.py`) and generated images from a finished `FakeStore`
(`generate.py`); both are encoded here by the one encoder. (Imports of existing files,
`import-kaggle` and `import-folder`, need no builder: importing.py writes their rows as Parquet
and `datasets` reads them back.)
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

_CITATION = """\
@article{bird2024cifake,
  title   = {{CIFAKE}: Image Classification and Explainable Identification of {AI}-Generated Synthetic Images},
  author  = {Bird, Jordan J. and Lotfi, Ahmad},
  journal = {IEEE Access},
  volume  = {12},
  pages   = {15642--15650},
  year    = {2024},
  doi     = {10.1109/ACCESS.2024.3356122}
}
@techreport{krizhevsky2009learning,
  title       = {Learning Multiple Layers of Features from Tiny Images},
  author      = {Krizhevsky, Alex},
  institution = {University of Toronto},
  year        = {2009}
}
"""
_DESCRIPTION = (
    "CIFAKE: 32x32 real photographs (CIFAR-10) and images generated from the same ten classes "
    "by a text-to-image diffusion model, labelled REAL or FAKE."
)
_HOMEPAGE = "https://arxiv.org/abs/2303.14126"
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
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=cifake_features(),
            supervised_keys=("image", "label"),
            homepage=_HOMEPAGE,
            citation=_CITATION,
            license="mit",
        )

    def _split_generators(self, dl_manager):
        fakes = FakeStore(self.config.fakes_dir).read_items(plan_fakes(self.config.per_class))
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"split": split, "fakes": fakes})
            for split in SPLITS
        ]

    def _generate_examples(self, split, fakes):
        fmt = self.config.image_format
        count = self.config.per_class[split]
        generation = self.config.generation
        for class_idx in range(len(CIFAR10_CLASSES)):
            for index in range(count):
                row = fakes[_fake_key(split, class_idx, index)]
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


def _fake_key(split, class_idx, index):
    return FakeItem(split, class_idx, index)


def _with_format(name: str, image_format: str) -> str:
    return name if image_format == "jpeg" else name.rsplit(".", 1)[0] + ".png"

