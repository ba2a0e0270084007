"""Write space/examples/: a few real CIFAR-10 test photos, and images from the kit's tiny pipeline.

The photos are copied byte for byte from ../shared/data/cifar10-test-jpeg (the first test image of
four classes). The other two are made by the kit's tiny random-weight diffusers pipeline, then
downscaled and encoded exactly as `cifake build --demo` does: they are NOT Stable Diffusion output.

    python tools/make_space_examples.py [--shared ../shared]
"""

import argparse
import shutil
from pathlib import Path

import torch
from PIL import Image

from cifake_kit.schema import IMAGE_SIZE
from dataset_builder.imaging import downscale
from dataset_builder.prompts import prompt_for
from dataset_builder.tiny_generator import make_tiny_pipeline

PHOTOS = ["airplane", "cat", "ship", "frog"]


def main():
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=root.parent / "shared")
    args = parser.parse_args()
    out = root / "space" / "examples"
    out.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        shutil.copyfile(args.shared / "data" / "cifar10-test-jpeg" / name / "0000.jpg", out / f"real-cifar10-{name}-0000.jpg")
    pipe = make_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    for i, class_idx in enumerate((3, 8)):  # cat, ship prompts
        generator = torch.Generator("cpu").manual_seed(i)
        image = pipe(prompt_for(class_idx, 0), num_inference_steps=2, guidance_scale=6.0, generator=generator).images[0]
        Image.fromarray(downscale(image, IMAGE_SIZE)).save(out / f"kit-tiny-random-pipeline-{i}.png")
    print(f"wrote {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main()
