import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from datasets import Image, load_dataset
from PIL import Image as PILImage

from cifake_kit.errors import CifakeError
from cifake_kit.schema import CIFAR10_CLASSES
from dataset_builder.build import build_dataset
from dataset_builder.export import WORK_DIR
from dataset_builder.generate import FakeItem, generator_id, load_generator, plan_fakes
from dataset_builder.prompts import PROMPT_FAMILIES, prompt_for, seed_for


def fake_rows(folder):
    rows = {}
    for split in ("train", "test"):
        ds = load_dataset(str(folder), split=split).cast_column("image", Image(decode=False))
        for row in ds:
            if row["label"] == 0:
                rows[row["image"]["path"]] = (row["seed"], row["image"]["bytes"])
    return rows


def test_seed_rule_never_repeats_within_a_full_build():
    plan = plan_fakes({"train": 5000, "test": 1000})
    assert len(plan) == 60_000
    seeds = {seed_for(0, item.split, item.class_idx, item.index) for item in plan}
    assert len(seeds) == 60_000
    regen = {seed_for(0, item.split, item.class_idx, item.index, attempt=1) for item in plan}
    assert not seeds & regen


def test_every_class_has_a_prompt_family_naming_it():
    assert list(PROMPT_FAMILIES) == CIFAR10_CLASSES
    assert prompt_for(1, 0) == PROMPT_FAMILIES["automobile"][0]
    assert prompt_for(1, 5) == PROMPT_FAMILIES["automobile"][1]


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_images(tmp_path, build_kwargs):
    build_dataset(output_dir=tmp_path / "a", **build_kwargs)
    build_dataset(output_dir=tmp_path / "b", **{**build_kwargs, "shard_size": 5})  # 2 batches of 4
    build_dataset(output_dir=tmp_path / "c", **{**build_kwargs, "seed": 1})
    a, b, c = (fake_rows(tmp_path / name) for name in "abc")
    assert a == b  # identical bytes; shard size changes nothing
    assert len(a) == 30
    assert all(a[path][1] != c[path][1] for path in a)


@pytest.mark.slow
def test_batch_size_changes_only_float_rounding(tmp_path, build_kwargs):
    # One CPU generator per image fixes each image's noise; a different batch size only changes
    # the order of float sums in the network, so pixels stay within a level or two.
    build_dataset(output_dir=tmp_path / "a", **build_kwargs)
    build_dataset(output_dir=tmp_path / "b", **{**build_kwargs, "batch_size": 3})
    a, b = fake_rows(tmp_path / "a"), fake_rows(tmp_path / "b")
    assert a.keys() == b.keys()
    for path in a:
        assert a[path][0] == b[path][0]
        pa, pb = (np.asarray(PILImage.open(io.BytesIO(x[path][1])), dtype=np.int16) for x in (a, b))
        assert np.abs(pa - pb).mean() < 1.0, path


def test_generated_images_are_not_blank_and_depend_on_the_prompt(tmp_path, build_kwargs):
    build_dataset(output_dir=tmp_path / "out", **build_kwargs)
    ds = load_dataset(str(tmp_path / "out"), split="train").with_format("numpy")
    fakes = np.stack([img for img, label in zip(ds["image"], ds["label"]) if label == 0])
    assert fakes.shape == (20, 32, 32, 3)
    assert fakes.reshape(20, -1).std(axis=1).min() > 1


class BlankFirstImages(torch.nn.Module):
    """A stand-in safety checker: flags and blanks the first `count` images it sees, as SD's does."""

    def __init__(self, count):
        super().__init__()
        self.left = count
        self.blanked = 0

    # diffusers asks every pipeline component for these, as ModelMixin provides them.
    device = property(lambda self: torch.device("cpu"))
    dtype = property(lambda self: torch.float32)

    def forward(self, images, clip_input):
        flags = []
        for i in range(len(images)):
            hit = self.left > 0
            if hit:
                images[i] = torch.zeros_like(images[i]) if torch.is_tensor(images) else np.zeros_like(images[i])
                self.left -= 1
                self.blanked += 1
            flags.append(hit)
        return images, flags


def test_blanked_images_are_regenerated_with_a_new_seed(tmp_path, build_kwargs):
    from transformers import CLIPImageProcessor

    from dataset_builder.tiny_generator import make_tiny_pipeline

    checker = BlankFirstImages(3)
    pipe = make_tiny_pipeline(safety_checker=checker, feature_extractor=CLIPImageProcessor(size=32, crop_size=32))
    pipe.set_progress_bar_config(disable=True)
    report = build_dataset(output_dir=tmp_path / "out", **{**build_kwargs, "pipe": pipe})
    assert checker.blanked == 3
    assert report.blank_regenerations == 3
    assert "Safety-checker blanks regenerated: 3." in (tmp_path / "out" / "README.md").read_text()
    ds = load_dataset(str(tmp_path / "out"), split="train").with_format("numpy")
    fakes = [(img, seed) for img, seed, label in zip(ds["image"], ds["seed"], ds["label"]) if label == 0]
    assert all(img.max() > 0 for img, _ in fakes)
    # The first batch's first three airplanes needed a second attempt: their seeds moved block.
    first = [seed for _, seed in fakes[:3]]
    assert first == [seed_for(0, "train", 0, i, attempt=1) for i in range(2)] + [seed_for(0, "train", 1, 0, attempt=1)]


_KILLABLE_BUILD = """
import sys
from dataset_builder.build import build_dataset
build_dataset(output_dir=sys.argv[1], cifar10=sys.argv[2], generator=sys.argv[3], per_class=2, test_per_class=1,
              num_inference_steps=2, guidance_scale=6.0, batch_size=1, shard_size=2)
"""


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_repeats_nothing(tmp_path, build_kwargs, cifar10_archive, tiny_generator_dir):
    out = tmp_path / "killed"
    manifest = out / WORK_DIR / "fakes" / "manifest-0.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE_BUILD, str(out), str(cifar10_archive), str(tiny_generator_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = [json.loads(line)["shard"] for line in manifest.read_text().splitlines() if line.strip()]
    assert 4 <= len(done_before) < 15  # 30 images in shards of 2: killed mid-way

    same = {**build_kwargs, "batch_size": 1, "shard_size": 2}  # 2 / 1 per class and label, as above
    report = build_dataset(output_dir=out, **same)
    assert report.resumed >= 2 * len(done_before) and report.generated == 30 - report.resumed

    build_dataset(output_dir=tmp_path / "clean", **same)
    resumed, clean = fake_rows(out), fake_rows(tmp_path / "clean")
    assert len(resumed) == 30 and len({seed for seed, _ in resumed.values()}) == 30
    assert resumed == clean


def test_resume_with_other_settings_is_refused(tmp_path, build_kwargs):
    out = tmp_path / "out"
    (out / WORK_DIR).mkdir(parents=True)
    (out / WORK_DIR / "settings.json").write_text(json.dumps({"seed": 99}))
    with pytest.raises(CifakeError, match="unfinished build with other settings \\(.*seed.*\\).*--overwrite"):
        build_dataset(output_dir=out, **build_kwargs)
    build_dataset(output_dir=out, overwrite=True, **build_kwargs)
    assert len(load_dataset(str(out), split="test")) == 20


def test_damaged_shard_is_made_again(tmp_path, build_kwargs):
    from dataset_builder.generate import FakeStore, GenerationSettings, generate_fakes

    plan = [FakeItem("train", 0, i) for i in range(4)]
    settings = GenerationSettings(num_inference_steps=2, guidance_scale=6.0, batch_size=2, shard_size=2)
    store = FakeStore(tmp_path / "fakes")
    generate_fakes(plan, settings, store, pipe=build_kwargs["pipe"])
    before = store.read_items(plan)
    store.path("shard", 1).write_bytes(b"torn")
    stats = generate_fakes(plan, settings, store, pipe=build_kwargs["pipe"])
    assert stats == {"generated": 2, "resumed": 2, "blank_regenerations": 0}
    assert store.read_items(plan) == before


def test_generator_errors_name_the_fix(tmp_path):
    empty = tmp_path / "not-a-pipeline"
    empty.mkdir()
    with pytest.raises(CifakeError, match="has no model_index.json"):
        load_generator(str(empty), device="cpu")
    with pytest.raises(CifakeError, match=r"offline.*--generator PATH.*tiny-random"):
        load_generator("CompVis/stable-diffusion-v1-4", device="cpu")


def test_generator_ids():
    assert generator_id("CompVis/stable-diffusion-v1-4") == "CompVis/stable-diffusion-v1-4"
    assert generator_id("tiny-random") == "cifake-kit/tiny-random-sd"


class _WritesMarker:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_pipeline_with_pickled_weights_is_refused_unloaded(tmp_path, tiny_generator_dir, monkeypatch):
    """diffusers falls back to unsafe .bin files when a part has no safetensors: the kit does not."""
    import pickle
    import shutil

    folder = tmp_path / "pipeline"
    shutil.copytree(tiny_generator_dir, folder)
    marker = tmp_path / "ran"
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(_WritesMarker(marker)))
    with pytest.raises(CifakeError, match=r"holds unet's weights only as a pickle file \(unet/diffusion_pytorch_model\.bin\)"
                                          r".*safetensors only"):
        load_generator(str(folder), device="cpu")
    assert not marker.exists()
    # Without the kit's own check, diffusers is still told to load safetensors only.
    from dataset_builder import generate

    monkeypatch.setattr(generate, "_require_safetensors", lambda folder: None)
    with pytest.raises(CifakeError, match="no file named diffusion_pytorch_model.safetensors"):
        load_generator(str(folder), device="cpu")
    assert not marker.exists()
