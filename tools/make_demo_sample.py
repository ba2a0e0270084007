"""Write dataset_builder/data/demo/ (images.tar.gz + SOURCES beside it): the genuine sample behind `cifake build --demo`.

From ../shared/data (see ../shared/README.md), copied byte for byte:
- real/<class>/NNNN.jpg: 84 CIFAR-10 test photos per class (ranks 0010-0093 in test_batch order),
  the quality-75 JPEGs the CIFAKE release carries;
- generated/<generator>/*.png: 30 tiles from each of 14 generators trained on CIFAR-10 (the 9 GANs
  of chainer-gan-lib, and 5 DDPM samplers/checkpoints from 3 repositories), picked evenly through
  each source grid's tiles, so weak and strong, GAN and diffusion are all there in equal measure;
- generated/sd-<owner>/*.png: from the four Stable Diffusion v1.x sources of
  ../shared/data/generated-sd with 40 or more images (393 in all: CIFAKE's own generator family,
  photo-like animals as well as art), every second image by file name; from a source that drew
  several samples of each of many prompts (bento170502: two per line of its prompts.txt), one image
  per prompt instead, so that the demo's split cannot put one sample of a prompt in training and
  its sibling in test; and no image of a prompt that a Space example shows;
- generated/SOURCES.csv: per file its family, generator, repository, commit, path in the repository,
  grid row and column (tiles), prompt and model evidence (Stable Diffusion), pixel MD5 and licence;
  generated/SOURCES.md: the same in words, with the licences.

    python tools/make_demo_sample.py [--shared ../shared]
"""

import argparse
import csv
import shutil
import tarfile
import tempfile
from pathlib import Path

from make_space_examples import EXAMPLES

from cifake_kit.schema import CIFAR10_CLASSES

PER_GENERATOR = 30
REAL_RANKS = range(10, 94)  # per class; ranks 0-5 are in cifar10-sample.tar.gz, 0 is a Space example
LICENCES = {
    "pfnet-research/chainer-gan-lib": "MIT, Copyright (c) 2017 pfnet-research",
    "kopper-xdu/diffusion_model_pytorch": "MIT, Copyright (c) 2022 Xijun Wang",
    "w86763777/pytorch-ddpm": "WTFPL v2",
    "zoubohao/DenoisingDiffusionProbabilityModel-ddpm-": "MIT",
}
# bundle folder: (shared folder, file-name prefix, generator_id, what it is)
GENERATORS = {
    **{f"gan-{prefix.replace('_', '-')}": ("cifar10-gan-chainer-gan-lib", prefix, f"pfnet-research/chainer-gan-lib:{prefix}", name)
       for prefix, name in [("progressive", "Progressive GAN"), ("sndcgan", "SN-DCGAN"), ("wgan_gp", "WGAN-GP"),
                            ("dfm", "DFM"), ("cramer", "Cramer GAN"), ("dragan", "DRAGAN"), ("dcgan", "DCGAN"),
                            ("minibatch_dis", "minibatch discrimination GAN"), ("began", "BEGAN")]},
    "ddpm-w86763777": ("cifar10-ddpm-w86763777", "ddpm_cifar10_samples", "w86763777/pytorch-ddpm",
                       "DDPM (Ho et al.), FID 3.25 as its authors report"),
    "ddpm-kopper-xdu-epoch1720": ("cifar10-ddpm-kopper-xdu", "epoch1720_", "kopper-xdu/diffusion_model_pytorch:epoch1720",
                                  "DDPM reproduction, 1000-step samples at epoch 1720"),
    "ddpm-kopper-xdu-epoch220": ("cifar10-ddpm-kopper-xdu", "image-epoch220", "kopper-xdu/diffusion_model_pytorch:epoch220",
                                 "the same DDPM at epoch 220, early in training"),
    "ddpm-zoubohao-uncond": ("cifar10-ddpm-zoubohao", "uncond", "zoubohao/DenoisingDiffusionProbabilityModel-ddpm-:uncond",
                             "a small unconditional DDPM"),
    "ddpm-zoubohao-cfg-guided": ("cifar10-ddpm-zoubohao", "cfg_guided_head",
                                 "zoubohao/DenoisingDiffusionProbabilityModel-ddpm-:cfg_guided",
                                 "the same DDPM, class-conditional with classifier-free guidance"),
}

# bundle folder: (folder of ../shared/data/generated-sd, generator_id, model version, what it is)
STABLE_DIFFUSION = {
    "sd-vincegmz": ("vincegmz-stable-diffusion", "stable-diffusion:vincegmz/stable-diffusion", "SD v1.4",
                    "\"a photo of a dog\": DreamBooth class-prior images"),
    "sd-bento170502": ("bento170502-stable-diffusion", "stable-diffusion:bento170502/stable-diffusion", "SD v1.1",
                       "\"a photo of ...\" and \"a painting of ...\" animals and scenes"),
    "sd-JoshCLWren": ("JoshCLWren-stable-diffusion", "stable-diffusion:JoshCLWren/stable-diffusion", "SD v1.x",
                      "mostly illustration: storyboard scenes, people, creatures"),
    "sd-edmundhong": ("edmundhong-stable-diffusion", "stable-diffusion:edmundhong/stable-diffusion", "SD v1.x",
                      "art, garbled text"),
}


def sd_pick(rows: list[dict], shared: str) -> list[dict]:
    """The demo's images of one generated-sd source (`rows` sorted by file): one per prompt where the
    source used many prompts, else every second; none of a prompt that a Space example shows."""
    shown = {Path(path).name for path in EXAMPLES.values() if path.startswith(f"generated-sd/{shared}/")}
    held = {row["prompt"] for row in rows if row["file"] in shown}
    if len({row["prompt"] for row in rows}) > len(rows) // 4:  # many prompts: a few samples of each
        first = {}
        for row in rows:
            first.setdefault(row["prompt"], row)
        return [row for prompt, row in first.items() if prompt not in held]
    return [row for row in rows[::2] if row["file"] not in shown]


def main():
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=root.parent / "shared")
    args = parser.parse_args()
    data = args.shared / "data"
    bundle = root / "dataset_builder" / "data" / "demo"
    out = Path(tempfile.mkdtemp(prefix="cifake-demo-"))  # laid out as folders here, shipped as one archive
    for name in CIFAR10_CLASSES:
        (out / "real" / name).mkdir(parents=True)
        for rank in REAL_RANKS:
            shutil.copyfile(data / "cifar10-test-jpeg" / name / f"{rank:04d}.jpg", out / "real" / name / f"{rank:04d}.jpg")
    rows = []
    for folder, (shared, prefix, generator, _) in GENERATORS.items():
        with open(data / "generated" / shared / "provenance.csv", newline="") as handle:
            tiles = [row for row in csv.DictReader(handle) if row["file"].startswith(prefix) and not row["duplicate_of"]]
        tiles.sort(key=lambda row: row["file"])
        step = len(tiles) / PER_GENERATOR
        chosen = [tiles[int(i * step)] for i in range(PER_GENERATOR)]  # evenly through the grid(s)
        (out / "generated" / folder).mkdir(parents=True)
        for row in chosen:
            shutil.copyfile(data / "generated" / shared / row["file"], out / "generated" / folder / row["file"])
            rows.append({"folder": folder, "file": row["file"], "generator_id": generator, "repo": row["repo"],
                         "commit": row["commit"], "path": row["path"], "row": row["row"], "col": row["col"],
                         "pixel_md5": row["pixel_md5"], "licence": LICENCES[row["repo"]],
                         "family": "DDPM" if folder.startswith("ddpm") else "GAN", "model": "", "prompt": ""})
    for folder, (shared, generator, model, _) in STABLE_DIFFUSION.items():
        with open(data / "generated-sd" / shared / "provenance.csv", newline="") as handle:
            images = sd_pick(sorted(csv.DictReader(handle), key=lambda row: row["file"]), shared)
        (out / "generated" / folder).mkdir(parents=True)
        for row in images:
            shutil.copyfile(data / "generated-sd" / shared / row["file"], out / "generated" / folder / row["file"])
            rows.append({"folder": folder, "file": row["file"], "generator_id": generator, "repo": row["repo"],
                         "commit": row["commit"], "path": row["path"], "row": "", "col": "",
                         "pixel_md5": row["pixel_md5_32"], "licence": _short_licence(row["licence"]), "family": "Stable Diffusion",
                         "model": model, "prompt": row["prompt"]})
    shutil.rmtree(bundle, ignore_errors=True)
    bundle.mkdir(parents=True)
    with open(bundle / "generated-SOURCES.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (bundle / "generated-SOURCES.md").write_text(sources_text(rows), encoding="utf-8")
    (bundle / "real-SOURCES.md").write_text(REAL_SOURCES, encoding="utf-8")
    with tarfile.open(bundle / "images.tar.gz", "w:gz") as tar:  # images only, sorted, no owners or times
        for path in sorted(p for p in out.rglob("*") if p.suffix in (".jpg", ".png")):
            info = tar.gettarinfo(path, arcname=str(path.relative_to(out)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    shutil.rmtree(out)
    size = sum(p.stat().st_size for p in bundle.iterdir())
    print(f"wrote {bundle}: {len(rows)} generated + {len(CIFAR10_CLASSES) * len(REAL_RANKS)} real images in one archive, "
          f"SOURCES beside it, {size:,} bytes")


REAL_SOURCES = """\
# Real photos of the CIFAKE kit's demo

84 photos per class from the CIFAR-10 *test* set (ranks 0010-0093 of each class in `test_batch`
order), as the 32x32 quality-75 JPEGs that the published CIFAKE release carries, copied byte for
byte. CIFAR-10: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009.
They are real photographs; none was generated.
"""


def _short_licence(text: str) -> str:
    """generated-sd's licence column, in the few words a file's row needs (its README has the rest)."""
    if text.startswith("MIT"):
        return "MIT, Copyright 2022 Rinon Gal, Yuval Alaluf et al. (LICENSE at the image's commit)"
    if text.startswith("CreativeML Open RAIL-M"):
        return "CreativeML Open RAIL-M"
    raise SystemExit(f"unknown licence in generated-sd's provenance: {text[:60]!r}")


def sources_text(rows: list[dict]) -> str:
    lines = [
        "# Generated images of the CIFAKE kit's demo",
        "",
        "Two kinds of genuine generated images, none of them a CIFAKE image. `SOURCES.csv` gives, per file,",
        "its family, generator_id, repository, commit, path in the repository, the MD5 of its 32x32 pixels",
        "and its licence, with the grid row and column of a tile, and the prompt and model evidence of a",
        "Stable Diffusion image.",
        "",
        "**Generators trained on CIFAR-10** (GANs and DDPMs). Each file is an exact 32x32 tile of a sample grid",
        "that the model's authors published in their public repository (the generator's own 8-bit output, never",
        "resampled or re-encoded).",
        "",
        "| folder | generator_id | what it is | images | licence of the source repository |",
        "|---|---|---|---|---|",
    ]
    for folder, (_, _, generator, what) in GENERATORS.items():
        mine = [row for row in rows if row["folder"] == folder]
        repo = generator.split(":")[0]
        lines.append(f"| `{folder}` | `{generator}` | {what} (`{repo}` @ {mine[0]['commit'][:8]}) | {len(mine)} | {LICENCES[repo]} |")
    lines += [
        "",
        "**Stable Diffusion v1.x** (CIFAKE's own generator family: its FAKE half is SD v1.4 output). Each file is",
        "the output of a Stable Diffusion v1.x text-to-image model, committed by the person who ran it to a public",
        "repository, reduced to CIFAKE's size: centre square, PIL bicubic to 32x32, RGB, saved as PNG.",
        "",
        "| folder | generator_id | model | what it is | images | licence of the source repository |",
        "|---|---|---|---|---|---|",
    ]
    for folder, (_, generator, model, what) in STABLE_DIFFUSION.items():
        mine = [row for row in rows if row["folder"] == folder]
        repo = generator.split(":", 1)[1]
        lines.append(f"| `{folder}` | `{generator}` | {model} | {what} (`{repo}` @ {mine[0]['commit'][:8]}) | "
                     f"{len(mine)} | {mine[0]['licence']} |")
    lines += [
        "",
        "MIT licence of the MIT-licensed repositories above: Permission is hereby granted, free of charge, to",
        "any person obtaining a copy of this software and associated documentation files (the \"Software\"),",
        "to deal in the Software without restriction, including without limitation the rights to use, copy,",
        "modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit",
        "persons to whom the Software is furnished to do so, subject to the following conditions: The above",
        "copyright notice and this permission notice shall be included in all copies or substantial portions",
        "of the Software. THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND.",
        "",
        "The CreativeML Open RAIL-M licence (https://huggingface.co/spaces/CompVis/stable-diffusion-license)",
        "governs the Stable Diffusion model and its use restrictions; it claims no rights in the outputs. Keep",
        "this attribution wherever the images go.",
        "",
        "Selected from the shared research set by `tools/make_demo_sample.py`.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
