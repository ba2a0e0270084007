"""Bench inputs from ../shared/data: the 10,000 CIFAR-10 test photos, decoded once.

The benches measure speed, not accuracy: the FAKE-labelled images here are the same photos with
a faint fixed pattern, not generated images of any kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifake_kit.schema import CIFAR10_CLASSES, PROVENANCE_COLUMNS


def photo_files(shared: Path) -> list[tuple[Path, int]]:
    root = shared / "data" / "cifar10-test-jpeg"
    return [(p, c) for c, name in enumerate(CIFAR10_CLASSES) for p in sorted((root / name).glob("*.jpg"))]


def decoded_photos(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    """(10000, 32, 32, 3) uint8 and their CIFAR-10 classes."""
    from PIL import Image

    files = photo_files(shared)
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p, _ in files])
    return pixels, np.array([c for _, c in files])


def write_test_folder(shared: Path, out: Path) -> Path:
    """A 20,000-image CIFAKE-layout folder (test split only): the 10,000 photos as REAL (their own
    JPEG bytes) and the same photos plus a faint pattern, JPEG q75, as FAKE."""
    from datasets import Dataset, DatasetDict

    from dataset_builder.cards import render_card
    from dataset_builder.export import write_dataset_folder
    from dataset_builder.features import cifake_features
    from dataset_builder.imaging import encode_image

    files = photo_files(shared)
    pixels, classes = decoded_photos(shared)
    pattern = ((np.indices((32, 32)).sum(0) % 2) * 6 - 3)[..., None].astype(np.int16)
    rows = {name: [] for name in cifake_features()}
    for (path, c), photo in zip(files, pixels):
        for label, data in ((1, path.read_bytes()), (0, encode_image(np.clip(photo + pattern, 0, 255).astype(np.uint8)))):
            rows["image"].append({"bytes": data, "path": path.name})
            rows["label"].append(label)
            rows["cifar10_class"].append(c)
            for column in PROVENANCE_COLUMNS:
                rows[column].append(None)
    dataset = DatasetDict({"test": Dataset.from_dict(rows, features=cifake_features())})
    (out / ".work").mkdir(parents=True, exist_ok=True)
    write_dataset_folder(dataset, out, render_card(dataset, "Benchmark fixture (not generated images)."), out / ".work")
    return out
