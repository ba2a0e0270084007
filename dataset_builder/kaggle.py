"""The published CIFAKE folders (Kaggle): `train|test / REAL|FAKE / *.jpg` -> an import plan, bytes kept.

`N.jpg` is airplane, `N (k).jpg` class k counted from 1 (k = 2..10). REAL numbers are zero-padded, within
CIFAR-10's split; FAKE ones are not, and run 0-999 in test and 1000-5999 in train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.schema import CIFAR10_CLASSES, IMAGE_SIZE, LABEL_NAMES, SPLITS

from .features import CIFAKE_GENERATOR_ID
from .importing import Encoding, ImportFile

_EXTENSIONS = ("jpg", "jpeg", "png")
# FAKE training images are numbered from 1000 in the release (0-999 are the test split).
_FAKE_TRAIN_OFFSET = 1000
_EXPECTED_LAYOUT = "train/REAL, train/FAKE, test/REAL and test/FAKE"
# The release is all 32x32 JPEG (the kit writes PNG too); no other PIL plugin is tried, bytes are kept.
KAGGLE_ENCODING = Encoding(policy="keep", formats=("JPEG", "PNG"), size=IMAGE_SIZE)


def parse_kaggle_name(name: str) -> tuple[int, int]:
    """(CIFAR-10 class id, number in the name) of a CIFAKE file name, else ValueError (string operations,
    not a pattern: an import parses 120,000)."""
    stem, dot, extension = name.rpartition(".")
    if dot and extension.lower() in _EXTENSIONS:
        if _is_number(stem):
            return 0, int(stem)
        number, space, k = stem.partition(" (")
        if space and k.endswith(")") and _is_number(number) and _is_number(k[:-1]):
            k = int(k[:-1])
            if not 2 <= k <= len(CIFAR10_CLASSES):
                raise ValueError(f"{name!r} names class ({k}); CIFAKE uses (2) to ({len(CIFAR10_CLASSES)})")
            return k - 1, int(number)
    raise ValueError(f"{name!r} is not a CIFAKE file name (expected 'N.jpg' or 'N (k).jpg')")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def kaggle_filename(label: str, split: str, class_idx: int, index: int) -> str:
    """The release's file name for image `index` of a class: the inverse of the parser."""
    if label == "REAL":
        number = f"{index:04d}"
    else:
        number = str(index + (_FAKE_TRAIN_OFFSET if split == "train" else 0))
    return f"{number}.jpg" if class_idx == 0 else f"{number} ({class_idx + 1}).jpg"


@dataclass
class KaggleScan:
    root: Path
    files: list[ImportFile]  # in the release's order: split, then FAKE before REAL, then name
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was skipped)


def scan_kaggle(source: str | Path) -> KaggleScan:
    """List the CIFAKE files under `source` by name, refusing links that leave it (nothing is read here)."""
    root = find_kaggle_root(Path(source).expanduser())
    real_root = root.resolve()
    inside = str(real_root)  # one string shared by every file of the plan
    scan = KaggleScan(root, [])
    seen: dict[tuple, str] = {}
    for split in SPLITS:
        for label in sorted(LABEL_NAMES):
            folder = root / split / label
            # Only files inside the source are read; only links (a file's, or a linked folder's) are resolved.
            folder_inside = folder.resolve().is_relative_to(real_root)
            folder_is_link = folder.is_symlink()
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
            for entry in entries:  # DirEntry answers from the listing: no stat per question
                relpath = f"{split}/{label}/{entry.name}"
                linked = entry.is_symlink() or folder_is_link
                target = os.path.realpath(entry.path) if linked else entry.path
                if not folder_inside or (linked and not Path(target).is_relative_to(real_root)):
                    scan.problems.append((relpath, "refused: it links outside the source folder"))
                    continue
                if not entry.is_file():
                    scan.problems.append((relpath, "skipped: not a regular file"))
                    continue
                try:
                    class_idx, number = parse_kaggle_name(entry.name)
                except ValueError as err:
                    scan.problems.append((relpath, f"skipped: {err}"))
                    continue
                key = (split, label, class_idx, number)
                if key in seen:
                    scan.problems.append((relpath, f"skipped: same image number as {seen[key]}"))
                    continue
                seen[key] = relpath
                generator = CIFAKE_GENERATOR_ID if label == "FAKE" else None  # the release's generator, per the paper
                scan.files.append(ImportFile(target, relpath, split, LABEL_NAMES.index(label), class_idx, generator,
                                             inside))
    if not scan.files:
        raise CifakeError(f"No CIFAKE images found under {str(root)!r}: the folders {_EXPECTED_LAYOUT} hold no file "
                          "named like 'N.jpg' or 'N (k).jpg'. Point import-kaggle at the unzipped download.")
    return scan


def _is_kaggle_root(folder: Path) -> bool:
    return all((folder / split / label).is_dir() for split in SPLITS for label in LABEL_NAMES)


def find_kaggle_root(source: Path) -> Path:
    """The folder under `source` (itself or one level down) that holds the four CIFAKE folders."""
    if not source.is_dir():
        raise CifakeError(f"Kaggle source {str(source)!r} is not a folder. Unzip the CIFAKE download and pass the "
                          f"folder that holds {_EXPECTED_LAYOUT}.")
    if _is_kaggle_root(source):
        return source
    roots = [folder for folder in sorted(source.iterdir()) if folder.is_dir() and _is_kaggle_root(folder)]
    if len(roots) == 1:
        return roots[0]
    if roots:
        raise CifakeError(f"{str(source)!r} holds {len(roots)} CIFAKE folders ({', '.join(r.name for r in roots)}); an "
                          f"import takes one. Pass one of them, e.g. {str(roots[0])!r}.")
    missing = [f"{s}/{name}" for s in SPLITS for name in LABEL_NAMES if not (source / s / name).is_dir()]
    raise CifakeError(f"{str(source)!r} is not the CIFAKE Kaggle layout: missing {', '.join(missing)}. Pass the "
                      f"unzipped folder that holds {_EXPECTED_LAYOUT}.")
