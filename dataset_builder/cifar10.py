"""CIFAR-10, the real half of CIFAKE, as uint8 images (N, 32, 32, 3) in its own order and class ids: from the
Hub, or `cifar-10-python.tar.gz` (or its folder): pickled dicts of `b"data"` (N x 3072, channel-major) and
`b"labels"` in `data_batch_1..5`, `test_batch`, `batches.meta`.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifake_kit.errors import CifakeError
from cifake_kit.hub import is_hub_id, loading
from cifake_kit.schema import CIFAR10_CLASSES, SPLITS

DEFAULT_CIFAR10 = "uoft-cs/cifar10"
TRAIN_MEMBERS = [f"data_batch_{i}" for i in range(1, 6)]
TEST_MEMBER = "test_batch"
META_MEMBER = "batches.meta"
MAX_BATCH_BYTES = 64 << 20  # a real batch is 31 MB; a bigger member is refused before it is read
_HOW_TO_POINT = (
    "Pass --cifar10 PATH to cifar-10-python.tar.gz or its extracted folder "
    "(cifar-10-batches-py), or a Hub dataset id while online."
)


@dataclass
class Cifar10Split:
    images: np.ndarray  # (N, 32, 32, 3) uint8, RGB
    labels: np.ndarray  # (N,) int64 class ids in CIFAR10_CLASSES order
    source: str

    def first_per_class(self, count: int) -> np.ndarray:
        """Indices of the first `count` images of each class, in the source's order."""
        chosen = []
        for class_idx, name in enumerate(CIFAR10_CLASSES):
            idx = np.flatnonzero(self.labels == class_idx)
            if len(idx) < count:
                raise CifakeError(f"The CIFAR-10 source {self.source!r} has only {len(idx)} images of class {name!r} "
                                  f"in this split, fewer than the {count} asked for. Ask for at most {len(idx)} per "
                                  "class, or point --cifar10 at the full CIFAR-10.")
            chosen.append(idx[:count])
        return np.concatenate(chosen)


def load_cifar10(source: str | Path | None, split: str) -> Cifar10Split:
    """One split of CIFAR-10 from `source`: the archive, its folder, or a Hub id (default `uoft-cs/cifar10`)."""
    if split not in SPLITS:
        raise CifakeError(f"Unknown split {split!r}. Use one of: {', '.join(SPLITS)}.")
    source = DEFAULT_CIFAR10 if source is None else source
    path = Path(source).expanduser()
    if path.exists():
        members = [TEST_MEMBER] if split == "test" else TRAIN_MEMBERS
        images, labels = (np.concatenate(parts) for parts in zip(*_read_archive(path, members)))
        return Cifar10Split(images, labels, str(path))
    if not is_hub_id(source):
        raise CifakeError(f"CIFAR-10 source {str(source)!r} does not exist. {_HOW_TO_POINT}")
    return _load_from_hub(str(source), split)


def write_cifar10_archive(path: str | Path, train: tuple, test: tuple, note: str = "") -> Path:
    """Write a CIFAR-10 python-format `.tar.gz` from (images, labels) pairs, the training images spread over the
    five `data_batch_*` members (test fixtures, benchmarks, the bundled sample)."""
    path = Path(path)
    train_images, train_labels = train
    chunks = np.array_split(np.arange(len(train_labels)), len(TRAIN_MEMBERS))
    members = {member: _batch_dict(member, train_images[idx], train_labels[idx])
               for member, idx in zip(TRAIN_MEMBERS, chunks)}
    members[TEST_MEMBER] = _batch_dict(TEST_MEMBER, *test)
    members[META_MEMBER] = {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": int(max(map(len, chunks))),
                            "num_vis": 3072, **({"note": note} if note else {})}
    with tarfile.open(path, "w:gz") as tar:
        for member, content in members.items():
            data = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def _batch_dict(name: str, images: np.ndarray, labels) -> dict:
    images = np.asarray(images, dtype=np.uint8)
    return {
        b"batch_label": name.encode(),
        b"labels": [int(x) for x in labels],
        b"data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
        b"filenames": [f"{name}_{i}.png".encode() for i in range(len(images))],
    }


def _read_archive(path: Path, members: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    found = {}
    if path.is_dir():
        folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
        missing = "CIFAR-10 folder {!r} has no {!r}: it is not an extracted cifar-10-python.tar.gz."
        for member in members:
            if not (folder / member).is_file():  # said before any batch is decoded
                raise CifakeError(missing.format(str(folder), member) + f" {_HOW_TO_POINT}")
            _check_size((folder / member).stat().st_size, f"{folder}/{member}")
            found[member] = _decode_batch((folder / member).read_bytes(), f"{folder}/{member}")
        path = folder
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for info in tar:  # one pass, each member's size checked before its bytes are read
                    name = Path(info.name).name
                    if info.isfile() and name in members and name not in found:
                        _check_size(info.size, f"{path}:{name}")
                        found[name] = _decode_batch(tar.extractfile(info).read(), f"{path}:{name}")
                        if len(found) == len(members):
                            break
        except (tarfile.TarError, OSError, EOFError) as err:
            why = str(err).splitlines()[0].rstrip(":")  # tarfile lists each compression it tried, a line each
            raise CifakeError(f"CIFAR-10 archive {str(path)!r} cannot be read ({why}). Download "
                              f"cifar-10-python.tar.gz again. {_HOW_TO_POINT}") from err
        missing = "CIFAR-10 archive {!r} has no {!r} member: it is not cifar-10-python.tar.gz."
    for member in members:
        if member not in found:
            raise CifakeError(missing.format(str(path), member) + f" {_HOW_TO_POINT}")
    return [found[member] for member in members]


def _check_size(size: int, where: str) -> None:
    if size > MAX_BATCH_BYTES:
        raise CifakeError(f"{where} is {size / 2**20:,.0f} MB, more than a CIFAR-10 python batch can be "
                          f"({MAX_BATCH_BYTES >> 20} MB); it was not read. {_HOW_TO_POINT}")


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something a CIFAR-10 batch never holds."""


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds and nothing else: a crafted pickle runs code through the callables
    it names; the real batches name only numpy's array rebuilders (and `_codecs.encode`, for bytes), allowed
    with their arguments checked. Any other name stops the load before anything is built."""

    def find_class(self, module: str, name: str):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise _Refused(f"it asks for {module}.{name}, which no CIFAR-10 batch holds")
        return allowed


def _reconstruct(cls, shape, dtype):
    if cls is not np.ndarray:
        raise _Refused(f"it builds a {cls!r}, not a plain numpy array")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec)
    if dtype.kind not in "uib":  # numbers only: an object array would unpickle arbitrary objects
        raise _Refused(f"it holds a numpy array of {dtype}, not of numbers")
    return dtype


def _encode(text, encoding="utf-8"):
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise _Refused("it calls _codecs.encode other than for bytes")
    return codecs.encode(text, encoding)


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 1 (the published batches)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


def _decode_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
        raw = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = raw.reshape(len(raw), 3, 32, 32).transpose(0, 2, 3, 1)
    except _Refused as err:
        raise CifakeError(f"{where} was refused unread: {err}. Only the real cifar-10-python.tar.gz is read; a file "
                          f"that is not can run code when unpickled. {_HOW_TO_POINT}") from err
    except Exception as err:  # a pickle, or what it holds, can be wrong in many ways: all mean "not a batch"
        raise CifakeError(f"{where} is not a CIFAR-10 python batch ({type(err).__name__}: {err}). "
                          f"{_HOW_TO_POINT}") from err
    if len(labels) != len(images) or (len(labels) and not 0 <= labels.min() <= labels.max() <= 9):
        raise CifakeError(f"{where} is not a CIFAR-10 python batch: {len(images)} images, {len(labels)} labels in "
                          f"range [{labels.min() if len(labels) else '-'}, {labels.max() if len(labels) else '-'}]. "
                          f"{_HOW_TO_POINT}")
    return np.ascontiguousarray(images), labels


def _load_from_hub(repo_id: str, split: str) -> Cifar10Split:
    import datasets

    with loading("CIFAR-10 from", repo_id, _HOW_TO_POINT):
        ds = datasets.load_dataset(repo_id, split=split)
    image_col = "img" if "img" in ds.column_names else "image"
    if image_col not in ds.column_names or "label" not in ds.column_names:
        raise CifakeError(f"Hub dataset {repo_id!r} has columns {ds.column_names}, not CIFAR-10's img/label. "
                          f"{_HOW_TO_POINT}")
    ds = ds.with_format("numpy", columns=[image_col, "label"])
    images = np.stack([np.asarray(x, dtype=np.uint8) for x in ds[image_col]])
    if images.shape[1:] != (32, 32, 3):
        raise CifakeError(f"Hub dataset {repo_id!r} has images of shape {images.shape[1:]}, not 32x32 RGB.")
    return Cifar10Split(images, np.asarray(ds["label"], dtype=np.int64), f"hf://datasets/{repo_id}")
