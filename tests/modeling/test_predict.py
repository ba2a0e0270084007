"""`cifake predict`: every image below the paths, unreadable files skipped, the model's threshold used."""

import csv
import os
import shutil
import stat

import pytest
from transformers import AutoConfig

from cifake_cli import main
from cifake_kit.errors import CifakeError
from modeling.inference.core import REDUCTION_CAVEAT, load_model
from modeling.inference.predict import predict_command, predict_files

DEMO = __import__("dataset_builder.demo", fromlist=["demo_folder"]).demo_folder()


@pytest.fixture
def picture_folder(tmp_path):
    """Real photos and genuine generated samples, nested, with files that are not images among them."""
    root = tmp_path / "pictures"
    (root / "cats").mkdir(parents=True)
    (root / "gan" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for photo in sorted((DEMO / "real" / "cat").glob("*.jpg"))[:4]:
        shutil.copy(photo, root / "cats" / photo.name)
    for sample in sorted((DEMO / "generated" / "gan-sndcgan").glob("*.png"))[:3]:
        shutil.copy(sample, root / "gan" / "deeper" / sample.name)
    shutil.copy(sorted((DEMO / "real" / "ship").glob("*.jpg"))[0], root / "cats" / "0000.jpg")  # same name as nothing else
    (root / "gan" / "notes.txt").write_text("not an image")
    (root / "gan" / "cut.jpg").write_bytes((root / "cats" / "0000.jpg").read_bytes()[:150])
    shutil.copy(root / "cats" / "0000.jpg", root / ".hidden" / "skip-me.jpg")
    return root


def test_predict_lists_every_image_and_skips_what_is_not_one(trained_model, picture_folder, tmp_path, capsys):
    single = sorted((DEMO / "real" / "dog").glob("*.jpg"))[0]
    lines, notes = [], []
    counts = predict_command([str(picture_folder), str(single)], str(trained_model), csv_path=str(tmp_path / "v.csv"),
                             out=lines.append, note=notes.append)
    assert counts["FAKE"] + counts["REAL"] == 9 and counts["skipped"] == 2
    paths = [line.split("\t")[0] for line in lines]
    assert len(paths) == len(set(paths)) == 9  # one line per image, full paths: no two alike
    assert paths[-1] == str(single) and not any(".hidden" in p for p in paths)
    for line in lines:
        path, verdict, p_fake = line.split("\t")
        assert verdict in ("FAKE", "REAL") and 0.0 <= float(p_fake) <= 1.0
    assert any("notes.txt" in n and "not an image" in n for n in notes)
    assert any("cut.jpg" in n and "truncated" in n for n in notes)
    with open(tmp_path / "v.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"] for row in rows] == paths
    assert [row["verdict"] for row in rows] == [line.split("\t")[1] for line in lines]


def test_predict_counts_the_pictures_it_reduced_and_says_what_their_verdict_is_worth(trained_model, tmp_path):
    from PIL import Image

    photo = sorted((DEMO / "real" / "cat").glob("*.jpg"))[0]
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(photo, folder / "native.jpg")  # 32x32: not reduced
    with Image.open(photo) as image:
        image.resize((96, 64)).save(folder / "large.png")  # shorter side 64: reduced
        image.resize((32, 80)).save(folder / "tall.png")  # shorter side 32: only cropped
    notes = []
    counts = predict_command([str(folder)], str(trained_model), out=lambda _: None, note=notes.append)
    assert counts["reduced"] == 1
    said = [n for n in notes if "first (a shorter side" in n]
    assert said == [f"1 of them was reduced to 32x32 first (a shorter side over 32 pixels). {REDUCTION_CAVEAT}"]
    net, processor = load_model(trained_model)
    assert [v.reduced for v in predict_files([folder], net, processor)] == [True, False, False]  # large, native, tall
    quiet = []
    assert predict_command([str(folder / "native.jpg")], str(trained_model), out=lambda _: None,
                           note=quiet.append)["reduced"] == 0
    assert not any("reduced" in n for n in quiet)


def test_predict_uses_the_models_stored_threshold_unless_one_is_given(trained_model, picture_folder, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    net, processor = load_model(model)
    scores = {v.path: v.p_fake for v in predict_files([picture_folder], net, processor) if v.verdict}
    middle = sorted(scores.values())[len(scores) // 2]
    config = AutoConfig.from_pretrained(model)
    config.fake_threshold = middle  # half the pictures at or above it
    config.save_pretrained(model)
    lines = []
    counts = predict_command([str(picture_folder)], str(model), out=lines.append, note=lambda _: None)
    assert counts["threshold"] == pytest.approx(middle)
    for line in lines:
        path, verdict, _ = line.split("\t")
        assert verdict == ("FAKE" if scores[path] >= middle else "REAL"), line
    everything_fake = predict_command([str(picture_folder)], str(model), threshold=1e-9, out=lambda _: None,
                                      note=lambda _: None)
    assert everything_fake["FAKE"] == len(scores) and everything_fake["threshold"] == 1e-9


def test_predict_refuses_bad_requests_before_loading_anything(trained_model, picture_folder, tmp_path, capsys):
    existing = tmp_path / "keep.csv"
    existing.write_text("mine\n")
    assert main(["predict", str(picture_folder), "--model", str(trained_model), "--csv", str(existing)]) == 1
    assert "already exists" in capsys.readouterr().err and existing.read_text() == "mine\n"
    with pytest.raises(CifakeError, match="does not exist"):
        predict_command([str(tmp_path / "nowhere")], str(trained_model))
    with pytest.raises(CifakeError, match="between 0 and 1"):
        predict_command([str(picture_folder)], str(trained_model), threshold=1.5)
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), "--model", str(trained_model)]) == 1
    assert "No files found" in capsys.readouterr().err
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "a.txt").write_text("x")
    assert main(["predict", str(only_text), "--model", str(trained_model)]) == 1  # nothing classified
    assert "a.txt" in capsys.readouterr().err


def test_linked_folders_are_searched_loops_are_named_and_depth_is_no_limit(trained_model, picture_folder, tmp_path,
                                                                          deep_folder):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(picture_folder / "gan" / "deeper", elsewhere)
    (picture_folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (picture_folder / "cats" / "back").symlink_to(picture_folder, target_is_directory=True)  # a loop
    shutil.copy(sorted(elsewhere.glob("*.png"))[0], deep_folder / "sample.png")
    lines, notes = [], []
    counts = predict_command([str(picture_folder), str(tmp_path / "deep")], str(trained_model), out=lines.append,
                             note=notes.append)
    seen = [line.split("\t")[0] for line in lines]
    assert sum(path.startswith(str(picture_folder / "linked")) for path in seen) == 3  # the linked folder's images
    assert sum(path.endswith("sample.png") for path in seen) == 1 and counts["FAKE"] + counts["REAL"] == 5 + 3 + 3 + 1
    assert f"  {picture_folder / 'cats' / 'back'}: a link to a folder already searched: not searched again" in notes


def test_csv_is_written_through_a_link_and_never_over_a_device(trained_model, picture_folder, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("old")
    link = tmp_path / "latest.csv"
    link.symlink_to(rows)
    quiet = {"out": lambda _: None, "note": lambda _: None}
    predict_command([str(picture_folder / "cats")], str(trained_model), csv_path=str(link), overwrite=True, **quiet)
    assert link.is_symlink() and rows.read_text().startswith("path,verdict,p_fake,threshold")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for device in (fifo, "/dev/null"):
        with pytest.raises(CifakeError, match="is not a regular file"):
            predict_command([str(picture_folder / "cats")], str(trained_model), csv_path=str(device), overwrite=True,
                            **quiet)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_a_model_trained_on_cifake_jpegs_meets_a_png_through_that_codec(trained_model, tmp_path, sample_photos):
    """A lossless PNG is stored as the training data was (CIFAKE's q75 JPEG) before it is scored: it gets the
    verdict of that JPEG, not one that its codec sways; a model of lossless data scores it as given."""
    import io

    import numpy as np
    from PIL import Image

    from cifake_kit.codec import encode_jpeg, is_cifake_jpeg
    from modeling.inference.core import as_stored_for

    jpeg_model = tmp_path / "jpeg-model"
    shutil.copytree(trained_model, jpeg_model)
    config = AutoConfig.from_pretrained(jpeg_model)
    assert config.input_encoding is None  # trained on the toy task's lossless PNGs
    config.input_encoding = "cifake-jpeg"
    config.save_pretrained(jpeg_model)
    photo = Image.fromarray(sample_photos[0][7]).resize((64, 64), Image.Resampling.NEAREST)  # the processor reduces it
    photo.save(tmp_path / "photo.png")
    model, processor = load_model(jpeg_model)
    reduced = processor(photo, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0]
    (tmp_path / "stored.jpg").write_bytes(encode_jpeg(np.ascontiguousarray(np.rint(reduced).astype(np.uint8).transpose(1, 2, 0))))
    as_png, as_jpeg = predict_files([tmp_path / "photo.png", tmp_path / "stored.jpg"], model, processor)
    assert as_png.p_fake == pytest.approx(as_jpeg.p_fake, abs=1e-6)
    (lossless,) = predict_files([tmp_path / "photo.png"], *load_model(trained_model))
    assert abs(lossless.p_fake - as_png.p_fake) > 1e-6  # the codec moved the score (same weights: 0 without it)
    with Image.open(tmp_path / "stored.jpg") as stored:  # a CIFAKE JPEG is kept as it is, not compressed twice
        assert is_cifake_jpeg(stored) and as_stored_for(model, processor, stored) is stored
    with Image.open(io.BytesIO((tmp_path / "photo.png").read_bytes())) as png:
        assert as_stored_for(load_model(trained_model)[0], processor, png) is png


def test_training_records_how_its_images_were_stored(toy_dataset, built_dataset):
    from modeling.data import load_pixels

    assert load_pixels(str(toy_dataset), "train").encoding is None  # lossless PNG
    assert load_pixels(str(built_dataset), "train").encoding == "cifake-jpeg"  # the kit's one encoder
