"""`cifake build --demo`: a small, genuine real-vs-generated dataset from images shipped with the kit.

`data/demo/images.tar.gz`: 840 CIFAR-10 test photos, 393 genuine Stable Diffusion v1.x images (four public
repositories, reduced to 32x32) and 420 from 14 generators trained on CIFAR-10 (9 GANs, 5 DDPMs), their sources
and licences beside it. `demo_folder()` unpacks it once (tarfile's "data" filter) into a cache folder named by
its hash; `build_demo` imports it, one `generator_id` per generator, 20% of each drawn into test.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

from .build import import_folders

# The SOURCES files beside the archive -> where they go in the unpacked folders.
_SOURCES = {"generated-SOURCES.csv": "generated/SOURCES.csv", "generated-SOURCES.md": "generated/SOURCES.md",
            "real-SOURCES.md": "real/SOURCES.md"}
DEMO_TEST_FRACTION = 0.2
DEMO_SEED = 0
_INTRO = (
    "**The CIFAKE kit's offline demo.** A small, genuine detection task shipped with the kit: real CIFAR-10 "
    "test photos against genuine Stable Diffusion v1.x images (CIFAKE's own generator family, from public "
    "repositories, reduced to 32x32) and images from GANs and DDPMs trained on CIFAR-10, each listed below "
    "with its source and licence. None of them is a CIFAKE image: CIFAKE's FAKE half cannot be bundled. "
    "It is too small to rank detectors; use it to try the kit end to end."
)


def bundle_folder() -> Path:
    """The bundle as shipped: images.tar.gz and the SOURCES files beside it."""
    return Path(str(resources.files("dataset_builder") / "data" / "demo"))


def demo_folder() -> Path:
    """The demo images as folders (real/<class>/, generated/<generator>/, with their SOURCES), unpacked once."""
    bundle = bundle_folder()
    archive = bundle / "images.tar.gz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cifake-kit" / f"demo-{digest}"
    if (cache / "generated" / "SOURCES.csv").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        with tarfile.open(archive) as tar:
            # The archive ships inside the package, as trusted as its code; Pythons before 3.11.4 (Debian 12's
            # 3.11.2) have no extraction filters, so "data" is asked only where it exists.
            tar.extractall(staging, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        for name, target in _SOURCES.items():
            shutil.copyfile(bundle / name, staging / target)
        try:
            staging.rename(cache)  # whole or not at all; another process may have won the race
        except OSError:
            if not (cache / "generated" / "SOURCES.csv").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


def demo_sources() -> tuple[list[Path], list[str]]:
    """(REAL folders, FAKE "generator_id=folder" specs) of the bundled demo."""
    root = demo_folder()
    with open(root / "generated" / "SOURCES.csv", newline="") as handle:
        generators = {row["folder"]: row["generator_id"] for row in csv.DictReader(handle)}
    return [root / "real"], [f"{generator}={root / 'generated' / folder}" for folder, generator in generators.items()]


def build_demo(output_dir: str | Path = "cifake", overwrite: bool = False):
    """Import the bundled demo images into `output_dir`; returns the import's report."""
    real, fake = demo_sources()
    return import_folders(real, fake, output_dir=output_dir, test_fraction=DEMO_TEST_FRACTION, seed=DEMO_SEED,
                          overwrite=overwrite, intro=_INTRO, source_datasets=["extended|cifar10"])
