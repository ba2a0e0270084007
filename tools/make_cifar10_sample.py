"""Write dataset_builder/data/cifar10-sample.tar.gz: 60 photos in CIFAR-10's python format, behind
`cifake build --cifar10 bundled-sample` and the tests' tiny CIFAR-10 archive.

Source: the lossless first 1,017 CIFAR-10 test images in ../shared/data (see ../shared/README.md).
Per class, the first 6 in test_batch order: 4 are filed as training data and 2 as test data, so
the sample has both splits. All 60 are CIFAR-10 *test* photos.

    python tools/make_cifar10_sample.py [--shared ../shared]
"""

import argparse
from pathlib import Path

import numpy as np

from dataset_builder.cifar10 import write_cifar10_archive

TRAIN, TEST = 4, 2
NOTE = (
    "CIFAKE kit demo sample: 60 CIFAR-10 test photos (first 6 per class in test_batch order); "
    "the first 4 of each class are filed under data_batch_* so the demo has a train split."
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=root.parent / "shared")
    args = parser.parse_args()
    data = np.load(args.shared / "data" / "cifar10_test_first1017.npz")
    images, labels = data["images"], data["labels_first"]
    rank = np.array([np.sum(labels[:i] == label) for i, label in enumerate(labels)])  # its place within its class
    train, test = np.flatnonzero(rank < TRAIN), np.flatnonzero((rank >= TRAIN) & (rank < TRAIN + TEST))
    out = root / "dataset_builder" / "data" / "cifar10-sample.tar.gz"
    write_cifar10_archive(out, (images[train], labels[train]), (images[test], labels[test]), note=NOTE)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
