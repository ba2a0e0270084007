"""Image files into the dataset: each read once, checked, encoded, in parallel, resumable.

kaggle.py and folders.py plan `ImportFile`s. Workers take chunks of them: each file, opened without following
links, must be a regular file under a size bound that decodes whole in an allowed format; its bytes are kept or
re-encoded (`Encoding`) and written per chunk and split in the dataset's schema to a `ShardStore`, so a killed
import resumes after its last recorded chunk. export.py streams the chunks into the dataset folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import NamedTuple

from PIL import Image, UnidentifiedImageError

from cifake_kit.schema import IMAGE_SIZE, LABEL_NAMES, MAX_IMAGE_FILE_BYTES, SPLITS

from .features import cifake_features
from .imaging import codec_signature, encode_image, encoder_signature, fit, is_cifake_jpeg

CHUNK = 1024  # files per task, and per resumable piece
_BAR_FROM = 5000  # files: smaller imports finish before a bar would say anything


class ImportFile(NamedTuple):  # a tuple: 120,000 of them are made and sent to workers per import
    path: str  # the file to read: a plain file, links already resolved or refused by the planner
    relpath: str  # stored as the image's path in the dataset
    split: str
    label: int  # FAKE=0, REAL=1
    cifar10_class: int | None = None
    generator_id: str | None = None
    root: str | None = None  # the source folder, resolved: the file read must lie inside it


@dataclass(frozen=True)
class Encoding:
    """What becomes of a file's bytes. `keep`: stored as they are. `cifake-jpeg`: 32x32 JPEGs with CIFAKE's exact
    tables kept (no second compression), all else brought to 32x32 (`imaging.fit`) as the kit's quality-75 JPEG.
    `png`: brought to 32x32, lossless PNG. `formats`: what PIL may decode. `size`: if set, other sizes are skipped.
    """

    policy: str = "cifake-jpeg"
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
    size: int | None = None


@dataclass
class ImportStats:
    rows: dict = field(default_factory=dict)  # split -> {label name: count}
    kept: int = 0  # files stored byte for byte
    encoded: int = 0  # files re-encoded by the kit's encoder
    resized: int = 0  # of those, files that were not 32x32
    problems: list = field(default_factory=list)  # (relpath, why)
    codecs: dict = field(default_factory=dict)  # label name -> Counter of codec signatures as stored
    resumed: int = 0  # files done by an earlier, interrupted run
    done: dict = field(default_factory=dict)  # the store's entries of this import's chunks, by number


def plan_digest(files: list[ImportFile]) -> str:
    """A fingerprint of what goes where, which a resumed import must match (`run_import` checks the files)."""
    digest = hashlib.sha256()
    for file in files:
        fields = (file.relpath, file.split, file.label, file.cifar10_class, file.generator_id)
        digest.update(("\t".join(map(str, fields)) + "\n").encode())
    return digest.hexdigest()


def run_import(files: list[ImportFile], encoding: Encoding, store, workers: int | None = None) -> ImportStats:
    """Import every planned file not yet in `store`; return the counts of the whole import."""
    from tqdm.auto import tqdm

    chunks = [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    done = store.completed()
    for n in list(done):  # resuming: a chunk counts only if its files are still the ones it imported
        recorded = [tuple(stat) if stat else None for stat in done[n]["stats"]]
        if n >= len(chunks) or [_file_stat(file.path) for file in chunks[n]] != recorded:
            del done[n]
    todo = [n for n in range(len(chunks)) if n not in done]
    workers = max(1, min(workers or len(os.sched_getaffinity(0)), len(todo) or 1))
    resumed = sum(len(chunks[n]) for n in done)
    with tqdm(total=len(files), initial=resumed, desc="Importing images", unit="img",
              disable=len(files) < _BAR_FROM) as bar:
        with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            mapper = pool.map if pool else map
            # Workers write each chunk's files themselves; here they are only recorded, in order.
            results = mapper(_process_chunk, [chunks[n] for n in todo], [encoding] * len(todo),
                             [store] * len(todo), todo)
            for n, (written, info) in zip(todo, results):
                done[n] = store.record(n, written, **info)
                bar.update(len(chunks[n]))
    entries = [done[n] for n in range(len(chunks))]
    stats = ImportStats(resumed=resumed, done=done, problems=[tuple(p) for e in entries for p in e["problems"]],
                        **{key: sum(entry[key] for entry in entries) for key in ("kept", "encoded", "resized")})
    for entry in entries:
        for total, counts in ((stats.rows, entry["rows"]), (stats.codecs, entry["codecs"])):  # {key: {name: n}}
            for key, counter in counts.items():
                total.setdefault(key, Counter()).update(counter)
    stats.rows = {split: {name: stats.rows[split][name] for name in LABEL_NAMES} for split in SPLITS
                  if split in stats.rows}
    return stats


def read_file(path: str, limit: int = MAX_IMAGE_FILE_BYTES, inside: str | None = None) -> tuple[bytes, tuple[int, int]]:
    """(bytes, (size, mtime in ns)) of a regular file, read once through a descriptor that follows no link.

    OSError for a link, a device, a folder, or a file outside `inside` (a parent folder swapped for a link
    after the plan); ValueError over `limit` bytes, unread. The checks are on the open descriptor: what is
    checked is what is read.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if inside is not None and not _opened_inside(descriptor, inside):
            raise OSError(0, "it lies outside the source folder: a folder on its way became a link")
        if info.st_size > limit:
            raise ValueError(f"{info.st_size:,} bytes, larger than any image the kit reads (at most {limit >> 20} MB); "
                             f"not read")
        blocks, left = [], info.st_size + 1  # one byte more: a file that grew since is still read whole
        while left > 0 and (block := os.read(descriptor, left)):
            blocks.append(block)
            left -= len(block)
        return b"".join(blocks), (info.st_size, info.st_mtime_ns)
    finally:
        os.close(descriptor)


def _opened_inside(descriptor: int, folder: str) -> bool:
    """Whether the file open at `descriptor` lies inside `folder` (resolved); True without /proc."""
    try:
        where = os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:
        return True
    return where == folder or where.startswith(folder.rstrip("/") + "/")


def _process_chunk(files: list[ImportFile], encoding: Encoding, store, piece: int) -> tuple[dict, dict]:
    """One chunk, in a worker: its rows written to `store` (a file per split, in the dataset's
    schema) but not recorded yet; returns (the files written, the chunk's counts)."""
    import pyarrow as pa

    info = {"kept": 0, "encoded": 0, "resized": 0, "problems": [], "stats": []}
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is a bad file, not a warning
        rows = [row for file in files if (row := _import_one(file, encoding, info)) is not None]
    by_split, info["rows"], info["codecs"] = {}, {}, {}
    for file, data, signature in rows:
        # An imported file's only provenance is its generator's name: the other columns are null.
        by_split.setdefault(file.split, []).append({"image": {"bytes": data, "path": file.relpath}, "label": file.label,
                                                    "cifar10_class": file.cifar10_class,
                                                    "generator_id": file.generator_id})
        info["rows"].setdefault(file.split, Counter())[LABEL_NAMES[file.label]] += 1
        info["codecs"].setdefault(LABEL_NAMES[file.label], Counter())[signature] += 1
    tables = {split: pa.Table.from_pylist(mine, schema=cifake_features().arrow_schema)
              for split, mine in by_split.items()}
    return store.write_files(piece, tables), info


def _import_one(file: ImportFile, encoding: Encoding, info: dict):
    """(file, bytes to store, codec signature) of one file; or None, noting in `info` why it was skipped."""
    try:
        data, stats = read_file(file.path, inside=file.root)
    except OSError as err:
        info["stats"].append(None)
        info["problems"].append((file.relpath, f"skipped: cannot read it ({err.strerror or err})"))
        return None
    except ValueError as err:  # larger than any image here: not read at all
        info["stats"].append(_file_stat(file.path))
        info["problems"].append((file.relpath, f"skipped: {err}"))
        return None
    info["stats"].append(stats)
    try:
        data, how, size, signature = _encode(data, encoding)
    except ValueError as err:
        info["problems"].append((file.relpath, f"skipped: {err}"))
        return None
    info[how] += 1
    if how == "encoded" and size != (IMAGE_SIZE, IMAGE_SIZE):
        info["resized"] += 1
    return file, data, signature


def _file_stat(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def _encode(data: bytes, encoding: Encoding) -> tuple[bytes, str, tuple[int, int], str]:
    """(bytes to store, "kept" or "encoded", the image's size, the stored codec signature); ValueError for
    anything but a whole image of the allowed formats and size."""
    try:  # (the caller turns DecompressionBombWarning into an error)
        with Image.open(io.BytesIO(data), formats=encoding.formats) as image:
            image.load()  # the whole file decodes, not only its header
            size = image.size
            keep = encoding.policy == "keep" or (encoding.policy == "cifake-jpeg" and is_cifake_jpeg(image))
            pixels, signature = (None, codec_signature(image)) if keep else (fit(image), None)
    except UnidentifiedImageError as err:  # its message names the in-memory buffer, not the file
        raise ValueError(f"unreadable image (not {', '.join(encoding.formats)} data)") from err
    except Exception as err:  # PIL raises many types for bad data; all mean "unreadable"
        raise ValueError(f"unreadable image ({type(err).__name__}: {err})") from err
    if encoding.size is not None and size != (encoding.size, encoding.size):
        raise ValueError(f"image is {size[0]}x{size[1]}, not {encoding.size}x{encoding.size}")
    if keep:
        return data, "kept", size, signature
    image_format = "png" if encoding.policy == "png" else "jpeg"
    return encode_image(pixels, image_format), "encoded", size, encoder_signature(image_format)
