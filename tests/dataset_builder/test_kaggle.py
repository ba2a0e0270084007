import csv

import pytest
from datasets import Image, load_dataset

from cifake_kit.errors import CifakeError
from dataset_builder import build
from dataset_builder.kaggle import kaggle_filename, parse_kaggle_name


@pytest.mark.parametrize("label", ["REAL", "FAKE"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_parser_reads_every_published_name(shared_data, label, split):
    with open(shared_data / "cifake-filelists" / label / f"{split}.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    per_class = {"train": 5000, "test": 1000}[split]
    assert len(rows) == 10 * per_class
    seen = set()
    for row in rows:
        class_idx, number = parse_kaggle_name(row["filename"])
        assert class_idx == int(row["class"]) - 1, row
        index = number - 1000 if (label, split) == ("FAKE", "train") else number  # FAKE train runs 1000-5999
        assert 0 <= index < per_class, row
        assert kaggle_filename(label, split, class_idx, index) == row["filename"]
        seen.add((class_idx, index))
    assert len(seen) == 10 * per_class  # every (class, rank) exactly once


@pytest.mark.parametrize("name", ["1 (1).jpg", "1 (11).jpg", "cat.jpg", "1(2).jpg", "1 (2).gif", "-1.jpg", ""])
def test_parser_rejects_other_names(name):
    with pytest.raises(ValueError, match="CIFAKE"):
        parse_kaggle_name(name)


def test_import_keeps_bytes_and_reports_bad_files(kaggle_folder, tmp_path):
    out = tmp_path / "out"
    report = build.import_kaggle(kaggle_folder["root"], output_dir=out)

    assert report.counts == {"train": {"FAKE": 20, "REAL": 20}, "test": {"FAKE": 20, "REAL": 20}}
    problems = dict(report.problems)
    assert set(problems) == {kaggle_folder["broken"], kaggle_folder["link"]}
    assert "unreadable" in problems[kaggle_folder["broken"]]
    assert "outside the source folder" in problems[kaggle_folder["link"]]

    ds = load_dataset(str(out))
    assert ds["train"].features["label"].names == ["FAKE", "REAL"]
    raw = ds.cast_column("image", ds["train"].features["image"].__class__(decode=False))
    for split in ("train", "test"):
        for row in raw[split]:
            path = row["image"]["path"]
            assert row["image"]["bytes"] == kaggle_folder["files"][path].read_bytes(), path
            class_idx, _ = parse_kaggle_name(path.rsplit("/", 1)[1])
            assert row["cifar10_class"] == class_idx
            assert row["label"] == (0 if "/FAKE/" in path else 1)
            assert row["generator_id"] == ("CompVis/stable-diffusion-v1-4" if row["label"] == 0 else None)
            assert row["seed"] is None and row["prompt"] is None


def test_wrong_layout_is_refused_before_writing(tmp_path):
    source = tmp_path / "download"
    (source / "train" / "REAL").mkdir(parents=True)
    (source / "test" / "FAKE").mkdir(parents=True)
    out = tmp_path / "out"
    with pytest.raises(CifakeError, match=r"missing train/FAKE, test/REAL"):
        build.import_kaggle(source, output_dir=out)
    assert not out.exists()


def test_source_that_is_not_a_folder(tmp_path):
    archive = tmp_path / "cifake.zip"
    archive.write_bytes(b"PK")
    with pytest.raises(CifakeError, match="not a folder. Unzip"):
        build.import_kaggle(archive, output_dir=tmp_path / "out")


def test_nested_download_folder_is_found(kaggle_folder, tmp_path):
    # The Kaggle zip is often unpacked into one extra folder level.
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    kaggle_folder["root"].rename(wrapper / "archive")
    report = build.import_kaggle(wrapper, output_dir=tmp_path / "out")
    assert report.counts["test"]["REAL"] == 20


def test_parallel_import_equals_serial_import(kaggle_folder, tmp_path, monkeypatch):
    from dataset_builder import importing

    serial = build.import_kaggle(kaggle_folder["root"], output_dir=tmp_path / "serial", workers=1)
    monkeypatch.setattr(importing, "CHUNK", 7)  # many small tasks over two processes
    parallel = build.import_kaggle(kaggle_folder["root"], output_dir=tmp_path / "parallel", workers=2)
    assert sorted(parallel.problems) == sorted(serial.problems)
    assert {p for p, _ in parallel.problems} == {kaggle_folder["broken"], kaggle_folder["link"]}
    assert parallel.counts == serial.counts

    def rows(folder):
        ds = load_dataset(str(folder), split="train").cast_column("image", Image(decode=False))
        return [(r["image"]["path"], r["image"]["bytes"], r["label"], r["cifar10_class"]) for r in ds]

    assert rows(tmp_path / "parallel") == rows(tmp_path / "serial")  # the same rows, in the same order
    assert len(rows(tmp_path / "serial")) == 40  # 2 per class and label; the escaping link is not among them


def test_linked_folder_leaving_the_source_is_refused(kaggle_folder, tmp_path):
    root = kaggle_folder["root"]
    elsewhere = tmp_path / "elsewhere"
    (root / "test" / "REAL").rename(elsewhere)
    (root / "test" / "REAL").symlink_to(elsewhere, target_is_directory=True)
    report = build.import_kaggle(root, output_dir=tmp_path / "out")
    refused = [path for path, why in report.problems if "outside the source folder" in why]
    assert len(refused) == 20 + 1 and all(p.startswith(("test/REAL/", "train/REAL/")) for p in refused)
    assert report.counts["test"]["REAL"] == 0 and report.counts["test"]["FAKE"] == 20


def _small_release(root, sample_photos, per_folder=2):
    """A Kaggle-layout folder of real CIFAR-10 photos (in both label folders: the FAKE ones stand in
    for generated images and are not Stable Diffusion output), encoded as the release's JPEGs."""
    from dataset_builder.imaging import encode_image

    images, _ = sample_photos
    taken = iter(images)
    for split in ("train", "test"):
        for label in ("REAL", "FAKE"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(per_folder):
                name = kaggle_filename(label, split, 0, index + (1000 if label == "FAKE" and split == "train" else 0))
                (folder / name).write_bytes(encode_image(next(taken), "jpeg"))
    return root


def test_a_file_swapped_for_a_link_after_the_scan_is_not_read(tmp_path, sample_photos, monkeypatch):
    """The scan found a plain file; by the time it is read it is a link to a secret: the secret stays out."""
    from dataset_builder import kaggle

    source = _small_release(tmp_path / "release", sample_photos)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((source / "test" / "REAL" / "0001.jpg").read_bytes()[:-2] + b"SECRET\xff\xd9")
    swapped = source / "test" / "REAL" / "0000.jpg"
    scan = kaggle.scan_kaggle

    def scan_then_swap(folder):
        found = scan(folder)
        swapped.unlink()
        swapped.symlink_to(secret)
        return found

    monkeypatch.setattr(build, "scan_kaggle", scan_then_swap)
    out = tmp_path / "out"
    report = build.import_kaggle(source, output_dir=out, workers=1)
    assert dict(report.problems) == {"test/REAL/0000.jpg": "skipped: cannot read it (Too many levels of symbolic links)"}
    assert report.counts["test"] == {"FAKE": 2, "REAL": 1}
    assert not any(b"SECRET" in shard.read_bytes() for shard in (out / "data").glob("*.parquet"))


def test_a_source_holding_two_releases_is_refused(tmp_path, sample_photos):
    source = tmp_path / "downloads"
    for name in ("cifake-v1", "cifake-v2"):
        _small_release(source / name, sample_photos)
    with pytest.raises(CifakeError, match=r"holds 2 CIFAKE folders \(cifake-v1, cifake-v2\).*Pass one of them"):
        build.import_kaggle(source, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert build.import_kaggle(source / "cifake-v2", output_dir=tmp_path / "out").counts["train"] == {"FAKE": 2, "REAL": 2}


def test_a_folder_swapped_for_a_link_after_the_scan_is_not_read(tmp_path, sample_photos, monkeypatch):
    """Each file is opened without following a link, but its folders could be links by then: the
    opened file itself must lie inside the source."""
    import shutil

    from dataset_builder import kaggle

    source = _small_release(tmp_path / "release", sample_photos)
    outside = tmp_path / "elsewhere"
    shutil.copytree(source / "test" / "REAL", outside)
    for file in outside.iterdir():
        file.write_bytes(file.read_bytes()[:-2] + b"SECRET\xff\xd9")  # still whole JPEGs
    scan = kaggle.scan_kaggle

    def scan_then_swap(folder):
        found = scan(folder)
        shutil.rmtree(source / "test" / "REAL")
        (source / "test" / "REAL").symlink_to(outside, target_is_directory=True)
        return found

    monkeypatch.setattr(build, "scan_kaggle", scan_then_swap)
    out = tmp_path / "out"
    report = build.import_kaggle(source, output_dir=out, workers=1)
    why = "skipped: cannot read it (it lies outside the source folder: a folder on its way became a link)"
    assert dict(report.problems) == {"test/REAL/0000.jpg": why, "test/REAL/0001.jpg": why}
    assert report.counts["test"] == {"FAKE": 2, "REAL": 0}
    assert not any(b"SECRET" in shard.read_bytes() for shard in (out / "data").glob("*.parquet"))


def test_the_release_card_is_mit_from_cifar10(tmp_path, sample_photos):
    from huggingface_hub import DatasetCard

    build.import_kaggle(_small_release(tmp_path / "release", sample_photos), output_dir=tmp_path / "out")
    data = DatasetCard.load(tmp_path / "out" / "README.md", repo_type="dataset").data
    assert data.license == "mit" and data.source_datasets == ["extended|cifar10"]


def test_a_file_over_the_size_bound_is_skipped_and_listed_not_fatal(tmp_path, sample_photos):
    from cifake_kit.schema import MAX_IMAGE_FILE_BYTES

    source = _small_release(tmp_path / "release", sample_photos)
    with open(source / "test" / "FAKE" / "5 (2).jpg", "wb") as handle:  # sparse: no disk, and never read
        handle.truncate(MAX_IMAGE_FILE_BYTES + 1)
    report = build.import_kaggle(source, output_dir=tmp_path / "out")
    assert ("test/FAKE/5 (2).jpg", "skipped: 67,108,865 bytes, larger than any image the kit reads (at most 64 MB); not read") in report.problems
    assert report.counts["test"]["FAKE"] == 2 and report.counts["train"]["REAL"] == 2


def test_a_release_whose_halves_differ_in_codec_is_told_a_fix_import_kaggle_can_take(tmp_path, sample_photos):
    import io

    from PIL import Image as PILImage

    source = _small_release(tmp_path / "release", sample_photos)
    for path in (source / "train" / "FAKE").glob("*.jpg"):  # other JPEG tables than the release's own
        buffer = io.BytesIO()
        PILImage.open(path).save(buffer, format="JPEG", quality=95)
        path.write_bytes(buffer.getvalue())
    report = build.import_kaggle(source, output_dir=tmp_path / "out")
    (note,) = [note for note in report.notes if "different encoders" in note]
    assert "--encoder" not in note and "import-kaggle keeps the release's bytes" in note and "import-folder" in note
