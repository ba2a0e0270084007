"""The published CIFAKE folders (Kaggle): `train|test / REAL|FAKE / *.jpg` -> examples.

File names carry the CIFAR-10 class: `N.jpg` is airplane and `N (k).jpg` is class k, counted
from 1 (k = 2..10). REAL names are zero-padded to four digits and number the images of a class
within CIFAR-10's split (0000-4999 train, 0000-0999 test); FAKE names are not padded and run
0-999 in test and 1000-5999 in train. The original JPEG bytes are kept as they are.
"""

from __future__ import annotations

import io
import os
import re
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from cifake_kit.errors import CifakeError
from cifake_kit.schema import CIFAR10_CLASSES, IMAGE_SIZE, LABEL_NAMES, SPLITS

_NAME = re.compile(r"^(\d+)(?: \((\d+)\))?\.(jpe?g|png)$", re.IGNORECASE)
# FAKE training images are numbered from 1000 in the release (0-999 are the test split).
_FAKE_TRAIN_OFFSET = 1000
_EXPECTED_LAYOUT = "train/REAL, train/FAKE, test/REAL and test/FAKE"
_FORMATS = ("JPEG", "PNG")  # what the release and the kit write; no other PIL plugin is tried
_CHECK_CHUNK = 2000  # files per task when decoding in parallel
_BAR_FROM = 5000  # files: smaller imports finish before a bar would say anything


def parse_kaggle_name(name: str) -> tuple[int, int]:
    """(CIFAR-10 class id, number in the name) of a CIFAKE file name; ValueError if it is not one."""
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a CIFAKE file name (expected 'N.jpg' or 'N (k).jpg')")
    number, k = int(match.group(1)), match.group(2)
    if k is None:
        return 0, number
    k = int(k)
    if not 2 <= k <= len(CIFAR10_CLASSES):
        raise ValueError(f"{name!r} names class ({k}); CIFAKE uses (2) to ({len(CIFAR10_CLASSES)})")
    return k - 1, number


def kaggle_filename(label: str, split: str, class_idx: int, index: int) -> str:
    """The release's file name for image `index` of a class: the inverse of the parser."""
    if label == "REAL":
        number = f"{index:04d}"
    else:
        number = str(index + (_FAKE_TRAIN_OFFSET if split == "train" else 0))
    return f"{number}.jpg" if class_idx == 0 else f"{number} ({class_idx + 1}).jpg"


def kaggle_index(label: str, split: str, number: int) -> int:
    """Rank of an image within its split and class, from the number in its name."""
    if label == "FAKE" and split == "train":
        return number - _FAKE_TRAIN_OFFSET
    return number


@dataclass
class KaggleFile:
    path: Path
    relpath: str  # e.g. "train/FAKE/1000 (10).jpg"
    split: str
    label: str
    class_idx: int
    index: int


@dataclass
class KaggleScan:
    root: Path
    files: dict[str, list[KaggleFile]]  # by split
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was skipped)


def scan_kaggle(source: str | Path, workers: int | None = None) -> KaggleScan:
    """List the CIFAKE files under `source` whose images decode, refusing links that leave it.

    Every file is decoded once here, on `workers` processes (default: one per CPU); what fails
    is listed in `problems` with the reason, and the rest is imported.
    """
    root = find_kaggle_root(Path(source).expanduser())
    real_root = root.resolve()
    scan = KaggleScan(root, {split: [] for split in SPLITS})
    seen: dict[tuple, str] = {}
    for split in SPLITS:
        for label in sorted(LABEL_NAMES):
            folder = root / split / label
            # A link (a file's, or a linked folder's) may point anywhere; only files inside the
            # source are read. Same rule as datasets' metadata reader for `file_name`. Plain
            # entries of a folder that lies inside need no check, so only links are resolved.
            folder_inside = folder.resolve().is_relative_to(real_root)
            with os.scandir(folder) as entries:
                listing = sorted((entry.name, entry.is_symlink(), entry.is_file()) for entry in entries)
            for name, is_link, is_file in listing:
                path = folder / name
                relpath = f"{split}/{label}/{name}"
                if not folder_inside or (is_link and not path.resolve().is_relative_to(real_root)):
                    scan.problems.append((relpath, "refused: it links outside the source folder"))
                    continue
                if not is_file:
                    scan.problems.append((relpath, "skipped: not a regular file"))
                    continue
                try:
                    class_idx, number = parse_kaggle_name(name)
                except ValueError as err:
                    scan.problems.append((relpath, f"skipped: {err}"))
                    continue
                key = (split, label, class_idx, number)
                if key in seen:
                    scan.problems.append((relpath, f"skipped: same image number as {seen[key]}"))
                    continue
                seen[key] = relpath
                index = kaggle_index(label, split, number)
                scan.files[split].append(KaggleFile(path, relpath, split, label, class_idx, index))
    if not any(scan.files.values()):
        raise CifakeError(
            f"No CIFAKE images found under {str(root)!r}: the folders {_EXPECTED_LAYOUT} hold no "
            f"file named like 'N.jpg' or 'N (k).jpg'. Point import-kaggle at the unzipped download."
        )
    _drop_unreadable(scan, workers)
    return scan


def check_image(data: bytes) -> None:
    """Raise ValueError unless `data` decodes completely to a 32x32 image."""
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
            size = image.size
            image.load()
    except Exception as err:  # PIL raises many types for bad data; all mean "unreadable"
        raise ValueError(f"unreadable image ({type(err).__name__}: {err})") from err
    if size != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"image is {size[0]}x{size[1]}, not {IMAGE_SIZE}x{IMAGE_SIZE}")


def _drop_unreadable(scan: KaggleScan, workers: int | None) -> None:
    """Decode every listed file once, in parallel; move the ones that fail to `scan.problems`."""
    files = [file for split in SPLITS for file in scan.files[split]]
    chunks = [[str(f.path) for f in files[i : i + _CHECK_CHUNK]] for i in range(0, len(files), _CHECK_CHUNK)]
    workers = min(workers or len(os.sched_getaffinity(0)), len(chunks))
    results = []
    with tqdm(total=len(files), desc="Checking images", unit="img", disable=len(files) < _BAR_FROM) as bar:
        with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            for chunk, found in zip(chunks, pool.map(_unreadable, chunks) if pool else map(_unreadable, chunks)):
                results.append(found)
                bar.update(len(chunk))
    bad = {id(files[n * _CHECK_CHUNK + i]): why for n, found in enumerate(results) for i, why in found}
    for split in SPLITS:
        scan.problems += [(f.relpath, f"skipped: {bad[id(f)]}") for f in scan.files[split] if id(f) in bad]
        scan.files[split] = [f for f in scan.files[split] if id(f) not in bad]


def _unreadable(paths: list[str]) -> list[tuple[int, str]]:
    found = []
    for i, path in enumerate(paths):
        try:
            check_image(Path(path).read_bytes())
        except (ValueError, OSError) as err:
            found.append((i, str(err)))
    return found


def find_kaggle_root(source: Path) -> Path:
    """The folder under `source` (itself or one level down) that holds the four CIFAKE folders."""
    if not source.is_dir():
        raise CifakeError(
            f"Kaggle source {str(source)!r} is not a folder. Unzip the CIFAKE download and pass "
            f"the folder that holds {_EXPECTED_LAYOUT}."
        )
    candidates = [source] + sorted(p for p in source.iterdir() if p.is_dir())
    for root in candidates:
        if all((root / split / label).is_dir() for split in SPLITS for label in LABEL_NAMES):
            return root
    missing = [f"{s}/{name}" for s in SPLITS for name in LABEL_NAMES if not (source / s / name).is_dir()]
    raise CifakeError(
        f"{str(source)!r} is not the CIFAKE Kaggle layout: missing {', '.join(missing)}. Pass the "
        f"unzipped folder that holds {_EXPECTED_LAYOUT}."
    )
