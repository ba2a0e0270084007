"""The offline demo (`cifake build --demo`): genuine generated images, with their provenance, bundled."""

import csv
import hashlib

import numpy as np
from datasets import Image, load_dataset
from PIL import Image as PILImage

from cifake_kit.schema import DEMO_GENERATOR_ID
from dataset_builder.demo import build_demo, bundle_folder, demo_folder, demo_sources


def test_every_bundled_generated_image_is_a_recorded_genuine_tile():
    root = demo_folder() / "generated"
    with open(root / "SOURCES.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.png"))
    assert files == sorted(f"{row['folder']}/{row['file']}" for row in rows)  # nothing unrecorded, nothing missing
    for row in rows:
        pixels = np.asarray(PILImage.open(root / row["folder"] / row["file"]))
        assert hashlib.md5(pixels.tobytes()).hexdigest() == row["pixel_md5"], row["file"]
        assert row["repo"] and len(row["commit"]) == 40 and row["licence"]
    generators = {row["generator_id"] for row in rows}
    assert len(generators) == 14 and DEMO_GENERATOR_ID not in generators
    assert sum(":" in g and "chainer-gan-lib" in g for g in generators) == 9  # the 9 GANs, and 5 DDPM samplers
    assert sum(1 for _ in (demo_folder() / "real").glob("*/*.jpg")) == len(rows) == 420


def test_the_bundle_stays_small():
    data = bundle_folder().parent
    assert sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) < 2_000_000
    assert sorted(p.name for p in bundle_folder().iterdir()) == [
        "generated-SOURCES.csv", "generated-SOURCES.md", "images.tar.gz", "real-SOURCES.md"]  # one archive, SOURCES beside


def test_the_demo_dataset_holds_the_bundled_images_by_generator(tmp_path):
    report = build_demo(tmp_path / "demo")
    assert report.counts == {"train": {"REAL": 336, "FAKE": 336}, "test": {"REAL": 84, "FAKE": 84}}
    assert not report.problems and not report.notes
    real, fakes = demo_sources()
    folders = {spec.split("=", 1)[1].rsplit("/", 1)[1]: spec.split("=", 1)[0] for spec in fakes}
    for split in ("train", "test"):
        ds = load_dataset(str(tmp_path / "demo"), split=split).cast_column("image", Image(decode=False))
        for row in ds:
            label, folder, name = row["image"]["path"].split("/", 2)
            if row["label"] == 0:
                assert row["generator_id"] == folders[folder]  # the generator its provenance names
                assert (demo_folder() / "generated" / folder / name).is_file()
            else:
                assert row["generator_id"] is None and row["cifar10_class"] is not None
    card = (tmp_path / "demo" / "README.md").read_text()
    assert "The CIFAKE kit's offline demo" in card and "`generated/SOURCES.md`" in card
