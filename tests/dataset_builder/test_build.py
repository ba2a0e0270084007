import collections
import io

import numpy as np
import pytest
from datasets import Image, load_dataset
from PIL import Image as PILImage

from cifake_kit.errors import CifakeError
from dataset_builder.build import build_dataset
from dataset_builder.imaging import codec_signature
from dataset_builder.kaggle import parse_kaggle_name


def raw_rows(folder, split):
    ds = load_dataset(str(folder), split=split)
    return ds.cast_column("image", Image(decode=False))


def codec(data: bytes) -> str:
    with PILImage.open(io.BytesIO(data)) as image:
        return codec_signature(image)


def test_build_end_to_end(tmp_path, build_kwargs):
    out = tmp_path / "cifake"
    report = build_dataset(output_dir=out, **build_kwargs)
    assert report.counts == {"train": {"FAKE": 20, "REAL": 20}, "test": {"FAKE": 10, "REAL": 10}}
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]  # work folder removed
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]

    ds = load_dataset(str(out))
    assert set(ds) == {"train", "test"}
    assert ds["train"].features["label"].names == ["FAKE", "REAL"]
    assert ds["train"].features["cifar10_class"].names[0] == "airplane"
    for split, per_class in (("train", 2), ("test", 1)):
        rows = ds[split]
        counts = collections.Counter(zip(rows["label"], rows["cifar10_class"]))
        assert counts == {(label, c): per_class for label in (0, 1) for c in range(10)}
        image = rows[0]["image"]
        assert image.size == (32, 32) and image.mode == "RGB"

    for row in raw_rows(out, "train"):
        name = row["image"]["path"].rsplit("/", 1)[1]
        assert parse_kaggle_name(name)[0] == row["cifar10_class"]
        if row["label"] == 0:
            assert row["generator_id"] == "local:tiny-sd"
            assert row["num_inference_steps"] == 2 and row["guidance_scale"] == 6.0
            assert row["prompt"].startswith("a ") and row["seed"] is not None
        else:
            assert row["prompt"] is None and row["seed"] is None and row["generator_id"] is None

    readme = (out / "README.md").read_text()
    assert "num_examples: 40" in readme and "path: data/train-*" in readme
    assert "## This copy" in readme and "local:tiny-sd" in readme


def test_real_images_are_the_cifar_photos(tmp_path, build_kwargs, cifar10_archive):
    from dataset_builder.cifar10 import load_cifar10

    out = tmp_path / "png"
    build_dataset(output_dir=out, image_format="png", **build_kwargs)
    train = load_cifar10(cifar10_archive, "train")
    expected = train.images[train.first_per_class(2)]
    ds = load_dataset(str(out), split="train").with_format("numpy")
    real = ds.filter(lambda label: label == 1, input_columns="label")
    assert np.array_equal(np.stack(list(real["image"])), expected)  # PNG is lossless


@pytest.mark.parametrize("image_format", ["jpeg", "png"])
def test_both_halves_share_one_encoder(tmp_path, build_kwargs, image_format):
    out = tmp_path / image_format
    build_dataset(output_dir=out, image_format=image_format, **build_kwargs)
    settings = collections.defaultdict(set)
    for split in ("train", "test"):
        for row in raw_rows(out, split):
            settings[row["label"]].add(codec(row["image"]["bytes"]))
    assert len(settings[0]) == 1 and settings[0] == settings[1]
    (only,) = settings[0]
    if image_format == "jpeg":
        assert only == "JPEG 32x32 RGB, tables 1858/2780, 4:2:0"  # the published CIFAKE tables
    else:
        assert only == "PNG 32x32 RGB"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"per_class": 0}, "--per-class must be at least 1, got 0"),
        ({"per_class": -3}, "--per-class must be at least 1, got -3"),
        ({"test_per_class": 0}, "--test-per-class must be at least 1"),
        ({"per_class": 5001}, "at most 5000 train images per class"),
        ({"per_class": 4}, "only 3 images of class 'airplane'"),
        ({"batch_size": 0}, "--batch-size must be a whole number of at least 1, got 0"),
        ({"seed": -1}, "--seed must be a whole number from 0 to 4,294,967,295, got -1"),
        ({"image_format": "webp"}, "Unknown image format 'webp'"),
    ],
)
def test_bad_counts_and_options(tmp_path, build_kwargs, overrides, message):
    out = tmp_path / "out"
    with pytest.raises(CifakeError, match=message):
        build_dataset(output_dir=out, **{**build_kwargs, **overrides})
    assert not (out / "data").exists()


def test_foreign_output_folder_is_left_alone(tmp_path, build_kwargs):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    with pytest.raises(CifakeError, match=r"already holds other files \(chapter1.tex\); nothing was written"):
        build_dataset(output_dir=out, **build_kwargs)
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]
    assert (out / "chapter1.tex").read_text() == "precious"


def test_foreign_readme_is_not_ours(tmp_path, build_kwargs):
    out = tmp_path / "project"
    out.mkdir()
    (out / "README.md").write_text("# my project\n")
    with pytest.raises(CifakeError, match="already holds other files"):
        build_dataset(output_dir=out, **build_kwargs)
    assert (out / "README.md").read_text() == "# my project\n"


def test_existing_dataset_needs_overwrite(tmp_path, build_kwargs):
    out = tmp_path / "cifake"
    build_dataset(output_dir=out, **build_kwargs)
    before = (out / "data" / "train-00000-of-00001.parquet").read_bytes()
    with pytest.raises(CifakeError, match="already holds a CIFAKE dataset. Pass --overwrite"):
        build_dataset(output_dir=out, **build_kwargs)
    assert (out / "data" / "train-00000-of-00001.parquet").read_bytes() == before
    build_dataset(output_dir=out, overwrite=True, **{**build_kwargs, "seed": 7})
    assert (out / "data" / "train-00000-of-00001.parquet").read_bytes() != before
    assert len(load_dataset(str(out), split="train")) == 40


def test_output_path_that_is_a_file(tmp_path, build_kwargs):
    out = tmp_path / "cifake"
    out.write_text("x")
    with pytest.raises(CifakeError, match="is a file, not a folder"):
        build_dataset(output_dir=out, **build_kwargs)
