"""Generation split across processes, as `accelerate launch` / `torchrun` run it."""

import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from datasets import Image, load_dataset

from dataset_builder.generate import FakeItem, FakeStore, GenerationSettings, generate_fakes


def test_each_process_takes_every_nth_shard_and_keeps_its_own_manifest(tmp_path, tiny_pipe):
    plan = [FakeItem("train", c, i) for c in range(3) for i in range(4)]  # 12 images, 6 shards of 2
    settings = GenerationSettings(num_inference_steps=2, guidance_scale=6.0, batch_size=2, shard_size=2)
    for rank in (1, 0):  # either order: a process never waits for another's shards here
        state = SimpleNamespace(num_processes=2, process_index=rank, device=torch.device("cpu"),
                                is_local_main_process=rank == 0, wait_for_everyone=lambda: None)
        stats = generate_fakes(plan, settings, FakeStore(tmp_path, rank=rank), pipe=tiny_pipe, state=state)
        assert stats["generated"] == 6
    for rank, shards in ((0, [0, 2, 4]), (1, [1, 3, 5])):
        lines = (tmp_path / f"manifest-{rank}.jsonl").read_text().splitlines()
        assert sorted(int(line.split('"shard": ')[1].split(",")[0]) for line in lines) == shards
    assert len(FakeStore(tmp_path).read_items(plan)) == 12


@pytest.mark.slow
def test_two_process_build_equals_one_process_build(tmp_path, cifar10_archive, tiny_generator_dir):
    # torchrun on CPU, as `accelerate launch` runs on GPUs. Both builds use one thread per
    # process: thread count changes float summation order, and so JPEG bytes.
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    args = ["-m", "cifake_cli", "build", "--cifar10", str(cifar10_archive), "--generator",
            str(tiny_generator_dir), "--per-class", "2", "--test-per-class", "1", "--steps", "2",
            "--guidance", "6.0", "--batch-size", "4", "--shard-size", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", "29517", *args, "--output-dir", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("wrote ") == 1  # only the main process writes the folder
    # 30 FAKE images in 8 shards of 4: rank 0 (the one showing progress) makes shards 0, 2, 4, 6.
    assert "16/16" in two.stderr and "/30 " not in two.stderr
    one = subprocess.run([sys.executable, *args, "--output-dir", str(tmp_path / "one")], capture_output=True, text=True,
                         env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]

    def rows(folder):
        ds = load_dataset(str(folder), split="train").cast_column("image", Image(decode=False))
        return sorted((r["image"]["path"], r["seed"], r["image"]["bytes"]) for r in ds)

    assert len(rows(tmp_path / "one")) == 40
    assert rows(tmp_path / "two") == rows(tmp_path / "one")
