"""The offline demo (`cifake build --demo`): genuine generated images, with their provenance, bundled."""

import csv
import hashlib

import numpy as np
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage

from cifake_kit.schema import DEMO_GENERATOR_ID, generator_family
from dataset_builder.demo import build_demo, bundle_folder, demo_folder, demo_sources


def test_every_bundled_generated_image_is_recorded_with_its_source_and_licence():
    root = demo_folder() / "generated"
    with open(root / "SOURCES.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.png"))
    assert files == sorted(f"{row['folder']}/{row['file']}" for row in rows)  # nothing unrecorded, nothing missing
    for row in rows:
        pixels = np.asarray(PILImage.open(root / row["folder"] / row["file"]))
        assert pixels.shape == (32, 32, 3), row["file"]
        assert hashlib.md5(pixels.tobytes()).hexdigest() == row["pixel_md5"], row["file"]
        assert row["repo"] and len(row["commit"]) == 40 and row["path"] and row["licence"]
        assert generator_family(row["generator_id"]) == row["family"], row  # the id names its family
    generators = {row["generator_id"] for row in rows}
    assert DEMO_GENERATOR_ID not in generators
    by_family = {family: [row for row in rows if row["family"] == family] for family in ("GAN", "DDPM", "Stable Diffusion")}
    assert sum(map(len, by_family.values())) == len(rows)
    assert len({row["generator_id"] for row in by_family["GAN"]}) == 9 and len(by_family["GAN"]) == 270
    assert len({row["generator_id"] for row in by_family["DDPM"]}) == 5 and len(by_family["DDPM"]) == 150
    for row in by_family["GAN"] + by_family["DDPM"]:  # tiles of published sample grids
        assert row["row"].isdigit() and row["col"].isdigit() and not row["prompt"]
    sd = by_family["Stable Diffusion"]
    assert len(sd) == 393 and {row["generator_id"] for row in sd} == {
        f"stable-diffusion:{repo}" for repo in ("vincegmz/stable-diffusion", "bento170502/stable-diffusion",
                                                "JoshCLWren/stable-diffusion", "edmundhong/stable-diffusion")}
    for row in sd:  # each names its model, prompt and licence as its source repository gives them
        assert row["generator_id"] == f"stable-diffusion:{row['repo']}" and row["model"].startswith("SD v1.")
        assert row["prompt"] and row["licence"].startswith(("MIT", "CreativeML Open RAIL-M"))
    assert {row["model"] for row in sd if row["repo"] == "vincegmz/stable-diffusion"} == {"SD v1.4"}
    # bento170502 drew two samples of each prompt: one of them only, so no split can part siblings
    bento = [row["prompt"] for row in sd if row["repo"] == "bento170502/stable-diffusion"]
    assert len(bento) == 120 and len(set(bento)) == len(bento)
    text = (root / "SOURCES.md").read_text()
    assert all(f"`{row['generator_id']}`" in text for row in rows) and "CreativeML Open RAIL-M" in text
    assert sum(1 for _ in (demo_folder() / "real").glob("*/*.jpg")) == 840


def test_the_spaces_stable_diffusion_examples_and_the_bento170502_examples_sibling_are_not_in_the_demo():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "space" / "examples"
    with open(demo_folder() / "generated" / "SOURCES.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["family"] == "Stable Diffusion"]
    shown = sorted(examples.glob("fake-sd*.png"))
    assert len(shown) == 3
    bundled = {row["pixel_md5"] for row in rows}
    for path in shown:
        assert hashlib.md5(np.asarray(PILImage.open(path).convert("RGB")).tobytes()).hexdigest() not in bundled, path.name
    # bento170502 drew two samples of each prompt: the Space's cat's sibling stays out too (vincegmz's one
    # class prompt, "a photo of a dog", is every one of its images, as CIFAKE's per-class prompts)
    cat = 'prompt "a photo of a cat on a leash"'
    assert cat in (examples / "SOURCES.md").read_text()
    assert not [row["file"] for row in rows if row["prompt"].endswith(cat.split('"')[1])]


def test_the_bundle_stays_small():
    data = bundle_folder().parent
    assert sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) < 3_000_000
    assert sorted(p.name for p in bundle_folder().iterdir()) == [
        "generated-SOURCES.csv", "generated-SOURCES.md", "images.tar.gz", "real-SOURCES.md"]  # one archive, SOURCES beside


def test_the_demo_dataset_holds_the_bundled_images_by_generator(tmp_path):
    report = build_demo(tmp_path / "demo")
    assert report.counts == {"train": {"REAL": 672, "FAKE": 651}, "test": {"REAL": 168, "FAKE": 162}}
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


@pytest.mark.slow
def test_a_short_training_run_on_the_demo_detects_its_stable_diffusion_images(tmp_path):
    """The README's main job in small: CIFAKE's generator family is detected well above chance."""
    from modeling.training.train import train

    build_demo(tmp_path / "demo")
    result = train(data=str(tmp_path / "demo"), output_dir=tmp_path / "model", config="cifake-forensic", num_train_epochs=10,
                   seed=0)
    families = {row["family"]: row for row in result.metrics["per_family"]}
    sd = families["Stable Diffusion"]
    assert sd["images"] == 78  # 20% of each of the 4 sources' images, against the 168 REAL test photos
    # Chance is 0.50 with a standard error of about 0.04 here (78 vs 168 images): 0.80 is over 7 of them.
    assert sd["roc_auc_vs_real"] >= 0.80, sd
