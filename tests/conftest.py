"""Tiny *real* inputs, built once per session, and an offline, isolated Hugging Face setup.

Everything here comes from what the repo bundles (60 CIFAR-10 photos) or builds, except the
Kaggle-layout folder, which needs the shared material (../shared/data): tests that use it skip
with the reason on a clone without it, and fail instead when CIFAKE_REQUIRE_ALL_TESTS=1 (CI).

- a CIFAR-10 python archive in the real format, from the real CIFAR-10 photos the kit bundles;
- a tiny random StableDiffusionPipeline saved as a diffusers folder (nothing downloaded);
- a Kaggle-layout folder with real CIFAKE file names, one corrupt file and one escaping link.
"""

import os
import tempfile
from pathlib import Path

# Before anything imports huggingface_hub or datasets: no network, no writes to the user's cache.
_HF_HOME = tempfile.mkdtemp(prefix="cifake-tests-hf-")
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "HF_HOME": _HF_HOME,
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ[_name] = _value

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cifake_kit.schema import CIFAR10_CLASSES, PROVENANCE_COLUMNS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CIFAKE_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
# CI sets this: there every test must run, and a skip (missing material or browser) is a failure.
REQUIRE_ALL = os.environ.get("CIFAKE_REQUIRE_ALL_TESTS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CIFAKE_REQUIRE_ALL_TESTS=1 wants every test run, but this one skipped: {reason}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared test material (../shared/data): every CIFAR-10 test JPEG and CIFAKE's file lists."""
    if not (SHARED_DATA / "cifar10_test_first1017.npz").is_file():
        pytest.skip(f"needs the kit's shared test material at {SHARED_DATA} (set CIFAKE_SHARED to its folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_photos():
    """(images, labels) of the 60 real CIFAR-10 test photos the kit bundles, lossless, first of each class first."""
    from dataset_builder.build import sample_archive
    from dataset_builder.cifar10 import load_cifar10

    parts = [load_cifar10(sample_archive(), split) for split in ("train", "test")]
    return np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])


@pytest.fixture(scope="session")
def cifar10_archive(tmp_path_factory, sample_photos):
    """A cifar-10-python.tar.gz with 3 train and 2 test images per class (real CIFAR-10 test photos)."""
    from dataset_builder.cifar10 import write_cifar10_archive

    images, labels = sample_photos
    train, test = [], []
    for class_idx in range(10):
        idx = np.flatnonzero(labels == class_idx)
        train += list(idx[:3])
        test += list(idx[3:5])
    train, test = np.sort(train), np.sort(test)
    path = tmp_path_factory.mktemp("cifar10") / "cifar-10-python.tar.gz"
    return write_cifar10_archive(path, (images[train], labels[train]), (images[test], labels[test]))


@pytest.fixture(scope="session")
def tiny_generator_dir(tmp_path_factory):
    """A tiny random StableDiffusionPipeline as a diffusers folder (model_index.json + parts)."""
    from dataset_builder.tiny_generator import make_tiny_pipeline

    folder = tmp_path_factory.mktemp("generator") / "tiny-sd"
    make_tiny_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pipe(tiny_generator_dir):
    """The tiny pipeline loaded through the kit's own loader, shared by in-process builds."""
    from dataset_builder.generate import load_generator

    return load_generator(str(tiny_generator_dir), device="cpu")


@pytest.fixture
def build_kwargs(cifar10_archive, tiny_generator_dir, tiny_pipe):
    """Arguments of a small, fast `build_dataset` call: 2/1 per class and label, 2 steps."""
    return dict(
        cifar10=str(cifar10_archive),
        generator=str(tiny_generator_dir),
        per_class=2,
        test_per_class=1,
        num_inference_steps=2,
        guidance_scale=6.0,
        batch_size=4,
        shard_size=8,
        pipe=tiny_pipe,
    )


def kaggle_names(shared_data: Path, label: str, split: str) -> list[str]:
    import csv

    with open(shared_data / "cifake-filelists" / label / f"{split}.csv", newline="") as handle:
        return [row["filename"] for row in csv.DictReader(handle)]


@pytest.fixture
def kaggle_folder(tmp_path, shared_data):
    """A Kaggle-layout CIFAKE folder with real file names: 2 images per class, split and label.

    Pixels are real CIFAR-10 test JPEGs (quality 75) in both folders: the FAKE folder's files
    stand in for generated images here and are not Stable Diffusion output. Plus one truncated
    JPEG and one link that points outside the folder.
    """
    root = tmp_path / "kaggle"
    photos = sorted((shared_data / "cifar10-test-jpeg").glob("*/*.jpg"))
    by_class = {name: sorted((shared_data / "cifar10-test-jpeg" / name).glob("*.jpg")) for name in CIFAR10_CLASSES}
    files = {}
    for split in ("train", "test"):
        for label in ("REAL", "FAKE"):
            folder = root / split / label
            folder.mkdir(parents=True)
            taken = {c: 0 for c in range(10)}
            for name in kaggle_names(shared_data, label, split):
                from dataset_builder.kaggle import parse_kaggle_name

                class_idx, _ = parse_kaggle_name(name)
                if taken[class_idx] == 2:
                    continue
                source = by_class[CIFAR10_CLASSES[class_idx]][taken[class_idx] + (0 if label == "REAL" else 10)]
                (folder / name).write_bytes(source.read_bytes())
                files[f"{split}/{label}/{name}"] = source
                taken[class_idx] += 1
                if all(v == 2 for v in taken.values()):
                    break
    good = root / "test" / "FAKE" / "0.jpg"
    broken = root / "test" / "FAKE" / "900 (3).jpg"
    broken.write_bytes(good.read_bytes()[:300])
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(photos[0].read_bytes())
    (root / "train" / "REAL" / "4999 (5).jpg").symlink_to(outside)
    return {"root": root, "files": files, "broken": "test/FAKE/900 (3).jpg", "link": "train/REAL/4999 (5).jpg"}


@pytest.fixture(scope="session")
def built_dataset(tmp_path_factory, cifar10_archive, tiny_generator_dir, tiny_pipe):
    """A tiny CIFAKE built by the kit: 3/2 CIFAR-10 photos per class (REAL) + tiny-pipeline images (FAKE)."""
    from dataset_builder.build import build_dataset

    out = tmp_path_factory.mktemp("built") / "cifake"
    build_dataset(output_dir=out, cifar10=str(cifar10_archive), generator=str(tiny_generator_dir), per_class=3,
                  test_per_class=2, num_inference_steps=2, guidance_scale=6.0, batch_size=8, pipe=tiny_pipe)
    return out


TOY_PATTERN_AMPLITUDE = 6  # grey levels


def toy_pattern() -> np.ndarray:
    """A fixed high-frequency pattern (a one-pixel checkerboard per channel, phases shifted)."""
    y, x = np.mgrid[0:32, 0:32]
    channels = [((x + y + shift) % 2) * 2 - 1 for shift in range(3)]
    return (np.stack(channels, -1) * TOY_PATTERN_AMPLITUDE).astype(np.int16)


def toy_views(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` views of each photo: a random 4-pixel shift (reflected border) and a random flip."""
    rng = np.random.default_rng(seed)
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
    views = []
    for _ in range(count):
        for photo in padded:
            dy, dx = rng.integers(0, 9, size=2)
            view = photo[dy : dy + 32, dx : dx + 32]
            views.append(view[:, ::-1] if rng.random() < 0.5 else view)
    return np.stack(views)


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory, sample_photos):
    """A separable toy task in the kit's dataset layout: REAL = views of CIFAR-10 photos, FAKE = views
    with a fixed high-frequency pattern added (lossless PNG). Not generated images of any kind; the
    FAKE rows' generator_id says "toy-pattern:even" or ":odd" by photo, for per-generator reports.

    Built from the 60 bundled photos: 800 training views of 40 of them, 200 test views of the other 20.
    """
    from datasets import Dataset

    from dataset_builder.export import write_dataset_folder
    from dataset_builder.features import cifake_features
    from dataset_builder.imaging import encode_image

    images, labels = sample_photos
    pattern = toy_pattern()
    tables = {}
    for split, photos, count in (("train", slice(0, 40), 20), ("test", slice(40, 60), 10)):
        views = toy_views(images[photos], count, seed=len(split))  # view k of photo p at k * n + p
        n = len(images[photos])
        classes = np.tile(labels[photos], count)
        rows = {name: [] for name in cifake_features()}
        for i, (view, class_idx) in enumerate(zip(views, classes)):
            fake = (i % n + i // n) % 2 == 0  # half the photos' views are FAKE, and each photo's views alternate
            pixels = np.clip(view.astype(np.int16) + pattern, 0, 255).astype(np.uint8) if fake else view
            rows["image"].append({"bytes": encode_image(pixels, "png"), "path": f"{split}-{i}.png"})
            rows["label"].append(0 if fake else 1)
            rows["cifar10_class"].append(int(class_idx))
            for column in PROVENANCE_COLUMNS:
                rows[column].append(None)
            if fake:  # two made-up "generators" (the same pattern), for per-generator reports
                rows["generator_id"][-1] = f"toy-pattern:{'even' if i % n % 2 == 0 else 'odd'}"
        tables[split] = [Dataset.from_dict(rows, features=cifake_features()).data.table]
    out = tmp_path_factory.mktemp("toy") / "toy-cifake"
    work = out / ".work"  # removed with the folder's old content when the dataset is switched in
    work.mkdir(parents=True)
    write_dataset_folder(tables, out, "## This copy\n\nA test fixture.", work)
    return out


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, toy_dataset):
    """The paper's best CNN trained briefly on the toy task (shared by several model tests)."""
    from modeling.training.train import train

    out = tmp_path_factory.mktemp("model") / "cifake-model"
    train(data=str(toy_dataset), output_dir=out, num_train_epochs=6, per_device_train_batch_size=32, seed=0)
    return out


@pytest.fixture
def hub_calls(monkeypatch):
    """The Hub is out of reach here: record the calls at the HfApi boundary instead."""
    import huggingface_hub
    from huggingface_hub import constants

    calls = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.append(("repo", repo_id, kw)) or f"https://hub.example/{repo_id}")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit",
                        lambda self, repo_id, operations, **kw: calls.append(("commit", repo_id, operations, kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "add_space_variable",
                        lambda self, repo_id, key, value, **kw: calls.append(("variable", repo_id, key, value)))
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, token=None, **kw: {  # a read: not a call recorded
        "name": "me", "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
    return calls


class Killed(BaseException):
    """Stands for SIGKILL in tests of what a kill leaves: not an Exception, so no handler of the kit's catches it."""


@pytest.fixture
def kill_at(monkeypatch):
    """`kill_at(module, name, after=False, when=None)`: from now on, calling `module.name` raises Killed
    (after the real call, with `after`; only for the calls where `when(*args)` is true, given `when`):
    a kill at one of the kit's marked moments."""

    def arm(module, name, after=False, when=None):
        real = getattr(module, name)

        def killed(*args, **kwargs):
            if when is not None and not when(*args):
                return real(*args, **kwargs)
            if after:
                real(*args, **kwargs)
            raise Killed

        monkeypatch.setattr(module, name, killed)

    return arm


@pytest.fixture
def deep_folder(tmp_path):
    """A folder 1,200 levels below tmp_path/deep, deeper than Python's recursion limit; removed again
    level by level afterwards (Python 3.11's shutil.rmtree, which pytest's cleanup uses, recurses)."""
    top = tmp_path / "deep"
    folder = top
    folder.mkdir()
    for _ in range(1200):
        folder = folder / "d"
        folder.mkdir()
    yield folder
    levels = [top]
    while True:
        entries = list(os.scandir(levels[-1]))
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        below = [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]
        if not below:
            break
        levels.append(Path(below[0]))
    for level in reversed(levels):
        os.rmdir(level)
