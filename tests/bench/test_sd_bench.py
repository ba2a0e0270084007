"""bench/_sd.py: content types and split groups from provenance rows, the grouped split, content-control
selection, learning-curve subsets."""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _sd  # noqa: E402
from _sd import ART, FAKE, PHOTO, REAL, Row, SdImage  # noqa: E402

VINCE = "stable-diffusion:vincegmz/stable-diffusion"
BENTO = "stable-diffusion:bento170502/stable-diffusion"
JOSH = "stable-diffusion:JoshCLWren/stable-diffusion"


@pytest.mark.parametrize("prompt, expected", [
    ("a photo of a dog (inferred from sibling filename a-photo-of-a-dog-0008)", (PHOTO, "dog")),
    ("(inferred: prompts.txt line 20, 2 samples per prompt from 00090) a photo of a cat sitting on a pumpkin",
     (PHOTO, "cat")),
    ("(inferred: prompts.txt line 96) a photo of a frog jumping from one lily pad to another", (PHOTO, "frog")),
    ("(inferred: line 40) a photo of a bird wearing a bowtie", (PHOTO, "bird")),
    ("(inferred: line 9) a photo of two horses in a field", (PHOTO, "horse")),
    # photo-like, but no CIFAR-10 subject: a car or a horse elsewhere in the prompt does not count
    ("(inferred: line 38) a photo of a fox driving a car", (PHOTO, None)),
    ("(inferred: line 2) a photo of an astronaut riding a horse on mars", (PHOTO, None)),
    ("(inferred: line 5) a painting of a cat surfing", (ART, None)),
    ("A photograph of a deer at dawn", (PHOTO, "deer")),
    # the README's example prompt, not this image's: unknown, so not photo-like
    ('unknown (earlier run; README example prompt is "a photograph of an astronaut riding a horse")', (ART, None)),
    ("unknown", (ART, None)),
    ("", (ART, None)),
])
def test_content_type_and_class_from_the_provenance_prompt(prompt, expected):
    assert _sd.content_of({"prompt": prompt}) == expected


def test_prompt_text_strips_the_inference_note():
    assert _sd.prompt_text("(inferred: a (nested) note) a photo of a dog") == "a photo of a dog"
    assert _sd.prompt_text("unknown (earlier run)") == ""


def test_prompt_groups_keep_one_prompts_samples_together_and_split_a_class_prompt_image_by_image():
    # bento170502: two samples of each prompts.txt line; an unknown prompt is a group of its own
    many = ["(inferred: line 1) a painting of a cat", "(inferred: line 1) a painting of a cat",
            "(inferred: line 2) a photo of a frog", "(inferred: line 2) a photo of a frog", "unknown (earlier run)"]
    assert _sd.prompt_groups("bento", many) == ["bento/a painting of a cat"] * 2 + ["bento/a photo of a frog"] * 2 + [""]
    # vincegmz: one class prompt for every image, as CIFAKE's per-class prompts; or no prompt known
    assert _sd.prompt_groups("vince", ["a photo of a dog (inferred from sibling filename)"] * 3) == [""] * 3
    assert _sd.prompt_groups("edmund", ["unknown"] * 3) == [""] * 3


def _grouped_task():
    """Rows and side table: source A in 30 prompt pairs, source B 40 images on their own, 10 real
    photos in each of 6 classes."""
    rows, table = [], {}
    for i in range(60):
        row = Row(Path(f"a{i}.png"), FAKE, "sd:A", None, "")
        rows.append(row)
        table[row.key] = SdImage("A", row.path.name, "sd:A", ART, None, f"A/prompt {i // 2}")
    for i in range(40):
        row = Row(Path(f"b{i}.png"), FAKE, "sd:B", None, "")
        rows.append(row)
        table[row.key] = SdImage("B", row.path.name, "sd:B", PHOTO, "dog")
    rows += [Row(Path(f"{klass}{i}.jpg"), REAL, None, klass, "")
             for klass in ("cat", "dog", "ship", "truck", "frog", "deer") for i in range(10)]
    return rows, table


def test_the_split_keeps_each_prompt_group_on_one_side_and_each_source_and_class_near_a_fifth():
    rows, table = _grouped_task()
    split = _sd.draw_split(rows, table, seed=0)
    assert [replace(r, split="") for r in split] == rows  # the rows, in order, only their split drawn
    side = {}
    for row in split:
        if row.label == FAKE and table[row.key].group:
            side.setdefault(table[row.key].group, set()).add(row.split)
    assert len(side) == 30 and all(len(sides) == 1 for sides in side.values())  # no pair across the split
    for stratum in ("sd:A", "sd:B", "cat", "dog", "ship", "truck", "frog", "deer"):
        mine = [r for r in split if stratum in (r.generator_id, r.cifar10_class) and r.label == (FAKE if ":" in stratum else REAL)]
        assert 0.1 <= sum(r.split == "test" for r in mine) / len(mine) <= 0.3, stratum
    assert _sd.draw_split(rows, table, seed=0) == split  # seeded
    assert [r.split for r in _sd.draw_split(rows, table, seed=1)] != [r.split for r in split]


def test_a_task_imported_with_its_own_splits_reads_back_row_for_row_and_a_skipped_image_is_refused(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i, (label, split) in enumerate([(FAKE, "train"), (FAKE, "train"), (FAKE, "test"),
                                        (REAL, "train"), (REAL, "train"), (REAL, "test")]):
        path = tmp_path / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        rows.append(Row(path, label, "sd:A" if label == FAKE else None, None if label == FAKE else "cat", split))
    out = _sd.import_rows(rows, tmp_path / "task")
    assert _sd.as_stored([replace(r, split="") for r in rows], out) == rows
    broken = tmp_path / "images" / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(SystemExit, match=r"1 of the task's images are not in .*broken\.png"):
        _sd.as_stored(rows + [Row(broken, FAKE, "sd:A", None, "train")],
                      _sd.import_rows(rows + [Row(broken, FAKE, "sd:A", None, "train")], tmp_path / "task2"))


def test_sd_images_read_every_provenance_row(tmp_path):
    folder = tmp_path / "data" / "generated-sd" / "bento170502-stable-diffusion"
    folder.mkdir(parents=True)
    (folder / "provenance.csv").write_text(
        "file,repo,prompt\n"
        "a.png,bento170502/stable-diffusion,(inferred) a photo of a cat on a leash\n"
        "b.png,bento170502/stable-diffusion,(inferred) a painting of a dog\n")
    images = _sd.sd_images(tmp_path)
    assert [(i.file, i.generator_id, i.content, i.cifar10_class, i.group) for i in images] == [
        ("a.png", BENTO, PHOTO, "cat", "bento170502-stable-diffusion/a photo of a cat on a leash"),
        ("b.png", BENTO, ART, None, "bento170502-stable-diffusion/a painting of a dog")]
    with pytest.raises(SystemExit, match="generated-sd is missing"):
        _sd.sd_images(tmp_path / "elsewhere")


def test_real_photos_are_spread_over_the_classes_after_the_skipped_ones(tmp_path):
    from cifake_kit.schema import CIFAR10_CLASSES

    for name in CIFAR10_CLASSES:
        (tmp_path / "data" / "cifar10-test-jpeg" / name).mkdir(parents=True)
        for i in range(6):
            (tmp_path / "data" / "cifar10-test-jpeg" / name / f"{i:04d}.jpg").write_bytes(b"")
    first = _sd.real_photos(tmp_path, 23, skip=0)
    later = _sd.real_photos(tmp_path, 23, skip=23)
    assert len(first) == len(later) == 23
    counts = {name: sum(1 for c, _ in first if c == name) for name in CIFAR10_CLASSES}
    assert sorted(counts.values()) == [2] * 7 + [3] * 3
    assert not {p for _, p in first} & {p for _, p in later}  # no photo in both
    with pytest.raises(SystemExit, match="too few"):
        _sd.real_photos(tmp_path, 60, skip=10)


def test_more_real_photos_join_the_training_split_only_and_never_twice(tmp_path):
    from cifake_kit.schema import CIFAR10_CLASSES

    for name in CIFAR10_CLASSES:
        (tmp_path / "data" / "cifar10-test-jpeg" / name).mkdir(parents=True)
        for i in range(6):
            (tmp_path / "data" / "cifar10-test-jpeg" / name / f"{i:04d}.jpg").write_bytes(b"")
    task = [Row(path, REAL, None, name, "train" if i < 3 else "test")
            for i, (name, path) in enumerate(_sd.real_photos(tmp_path, 5))]
    task += [Row(Path(f"f{i}.png"), FAKE, "sd:A", None, "train" if i < 3 else "test") for i in range(5)]
    more = _sd.with_more_real(task, tmp_path, 4, skip=5)
    assert more[:len(task)] == task and all(r.split == "train" and r.label == REAL for r in more[len(task):])
    assert sum(r.split == "train" and r.label == REAL for r in more) == 12  # 4 per training fake
    assert [r for r in more if r.split == "test"] == [r for r in task if r.split == "test"]
    assert len({r.path for r in more}) == len(more)
    with pytest.raises(SystemExit, match="in the task already"):
        _sd.with_more_real(task, tmp_path, 4, skip=2)


def _image(generator, content, klass, name):
    return SdImage("folder", name, generator, content, klass)


def test_content_controls_score_each_fake_group_against_the_right_real_photos():
    table = {}
    keys, labels, classes = [], [], []

    def fake(generator, content, klass, name):
        key = _sd.row_key(FAKE, generator, None, name)
        table[key] = _image(generator, content, klass, name)
        keys.append(key), labels.append(FAKE), classes.append(None)

    def real(klass, name):
        keys.append(_sd.row_key(REAL, None, klass, name)), labels.append(REAL), classes.append(klass)

    fake(VINCE, PHOTO, "dog", "v1.png")
    fake(VINCE, PHOTO, "dog", "v2.png")
    fake(BENTO, PHOTO, "cat", "b1.png")
    fake(BENTO, PHOTO, "frog", "b2.png")
    fake(BENTO, PHOTO, None, "b3.png")  # photo-like, no CIFAR-10 class: not in the class control
    fake(BENTO, ART, None, "b4.png")
    fake(JOSH, ART, None, "j1.png")
    for klass in ("dog", "dog", "cat", "frog", "ship", "truck"):
        real(klass, f"{klass}{len(keys)}.jpg")
    masks = _sd.control_masks(keys, labels, classes, table)

    def picked(name, side):
        return [keys[i] for i in np.flatnonzero(masks[name][side])]

    dogs = masks["vincegmz dogs vs real dogs"]
    assert picked("vincegmz dogs vs real dogs", "fake") == [keys[0], keys[1]]
    assert [classes[i] for i in np.flatnonzero(dogs["real"])] == ["dog", "dog"]
    assert (dogs["fake_images"], dogs["real_images"]) == (2, 2)
    bento = "bento photo animals vs real of their classes"
    assert picked(bento, "fake") == [keys[2], keys[3]]
    assert sorted(classes[i] for i in np.flatnonzero(masks[bento]["real"])) == ["cat", "frog"]
    photo, art = masks["photo-like SD vs all real"], masks["art SD vs all real"]
    assert picked("photo-like SD vs all real", "fake") == keys[:5]
    assert picked("art SD vs all real", "fake") == [keys[5], keys[6]]
    assert photo["real_images"] == art["real_images"] == 6


def _rows(train_fake=40, train_real=50, test=10):
    rows = [Row(Path(f"f{i}.png"), FAKE, "gen", None, "train") for i in range(train_fake)]
    rows += [Row(Path(f"r{i}.jpg"), REAL, None, "cat", "train") for i in range(train_real)]
    rows += [Row(Path(f"t{i}.png"), FAKE, "gen", None, "test") for i in range(test)]
    rows += [Row(Path(f"u{i}.jpg"), REAL, None, "dog", "test") for i in range(test)]
    return rows


def test_learning_curve_subsets_match_the_real_side_and_keep_the_test_split():
    rows = _rows()
    test = [r for r in rows if r.split == "test"]
    for size, expected in ((5, 5), (25, 25), (None, 40), (1000, 40)):
        subset = _sd.curve_subset(rows, size, seed=0)
        train = [r for r in subset if r.split == "train"]
        assert sum(r.label == FAKE for r in train) == expected
        assert sum(r.label == REAL for r in train) == expected  # the real side matched
        assert [r for r in subset if r.split == "test"] == test  # every test image, always
        assert len({r.key for r in subset}) == len(subset)  # no image twice


def test_learning_curve_seeds_draw_different_subsets_and_repeat_themselves():
    rows = _rows()

    def picked(seed, label):
        return {r.key for r in _sd.curve_subset(rows, 10, seed) if r.split == "train" and r.label == label}

    assert picked(0, FAKE) == picked(0, FAKE) and picked(0, REAL) == picked(0, REAL)
    assert picked(0, FAKE) != picked(1, FAKE) and picked(1, FAKE) != picked(2, FAKE)
    assert picked(0, REAL) != picked(1, REAL)


def test_learning_curve_real_side_is_capped_by_the_real_photos_there_are():
    subset = _sd.curve_subset(_rows(train_fake=40, train_real=12), 30, seed=0)
    train = [r for r in subset if r.split == "train"]
    assert sum(r.label == FAKE for r in train) == 30 and sum(r.label == REAL for r in train) == 12


def test_art_only_drops_the_photo_like_training_fakes_only():
    rows = [Row(Path("p.png"), FAKE, VINCE, None, "train"), Row(Path("a.png"), FAKE, JOSH, None, "train"),
            Row(Path("q.png"), FAKE, VINCE, None, "test"), Row(Path("r.jpg"), REAL, None, "dog", "train")]
    table = {rows[0].key: _image(VINCE, PHOTO, "dog", "p.png"), rows[1].key: _image(JOSH, ART, None, "a.png"),
             rows[2].key: _image(VINCE, PHOTO, "dog", "q.png")}
    assert _sd.art_only(rows, table) == rows[1:]


def test_leaving_a_source_out_moves_all_its_images_to_test_and_keeps_the_rest_of_training():
    rows = [Row(Path(f"v{i}.png"), FAKE, VINCE, None, split) for i, split in enumerate(["train", "train", "test"])]
    rows += [Row(Path(f"j{i}.png"), FAKE, JOSH, None, split) for i, split in enumerate(["train", "test"])]
    rows += [Row(Path(f"r{i}.jpg"), REAL, None, "dog", split) for i, split in enumerate(["train", "test"])]
    task = _sd.leave_source_out(rows, VINCE)
    train, test = ({r.key for r in task if r.split == split} for split in ("train", "test"))
    assert train == {rows[3].key, rows[5].key}  # the other source's and the real training images, no vincegmz
    assert test == {rows[0].key, rows[1].key, rows[2].key, rows[6].key}  # all of vincegmz, the real test photo
    assert not train & test and len(task) == len(train) + len(test)  # JoshCLWren's test image is not scored


def test_power_law_extrapolation_reads_the_curve():
    import bench_sd

    falling = [{"task": "SD", "fakes": n, "mean": 1 - 0.2 * (50 / n) ** 0.5} for n in (25, 50, 100, 200, 400)]
    a, b = bench_sd.power_law(falling, "SD")
    assert b == pytest.approx(-0.5, abs=1e-6)
    assert "per doubling" in bench_sd.extrapolation(falling, "SD") and "guess" in bench_sd.extrapolation(falling, "SD")
    flat = [{"task": "SD", "fakes": n, "mean": 0.6} for n in (50, 100, 200)]
    assert "does not rise" in bench_sd.extrapolation(flat, "SD")
    assert "too few" in bench_sd.extrapolation(falling[:2], "SD")


def test_the_bench_refuses_in_one_line_without_the_sd_images(tmp_path):
    import subprocess

    result = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[2] / "bench" / "bench_sd.py"),
                             "--shared", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "generated-sd is missing" in result.stderr


@pytest.mark.parametrize("flags, message", [
    (["--recipes", "no-such-recipe", "--epochs", "1"], "unknown recipes ['no-such-recipe']"),
    (["--curve-sizes", "0"], "'0' is no number of training fakes"),
    (["--more-real", "1"], "'1' is no number of real photos per SD image: give 2 or more"),
])
def test_the_bench_refuses_bad_flags_in_one_line_before_anything_loads(tmp_path, flags, message):
    import subprocess

    result = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[2] / "bench" / "bench_sd.py"),
                             "--shared", str(tmp_path), *flags], capture_output=True, text=True, timeout=120)
    assert result.returncode in (1, 2) and message in result.stderr
    assert "Traceback" not in result.stderr and "generated-sd is missing" not in result.stderr


def test_the_sd_task_maps_every_test_row_back_to_its_file(tmp_path, shared_data):
    if not (shared_data / "generated-sd").is_dir():
        pytest.skip(f"needs {shared_data / 'generated-sd'}")
    data, rows, table = _sd.build_sd_task(shared_data.parent, tmp_path / "sd", real_count=40)
    assert sum(r.label == FAKE for r in rows) == len(table) == 791
    assert sum(r.label == REAL for r in rows) == 40
    test = [r for r in rows if r.split == "test"]
    assert 0.15 < len(test) / len(rows) < 0.25
    assert {table[r.key].generator_id for r in rows if r.label == FAKE} >= {VINCE, BENTO, JOSH}
    sides = {}  # bento170502's two samples of each prompt: never one in training and the other in test
    for row in rows:
        if row.label == FAKE and table[row.key].group:
            sides.setdefault(table[row.key].group, set()).add(row.split)
    assert len(sides) > 100 and all(len(s) == 1 for s in sides.values())


def test_large_photos_are_found_where_installed_packages_keep_them():
    found = _sd.large_photos({"here": ("json", "__init__.py"), "no file": ("json", "nope.jpg"),
                              "no package": ("no_such_package_for_cifake", "a.jpg")})
    assert list(found) == ["here"] and found["here"].name == "__init__.py"
    # the kit's dependencies install every photo the probe names, each larger than the model's input
    from PIL import Image

    photos = _sd.large_photos()
    assert sorted(photos) == sorted(_sd.LARGE_PHOTOS)
    for path in photos.values():
        with Image.open(path) as image:
            assert min(image.size) > 4 * 32


def test_square_crops_start_at_the_centre_square_and_repeat_with_their_seed():
    from PIL import Image

    pixels = np.arange(100 * 60 * 3, dtype=np.uint32).reshape(60, 100, 3) % 251
    image = Image.fromarray(pixels.astype(np.uint8))
    crops = _sd.square_crops(image, 6, seed=3)
    assert len(crops) == 6 and all(c.width == c.height for c in crops)
    assert np.array_equal(np.asarray(crops[0]), pixels[:, 20:80].astype(np.uint8))
    assert all(0.3 * 60 - 1 <= c.width <= 60 for c in crops)
    again, other = _sd.square_crops(image, 6, seed=3), _sd.square_crops(image, 6, seed=4)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(crops, again))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(crops[1:], other[1:]))


def test_reduced_photos_are_scored_as_cifake_predict_scores_them(tmp_path, trained_model):
    import bench_sd
    from PIL import Image

    from modeling.inference.core import load_model
    from modeling.inference.predict import predict_files

    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((90, 120), (64, 64), (200, 80))]
    for i, picture in enumerate(pictures):
        picture.save(tmp_path / f"{i}.png")
    p_fake, threshold = bench_sd.p_fake_of_pictures(trained_model, pictures)
    net, processor = load_model(trained_model)
    verdicts = list(predict_files([tmp_path], net, processor))
    assert np.allclose(p_fake, [v.p_fake for v in verdicts], atol=1e-6)
    assert threshold == (net.config.fake_threshold if net.config.fake_threshold is not None else 0.5)


def test_reduced_photo_rows_are_real_training_squares_reduced_with_the_datasets_filter(tmp_path):
    from PIL import Image

    from dataset_builder.imaging import fit

    rng = np.random.default_rng(1)
    path = tmp_path / "large.png"
    Image.fromarray(rng.integers(0, 256, (90, 150, 3), dtype=np.uint8)).save(path)
    rows = _sd.reduced_photo_rows({"large": path}, tmp_path / "out", 4, seed=2)
    assert len(rows) == 4 and {(r.label, r.split, r.cifar10_class) for r in rows} == {(REAL, "train", _sd.REDUCED_CLASS)}
    assert _sd.REDUCED_CLASS not in _sd.CIFAR10_CLASSES
    with Image.open(path) as image:
        squares = _sd.square_crops(image, 4, seed=2)
    for row, square in zip(rows, squares):
        with Image.open(row.path) as saved:
            assert saved.size == (32, 32) and np.array_equal(np.asarray(saved), fit(square))
    again = _sd.reduced_photo_rows({"large": path}, tmp_path / "out", 2, seed=2)  # the folder is replaced
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [r.path.name for r in again]


def test_reduction_probe_scores_squares_against_the_right_images():
    from types import SimpleNamespace

    import bench_sd

    # SD test images 0.9, 0.8; CIFAR-10 photos 0.1, 0.3; reduced squares 0.85, 0.2, 0.5
    scored = SimpleNamespace(labels=np.array([FAKE, REAL, FAKE, REAL]), p_fake=np.array([0.9, 0.1, 0.8, 0.3]))
    probe = bench_sd.reduction_probe(scored, np.array([0.85, 0.2, 0.5]), threshold=0.5)
    assert probe["called_fake"] == {"CIFAR-10 test photos": 0.0, "SD test images": 1.0,
                                    "reduced real photos": pytest.approx(2 / 3)}
    assert probe["roc_auc"]["SD vs CIFAR-10 photos"] == 1.0
    assert probe["roc_auc"]["SD vs reduced real photos"] == pytest.approx(5 / 6)  # 0.85 beats 0.8 only
    assert probe["roc_auc"]["reduced real photos vs CIFAR-10 photos"] == pytest.approx(5 / 6)  # 0.2 loses to 0.3 only
