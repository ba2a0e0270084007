"""The genuine detection task of ../shared: real CIFAR-10 photos vs 2,116 images of real generators.

`build_genuine_task` lays the shared images out as import-folder sources (one folder per
generator, so every FAKE row carries its own `generator_id`) and imports them with the kit's one
encoder (JPEG q75, CIFAKE's tables) and its stratified, seeded 80/20 split. REAL: 2,116 of the
10,000 test photos, spread evenly over the ten classes (the issue's task); `extra_real` adds more
photos to the training split only (a `train/` folder), for recipes that weight the classes.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from cifake_kit.schema import CIFAR10_CLASSES

# generator_id -> (shared folder, file-name prefixes). Checkpoints of one run that differ only in
# training time are kept apart when the authors published them apart (kopper-xdu's epochs).
GENERATORS = {
    **{f"chainer-gan-lib:{p}": ("cifar10-gan-chainer-gan-lib", (p,))
       for p in ("progressive", "sndcgan", "wgan_gp", "dfm", "cramer", "dragan", "dcgan", "minibatch_dis", "began")},
    "pytorch-ddpm": ("cifar10-ddpm-w86763777", ("ddpm_cifar10_samples",)),
    "kopper-xdu-ddpm:epoch1720": ("cifar10-ddpm-kopper-xdu", ("epoch1720",)),
    "kopper-xdu-ddim100:epoch1720": ("cifar10-ddpm-kopper-xdu", ("DDIM100",)),
    "kopper-xdu-ddpm:epochs220-620": ("cifar10-ddpm-kopper-xdu", ("image-epoch",)),
    "zoubohao-ddpm:uncond": ("cifar10-ddpm-zoubohao", ("uncond",)),
    "zoubohao-ddpm:cfg-guided": ("cifar10-ddpm-zoubohao", ("cfg_guided",)),
    "zoubohao-ddpm:cfg-noguide": ("cifar10-ddpm-zoubohao", ("cfg_noguide",)),
}
REAL_TOTAL = 2116


def stage_sources(shared: Path, staging: Path, extra_real: int = 0) -> tuple[list[Path], list[str]]:
    """Copy the task's files into `staging`; returns import_folders' (real, fake) arguments."""
    data = shared / "data"
    generated = data / "generated"
    if not generated.is_dir():
        raise SystemExit(f"{generated} is missing: this bench needs ../shared/data (see ../shared/README.md).")
    if staging.exists():
        shutil.rmtree(staging)
    fake = []
    seen = set()
    for generator, (folder, prefixes) in GENERATORS.items():
        target = staging / "fake" / generator.replace(":", "__")
        target.mkdir(parents=True)
        with open(generated / folder / "provenance.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["file"].startswith(prefixes):
                    shutil.copyfile(generated / folder / row["file"], target / row["file"])
                    seen.add((folder, row["file"]))
        fake.append(f"{generator}={target}")
    total = sum(1 for p in generated.glob("*/*.png"))
    if len(seen) != total:
        raise SystemExit(f"the generator table covers {len(seen)} of {total} generated images: update GENERATORS.")
    per_class = [REAL_TOTAL // 10 + (c < REAL_TOTAL % 10) for c in range(10)]
    extra = [extra_real // 10 + (c < extra_real % 10) for c in range(10)]
    real = staging / "real"
    for c, name in enumerate(CIFAR10_CLASSES):
        photos = sorted((data / "cifar10-test-jpeg" / name).glob("*.jpg"))
        chosen, more = photos[: per_class[c]], photos[per_class[c]: per_class[c] + extra[c]]
        for sub, files in (("task", chosen), ("extra", more)):
            if not files:
                continue
            dest = real / sub / ("train" if sub == "extra" else "") / name
            dest.mkdir(parents=True, exist_ok=True)
            for path in files:
                shutil.copyfile(path, dest / path.name)
    return [real / sub for sub in ("task", "extra") if (real / sub).is_dir()], fake


def build_genuine_task(shared: Path, out: Path, extra_real: int = 0, seed: int = 0) -> Path:
    """Import the genuine task into the dataset folder `out` (replaced if it exists)."""
    from dataset_builder.build import import_folders

    staging = out.with_name(out.name + ".sources")
    real, fake = stage_sources(shared, staging, extra_real)
    import_folders(real, fake, output_dir=out, test_fraction=0.2, seed=seed, overwrite=True,
                   intro="The genuine task of the kit's benchmarks (bench/_genuine.py).")
    shutil.rmtree(staging)
    return out


def bench_task(data: Path | None, shared: Path, work: Path) -> Path:
    """What a training bench runs on: offline, quiet, the allocator as `cifake train` sets it, and
    the dataset folder given (`data`) or else the genuine task built under `work`."""
    import os

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(name, "1")
    from cifake_kit.runtime import keep_freed_memory

    keep_freed_memory()
    return data if data is not None else build_genuine_task(shared, work / "genuine-task")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--output-dir", type=Path, default=Path("genuine-task"))
    parser.add_argument("--extra-real", type=int, default=0, help="more real photos, training split only")
    args = parser.parse_args()
    print(build_genuine_task(args.shared, args.output_dir, args.extra_real))
