"""The rows of `cifake build`: CIFAR-10 photos (`cifar10.py`) and a finished `FakeStore` (`generate.py`), both
encoded by the one encoder, in the dataset's schema. (Imports need no builder: importing.py writes their rows.)
"""

from __future__ import annotations

import numpy as np

from cifake_kit.schema import CIFAR10_CLASSES, FAKE, IMAGE_SIZE, LABEL_NAMES, REAL

from .cifar10 import load_cifar10
from .features import cifake_features
from .generate import FakeItem
from .imaging import encode_image
from .kaggle import kaggle_filename


def build_tables(cifar10, counts: dict[str, int], fakes: dict, generation: dict, image_format: str) -> dict:
    """{split: [its FAKE table, its REAL table]}: `counts[split]` images per class and label, class by class, named
    as the Kaggle release names them. `fakes`: `FakeStore.read_items`; `generation`: the FAKE rows' provenance
    (generator_id, num_inference_steps, guidance_scale)."""
    import pyarrow as pa

    tables = {}
    for split, count in counts.items():
        real = load_cifar10(cifar10, split)
        fake_rows = []
        for class_idx in range(len(CIFAR10_CLASSES)):
            for index in range(count):
                row = fakes[FakeItem(split, class_idx, index)]
                pixels = np.frombuffer(row["pixels"], np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, 3)
                fake_rows.append({**_row(split, FAKE, class_idx, index, pixels, image_format), "prompt": row["prompt"],
                                  "seed": row["seed"], **generation})
        real_rows = [_row(split, REAL, *divmod(position, count), real.images[idx], image_format)
                     for position, idx in enumerate(real.first_per_class(count))]
        # Columns a row leaves out are null: a REAL photo has no provenance.
        tables[split] = [pa.Table.from_pylist(rows, schema=cifake_features().arrow_schema)
                         for rows in (fake_rows, real_rows)]
    return tables


def _row(split: str, label: int, class_idx: int, index: int, pixels: np.ndarray, image_format: str) -> dict:
    name = kaggle_filename(LABEL_NAMES[label], split, class_idx, index)
    name = name if image_format == "jpeg" else name.rsplit(".", 1)[0] + ".png"
    return {"image": {"bytes": encode_image(pixels, image_format), "path": f"{split}/{LABEL_NAMES[label]}/{name}"},
            "label": label, "cifar10_class": class_idx}
