"""`cifake build --demo`: a small, genuine real-vs-generated dataset from images shipped with the kit.

`data/demo/` holds 420 real CIFAR-10 test photos (42 per class, CIFAKE's own JPEGs) and 420 images
from 14 generators trained on CIFAR-10 (the 9 GANs of chainer-gan-lib, 5 DDPM samplers and
checkpoints), 30 each, with their sources and licences (`generated/SOURCES.csv`, `SOURCES.md`).
The demo imports them with `import_folders`, one `generator_id` per generator, 20% of each drawn
into test: a real detection task, offline, in seconds. Small as it is, expect a model trained on it
to score not far above chance: these generators leave few traces at 32x32.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

DEMO_TEST_FRACTION = 0.2
DEMO_SEED = 0
_INTRO = (
    "**The CIFAKE kit's offline demo.** A small, genuine detection task shipped with the kit: real CIFAR-10 "
    "test photos against images from generators trained on CIFAR-10 (listed below with their sources and "
    "licences). None of them is Stable Diffusion output: this is not CIFAKE's FAKE half, which cannot be "
    "bundled. It is too small to rank detectors; use it to try the kit end to end."
)


def demo_folder() -> Path:
    return Path(str(resources.files("dataset_builder") / "data" / "demo"))


def demo_sources() -> tuple[list[Path], list[str]]:
    """(REAL folders, FAKE "generator_id=folder" specs) of the bundled demo."""
    root = demo_folder()
    with open(root / "generated" / "SOURCES.csv", newline="") as handle:
        generators = {row["folder"]: row["generator_id"] for row in csv.DictReader(handle)}
    return [root / "real"], [f"{generator}={root / 'generated' / folder}" for folder, generator in generators.items()]


def build_demo(output_dir: str | Path = "cifake", overwrite: bool = False):
    """Import the bundled demo images into `output_dir`; returns the import's report."""
    from .build import import_folders

    real, fake = demo_sources()
    return import_folders(real, fake, output_dir=output_dir, test_fraction=DEMO_TEST_FRACTION, seed=DEMO_SEED,
                          overwrite=overwrite, intro=_INTRO)
