import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image, Value

from cifake_kit.errors import CifakeError
from modeling import CifakeImageProcessor
from modeling import data as data_module
from modeling.data import CifakeCollator, CifakeTensorDataset, augment_batch, load_pixels, stratified_split


def test_load_pixels_decodes_every_image_once_and_caches(built_dataset, monkeypatch):
    pixels = load_pixels(built_dataset, "train")
    assert pixels.pixels.shape == (60, 3, 32, 32) and pixels.pixels.dtype == torch.uint8
    assert pixels.labels.tolist() == [0] * 30 + [1] * 30  # the builder writes FAKE first
    assert sorted(pixels.classes.tolist()) == sorted(list(range(10)) * 6)
    assert pixels.class_names[0] == "airplane" and pixels.generators == ["local:tiny-sd"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(data_module, "decode_to_pixels", no_decoding)
    again = load_pixels(built_dataset, "train")
    assert torch.equal(again.pixels, pixels.pixels) and torch.equal(again.labels, pixels.labels)


def test_decoded_pixels_are_the_stored_images(built_dataset):
    from datasets import load_dataset

    stored = load_dataset(str(built_dataset), split="test").with_format("numpy")
    pixels = load_pixels(built_dataset, "test", cache=False)
    assert np.array_equal(pixels.pixels.numpy(), np.stack(list(stored["image"])).transpose(0, 3, 1, 2))


def _write(tmp_path, features, rows, name="other"):
    """A dataset folder of someone else's making: Parquet written by `datasets` itself, no card."""
    out = tmp_path / name
    Dataset.from_dict(rows, features=Features(features)).to_parquet(str(out / "data" / "train-00000-of-00001.parquet"))
    return out


def _png(value, size=32):
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (size, size), (value, value, value)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def test_dataset_without_the_expected_columns(tmp_path):
    folder = _write(tmp_path, {"picture": Image(), "target": Value("int64")}, {"picture": [_png(1)], "target": [0]})
    with pytest.raises(CifakeError, match=r"has no column 'image' \(--image-column\); its columns are \['picture', 'target'\]"):
        load_pixels(folder, "train")


def test_other_column_names_and_label_case_are_read_as_named(tmp_path, capsys):
    from modeling.data import Columns

    features = {"picture": Image(), "target": ClassLabel(names=["fake", "real"]), "label": Value("string")}
    folder = _write(tmp_path, features, {"picture": [_png(1), _png(2)], "target": [1, 0], "label": ["x", "y"]})
    with pytest.raises(CifakeError, match=r"has labels .*not the ClassLabel names .*--label-column"):
        load_pixels(folder, "train", cache=False, columns=Columns(image="picture"))  # its own `label` is no ClassLabel
    pixels = load_pixels(folder, "train", cache=False, columns=Columns(image="picture", label="target"))
    assert pixels.labels.tolist() == [1, 0]  # real -> REAL (1), fake -> FAKE (0)
    assert "its labels are read by name, whatever their case: fake as FAKE, real as REAL" in capsys.readouterr().err


def test_an_image_folder_of_fake_and_real_trains(tmp_path, sample_photos):
    from PIL import Image as PILImage

    from modeling.training.train import train

    for label in ("fake", "real"):  # as imagefolder names the classes of such folders
        for split in ("train", "test"):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(6):
                PILImage.fromarray(sample_photos[0][i + (6 if label == "fake" else 0)]).save(
                    tmp_path / "data" / split / label / f"{i}.png")
    result = train(data=str(tmp_path / "data"), output_dir=tmp_path / "model", num_train_epochs=1, per_device_train_batch_size=4)
    assert result.metrics["support_fake"] == 6 and result.metrics["support_real"] == 6


def test_a_bare_name_is_never_read_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CifakeError, match=r"Cannot open the dataset 'cifake' \(--data\): there is no such folder "
                                          r"here, and it is no Hub dataset id \(owner/name\)"):
        load_pixels("cifake", "test")
    with pytest.raises(CifakeError, match="Cannot open the dataset 'me/not-cached'"):
        load_pixels("me/not-cached", "test")
    assert "'me/not-cached' is no folder here: reading the Hub dataset me/not-cached (datasets' cached copy" in \
        capsys.readouterr().err


def test_dataset_with_other_labels(tmp_path):
    features = {"image": Image(), "label": ClassLabel(names=["cat", "dog"])}
    folder = _write(tmp_path, features, {"image": [_png(1)], "label": [0]})
    with pytest.raises(CifakeError, match=r"has labels \['cat', 'dog'\], not the ClassLabel names \['FAKE', 'REAL'\]"):
        load_pixels(folder, "train")


def test_labels_are_mapped_by_name_and_other_sizes_resized(tmp_path):
    # An imagefolder-style set that sorted REAL before FAKE, with 64x64 images and no class column.
    features = {"image": Image(), "label": ClassLabel(names=["REAL", "FAKE"])}
    folder = _write(tmp_path, features, {"image": [_png(10, 64), _png(200, 64)], "label": [0, 1]})
    with pytest.raises(CifakeError, match="not 32x32, and no image processor"):
        load_pixels(folder, "train", cache=False)
    pixels = load_pixels(folder, "train", CifakeImageProcessor(), cache=False)
    assert pixels.labels.tolist() == [1, 0]  # REAL=1, FAKE=0 in the kit's order
    assert pixels.classes.tolist() == [-1, -1]
    assert pixels.pixels[0].float().mean() == pytest.approx(10, abs=0.5)


def test_missing_split_and_missing_folder(built_dataset, tmp_path):
    with pytest.raises(CifakeError, match="has no split 'validation'"):
        load_pixels(built_dataset, "validation")
    with pytest.raises(CifakeError, match="Cannot open the dataset .*Pass --data"):
        load_pixels(tmp_path / "nowhere", "train")


@pytest.mark.parametrize("weights", ["model.safetensors", "cifake_run.json"])
def test_a_model_folder_given_as_data_is_named_as_such(built_dataset, tmp_path, weights):
    model = tmp_path / "cifake-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / weights).write_text("{}")
    with pytest.raises(CifakeError, match=r"'.*cifake-model' \(--data\) is a model folder, not a dataset. Pass --data with "
                                          r"a dataset folder"):
        load_pixels(model, "test")
    # a dataset folder may hold a config.json of its own: only one beside weights or a run record is a model
    import shutil

    data = shutil.copytree(built_dataset, tmp_path / "cifake")
    (data / "config.json").write_text("{}")
    assert len(load_pixels(data, "test", cache=False)) == 40


def test_stratified_split_holds_out_every_group(built_dataset):
    pixels = load_pixels(built_dataset, "train")
    train, validation = stratified_split(pixels, 0.34, seed=0)
    assert len(train) + len(validation) == 60 and len(validation) == 20  # one of three per (label, class)
    groups = lambda p: sorted(zip(p.labels.tolist(), p.classes.tolist()))  # noqa: E731
    assert groups(validation) == sorted((label, c) for label in (0, 1) for c in range(10))
    seen = {bytes(x.numpy()) for x in train.pixels}
    assert not any(bytes(x.numpy()) in seen for x in validation.pixels)
    again, _ = stratified_split(pixels, 0.34, seed=0)
    assert torch.equal(again.pixels, train.pixels)
    with pytest.raises(CifakeError, match="--validation_fraction must be between 0 and 1"):
        stratified_split(pixels, 1.0, seed=0)


def test_batches_come_whole_and_normalise_like_the_processor(built_dataset):
    pixels = load_pixels(built_dataset, "test")
    batch = CifakeTensorDataset(pixels).__getitems__([3, 0, 7])
    assert batch["pixel_values"].shape == (3, 3, 32, 32) and batch["labels"].tolist() == pixels.labels[[3, 0, 7]].tolist()
    processor = CifakeImageProcessor()
    collated = CifakeCollator(processor)(batch)
    images = [pixels.pixels[i].permute(1, 2, 0).numpy() for i in (3, 0, 7)]
    expected = processor(images, return_tensors="pt")["pixel_values"]
    assert torch.allclose(collated["pixel_values"], expected, atol=1e-6)
    single = CifakeCollator(processor)([{"pixel_values": pixels.pixels[0], "labels": 1}])
    assert single["pixel_values"].shape == (1, 3, 32, 32) and single["labels"].tolist() == [1]


def test_augmentation_flips_and_shifts_but_keeps_content():
    generator = torch.Generator().manual_seed(0)
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).reshape(2, 3, 32, 32).to(torch.uint8)
    out = augment_batch(images, generator)
    assert out.shape == images.shape and out.dtype == torch.uint8
    same = augment_batch(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)  # seeded
    # With no padding the crop is the image itself: only flips remain.
    flipped = augment_batch(images, torch.Generator().manual_seed(1), pad=0)
    for original, result in zip(images, flipped):
        assert torch.equal(result, original) or torch.equal(result, original.flip(-1))
    many = augment_batch(images.repeat(50, 1, 1, 1), torch.Generator().manual_seed(2))
    assert 10 < len({bytes(x.numpy()) for x in many}) <= 2 * 2 * 81  # 2 images x 2 flips x 9x9 offsets


def test_a_huge_file_in_a_folder_dataset_is_refused_unread(tmp_path):
    """A folder of image files opened with load_dataset stores paths; a 3 GB (sparse) '.png' among them
    used to be read whole before PIL looked at it."""
    import subprocess
    import sys
    import textwrap

    from PIL import Image as PILImage

    for label in ("FAKE", "REAL"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(3):
            PILImage.new("RGB", (32, 32), (40 * i, 9, 9)).save(tmp_path / "train" / label / f"{i}.png")
    with open(tmp_path / "train" / "FAKE" / "huge.png", "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(3 << 30)
    script = textwrap.dedent(f"""
        import resource
        from cifake_kit.errors import CifakeError
        from modeling.data import load_pixels
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_pixels({str(tmp_path)!r}, "train", cache=False)
        except CifakeError as err:
            print(err)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    message, grown_mb = result.stdout.strip().splitlines()
    assert "huge.png) is a 3,072 MB file, more than an image can be here (64 MB); it was not read" in message
    assert int(grown_mb) < 200, result.stderr[-2000:]
