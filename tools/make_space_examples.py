"""Write space/examples/: real CIFAR-10 test photos, genuine Stable Diffusion images, and samples of generators trained on CIFAR-10.

Copied byte for byte from ../shared/data: the first CIFAR-10 test photo of four classes (the
quality-75 JPEGs of the CIFAKE release); three Stable Diffusion v1.x images of three sources
(../shared/data/generated-sd, none of them in the bundled demo, which takes every second file); and
one tile of the published sample grids of three generators (../shared/data/generated/README.md).

    python tools/make_space_examples.py [--shared ../shared]
"""

import argparse
import shutil
from pathlib import Path

# example file: its source under ../shared/data
EXAMPLES = {
    **{f"real-cifar10-{name}-0000.jpg": f"cifar10-test-jpeg/{name}/0000.jpg" for name in ["airplane", "cat", "ship", "frog"]},
    # a photo-like dog (SD v1.4), a photo-like cat (SD v1.1), an illustration
    "fake-sd14-vincegmz-dog.png": "generated-sd/vincegmz-stable-diffusion/04cbc2c36c_00175.png",
    "fake-sd11-bento170502-cat.png": "generated-sd/bento170502-stable-diffusion/50c0102f71_00321.png",
    "fake-sd1x-JoshCLWren-illustration.png": "generated-sd/JoshCLWren-stable-diffusion/008f6cdc6a_00274.png",
    "fake-sndcgan-chainer-gan-lib.png": "generated/cifar10-gan-chainer-gan-lib/sndcgan_r00c00.png",
    "fake-ddpm-w86763777.png": "generated/cifar10-ddpm-w86763777/ddpm_cifar10_samples_r00c00.png",
    "fake-began-chainer-gan-lib.png": "generated/cifar10-gan-chainer-gan-lib/began_r00c00.png",
}


def main():
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=root.parent / "shared")
    args = parser.parse_args()
    out = root / "space" / "examples"
    for old in out.glob("kit-tiny-random-pipeline-*.png"):
        old.unlink()
    for name, source in EXAMPLES.items():
        shutil.copyfile(args.shared / "data" / source, out / name)
    print(f"wrote {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main()
