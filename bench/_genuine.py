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

from _bench import arguments, like_cifake, scratch

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


def generator_files(shared: Path):
    """(generator_id, path) of every generated image of the task, in GENERATORS' order."""
    generated = shared / "data" / "generated"
    for generator, (folder, prefixes) in GENERATORS.items():
        with open(generated / folder / "provenance.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["file"].startswith(prefixes):
                    yield generator, generated / folder / row["file"]


def real_photos(shared: Path, count: int, skip: int = 0) -> list[tuple[str, Path]]:
    """`count` CIFAR-10 test photos spread evenly over the classes, as (class, path), after the first
    `skip` of the same class-balanced pick (this task takes the first REAL_TOTAL)."""
    data = shared / "data" / "cifar10-test-jpeg"
    chosen = []
    for c, name in enumerate(CIFAR10_CLASSES):
        start = skip // 10 + (c < skip % 10)
        n = count // 10 + (c < count % 10)
        photos = sorted((data / name).glob("*.jpg"))[start: start + n]
        if len(photos) < n:
            raise SystemExit(f"{data / name} holds too few photos for {count} real images after the first {skip}.")
        chosen += [(name, path) for path in photos]
    return chosen


def stage_sources(shared: Path, staging: Path, extra_real: int = 0) -> tuple[list[Path], list[str]]:
    """Copy the task's files into `staging`; returns import_folders' (real, fake) arguments."""
    generated = shared / "data" / "generated"
    if not generated.is_dir():
        raise SystemExit(f"{generated} is missing: this bench needs ../shared/data (see ../shared/README.md).")
    real = staging / "real"  # picked before anything is copied: too few photos stops here, in one line
    reals = ((real / "task", real_photos(shared, REAL_TOTAL)),
             (real / "extra" / "train", real_photos(shared, extra_real, REAL_TOTAL)))
    if staging.exists():
        shutil.rmtree(staging)
    fake = {generator: staging / "fake" / generator.replace(":", "__") for generator in GENERATORS}
    for target in fake.values():
        target.mkdir(parents=True)
    seen = set()
    for generator, path in generator_files(shared):
        shutil.copyfile(path, fake[generator] / path.name)
        seen.add(path)
    total = sum(1 for p in generated.glob("*/*.png"))
    if len(seen) != total:
        raise SystemExit(f"the generator table covers {len(seen)} of {total} generated images: update GENERATORS.")
    for folder, photos in reals:
        for name, path in photos:
            (folder / name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / name / path.name)
    return [real / sub for sub in ("task", "extra") if (real / sub).is_dir()], [f"{g}={d}" for g, d in fake.items()]


def build_genuine_task(shared: Path, out: Path, extra_real: int = 0, seed: int = 0) -> Path:
    """Import the genuine task into the dataset folder `out` (replaced if it exists)."""
    return import_staged(lambda staging: stage_sources(shared, staging, extra_real), out, seed,
                         "The genuine task of the kit's benchmarks (bench/_genuine.py).")


def import_staged(stage, out: Path, seed: int, intro: str) -> Path:
    """Import the sources `stage(staging)` lays out (returning import_folders' real and fake arguments)
    into the dataset folder `out` (replaced), in the kit's stratified 80/20 split drawn in `seed`."""
    from dataset_builder.build import import_folders

    staging = out.with_name(out.name + ".sources")
    real, fake = stage(staging)
    import_folders(real, fake, output_dir=out, test_fraction=0.2, seed=seed, overwrite=True, intro=intro)
    shutil.rmtree(staging)
    return out


def bench_task(args, name: str) -> tuple[Path, Path]:
    """What a training bench runs on: offline, quiet, the allocator as `cifake train` sets it; (its
    scratch folder, the dataset folder --data or else the genuine task built there)."""
    like_cifake()
    work = scratch(name)
    return work, args.data if args.data is not None else build_genuine_task(args.shared, work / "genuine-task")


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--output-dir", type=Path, default=Path("genuine-task"))
    parser.add_argument("--extra-real", type=int, default=0, help="more real photos, training split only")
    args = parser.parse_args()
    print(build_genuine_task(args.shared, args.output_dir, args.extra_real))
