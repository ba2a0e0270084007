"""Tiny *real* inputs, built once per session, and an offline, isolated Hugging Face setup.

- a CIFAR-10 python archive in the real format, from real CIFAR-10 pixels (../shared/data);
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

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CIFAKE_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _require_shared():
    if not (SHARED_DATA / "cifar10_test_first1017.npz").is_file():
        pytest.fail(f"Real test material missing: {SHARED_DATA} (set CIFAKE_SHARED to the shared/ folder)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    _require_shared()
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar_pixels(shared_data):
    """(images, labels) of the first 1,017 CIFAR-10 test photos, lossless."""
    data = np.load(shared_data / "cifar10_test_first1017.npz")
    return data["images"], data["labels_first"]


@pytest.fixture(scope="session")
def cifar10_archive(tmp_path_factory, cifar_pixels):
    """A cifar-10-python.tar.gz with 3 train and 2 test images per class (real CIFAR-10 test photos)."""
    from dataset_builder.cifar10 import write_cifar10_archive

    images, labels = cifar_pixels
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
    from dataset_builder.tiny_generator import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("generator") / "tiny-sd")


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
    build_dataset(out=out, cifar10=str(cifar10_archive), generator=str(tiny_generator_dir), per_class=3,
                  test_per_class=2, num_inference_steps=2, guidance_scale=6.0, batch_size=8, pipe=tiny_pipe)
    return out


TOY_PATTERN_AMPLITUDE = 6  # grey levels


def toy_pattern() -> np.ndarray:
    """A fixed high-frequency pattern (a one-pixel checkerboard per channel, phases shifted)."""
    y, x = np.mgrid[0:32, 0:32]
    channels = [((x + y + shift) % 2) * 2 - 1 for shift in range(3)]
    return (np.stack(channels, -1) * TOY_PATTERN_AMPLITUDE).astype(np.int16)


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory, cifar_pixels):
    """A separable toy task in the kit's dataset layout: REAL = CIFAR-10 photos, FAKE = other photos
    with a fixed high-frequency pattern added (lossless PNG). Not generated images of any kind."""
    from datasets import Dataset, DatasetDict

    from dataset_builder.export import render_card, write_dataset_folder
    from dataset_builder.features import cifake_features
    from dataset_builder.imaging import encode_image

    images, labels = cifar_pixels
    marked = np.clip(images.astype(np.int16) + toy_pattern(), 0, 255).astype(np.uint8)
    splits = {"train": range(0, 800), "test": range(800, 1000)}
    dataset_dict = {}
    for split, indices in splits.items():
        rows = {name: [] for name in cifake_features()}
        for i in indices:
            fake = i % 2 == 0  # alternate images: the model never sees one photo in both labels
            rows["image"].append({"bytes": encode_image(marked[i] if fake else images[i], "png"), "path": f"{i}.png"})
            rows["label"].append(0 if fake else 1)
            rows["cifar10_class"].append(int(labels[i]))
            for column in ("prompt", "seed", "generator_id", "num_inference_steps", "guidance_scale"):
                rows[column].append(None)
        dataset_dict[split] = Dataset.from_dict(rows, features=cifake_features())
    dataset_dict = DatasetDict(dataset_dict)
    out = tmp_path_factory.mktemp("toy") / "toy-cifake"
    work = out / ".work"
    work.mkdir(parents=True)
    write_dataset_folder(dataset_dict, out, render_card(dataset_dict, "## This copy\n\nA test fixture."), work)
    import shutil

    shutil.rmtree(work)
    return out


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, toy_dataset):
    """The paper's best CNN trained briefly on the toy task (shared by several model tests)."""
    from modeling.train import train

    out = tmp_path_factory.mktemp("model") / "cifake-model"
    train(data=str(toy_dataset), output_dir=out, epochs=6, batch_size=32, seed=0)
    return out
