"""Any folders of real and generated images -> an import plan (`cifake import-folder`).

Every image file below each folder is taken, at any depth, by extension; other files are listed and skipped.
FAKE rows carry their generator's name as `generator_id`; `cifar10_class` is the nearest CIFAR-10 class name
among a file's folders, else null. A source with `train/` or `test/` folders keeps them; the others are drawn
into test at `test_fraction` per label and generator, deterministic in `seed`. Links are never followed (one
leaving its source is refused). README, LICENSE, SOURCES... texts in a source, or beside it naming it, are
carried into the card.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from cifake_kit.errors import CifakeError
from cifake_kit.options import SEEDS, Range
from cifake_kit.schema import CIFAR10_CLASSES, FAKE, LABEL_NAMES, REAL, SPLITS

from . import licences
from .importing import ImportFile

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
_ATTRIBUTION_NAMES = ("readme", "license", "licence", "copying", "notice", "manifest", "sources", "attribution")
_ATTRIBUTION_BYTES = 16_384  # per file carried into the card
_KINDS = {REAL: "--real", FAKE: "--fake"}


@dataclass(frozen=True)
class Source:
    label: int  # FAKE or REAL
    folder: Path
    generator_id: str | None  # FAKE: the name given, or the folder's; REAL: None
    name: str  # short and unique among the sources: the first part of the stored paths


@dataclass
class FolderPlan:
    sources: list[Source]
    files: list[ImportFile]
    problems: list[tuple[str, str]] = field(default_factory=list)
    split_rule: dict[str, str] = field(default_factory=dict)  # source name -> "its train/ and test/ folders" | "drawn"
    attribution: list[tuple[str, str]] = field(default_factory=list)  # (file shown as, text)
    licences: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source name -> licence ids in its texts


def parse_sources(real: list[str], fake: list[str]) -> list[Source]:
    """The sources of an import, checked: folders that exist, named generators, no overlaps."""
    if not real or not fake:
        raise CifakeError("An import needs folders of both kinds: --real DIR [DIR ...] and --fake [NAME=]DIR [...].")
    specs = [(REAL, None, Path(spec).expanduser(), spec) for spec in real]
    specs += [(FAKE, *_parse_fake(spec), spec) for spec in fake]
    for label, _, folder, spec in specs:
        if not folder.is_dir():
            raise CifakeError(f"{_KINDS[label]} {spec!r} is not a folder. Give folders that hold images (at any "
                              f"depth).")
    resolved = [folder.resolve() for _, _, folder, _ in specs]
    for (i, a), (j, b) in combinations(enumerate(resolved), 2):
        if a == b or a in b.parents or b in a.parents:
            how = "are the same folder" if a == b else "overlap (one is inside the other)"
            twice = "as REAL and as FAKE" if specs[i][0] != specs[j][0] else "twice"
            raise CifakeError(f"{_KINDS[specs[i][0]]} {specs[i][3]!r} and {_KINDS[specs[j][0]]} {specs[j][3]!r} {how}: "
                              f"their images would be imported {twice}. Give separate folders.")
    for (label, generator, _, spec), folder in zip(specs, resolved):
        if not (_is_utf8(folder.name) and _is_utf8(generator or "")):
            raise CifakeError(f"{_KINDS[label]} {spec!r} is named in bytes that are not UTF-8; the dataset records "
                              f"source and generator names as text. Rename it (e.g. with convmv).")
    sources, taken = [], Counter()
    for (label, generator, _, _), folder in zip(specs, resolved):
        base = folder.name or "root"
        taken[base] += 1
        name = base if taken[base] == 1 else f"{base}-{taken[base]}"
        sources.append(Source(label, folder, (generator or folder.name) if label == FAKE else None, name))
    return sources


def plan_folders(sources: list[Source], test_fraction: float = 0.2, seed: int = 0) -> FolderPlan:
    """Every image of every source, with its split, class and generator; nothing is read yet."""
    test_fraction = Range(0, 1).check("--test-fraction", test_fraction)
    seed = SEEDS.check("--seed", seed)
    plan = FolderPlan(sources, [])
    drawn: dict[tuple, list[int]] = {}  # (label, generator) -> positions in plan.files still to split
    for source in sources:
        own_splits = any((source.folder / s).is_dir() and not (source.folder / s).is_symlink() for s in SPLITS)
        plan.split_rule[source.name] = "its train/ and test/ folders" if own_splits else "drawn"
        found = 0
        prefix = f"{LABEL_NAMES[source.label]}/{source.name}/"
        inside = str(source.folder)  # resolved by parse_sources
        for relative, path in _walk(source, plan.problems):
            parts = relative.split("/")
            split = None
            if own_splits:
                if parts[0] not in SPLITS:
                    plan.problems.append((prefix + relative, "skipped: outside the source's train/ and test/ folders"))
                    continue
                split = parts[0]
            found += 1
            if split is None:
                drawn.setdefault((source.label, source.generator_id), []).append(len(plan.files))
            plan.files.append(ImportFile(path, prefix + relative, split or "", source.label,
                                         _cifar10_class(parts, source.folder.name), source.generator_id, inside))
        if not found:
            raise CifakeError(f"{_KINDS[source.label]} {str(source.folder)!r} holds no images below it (JPEG, PNG, "
                              "WebP, BMP or GIF files). Give the folder the images are in.")
        texts = _attribution(source)
        plan.attribution += [(shown, text) for shown, text, _ in texts if (shown, text) not in plan.attribution]
        plan.licences[source.name] = licences.of_source([(shown, inside, text) for shown, text, inside in texts],
                                                        source.folder.name)
    for (label, generator), positions in drawn.items():
        key = int.from_bytes(hashlib.sha256(f"{label}:{generator}".encode()).digest()[:8], "big")
        order = np.random.default_rng([seed, key]).permutation(len(positions))
        test = {positions[i] for i in order[: int(len(positions) * test_fraction + 0.5)]}
        for position in positions:
            plan.files[position] = plan.files[position]._replace(split="test" if position in test else "train")
    return plan


def _parse_fake(spec: str) -> tuple[str | None, Path]:
    """(generator name or None, folder) of `NAME=DIR` or `DIR`."""
    if "=" not in spec or Path(spec).expanduser().is_dir():
        return None, Path(spec).expanduser()
    name, _, folder = spec.partition("=")
    if not name.strip():
        raise CifakeError(f"--fake {spec!r} has an empty generator name. Write NAME=DIR, or DIR alone to name the "
                          f"generator after its folder.")
    if not folder:
        raise CifakeError(f"--fake {spec!r} names no folder. Write NAME=DIR.")
    return name.strip(), Path(folder).expanduser()


def _walk(source: Source, problems: list):
    """(path relative to the source, full path) of each image file below it, in name order; all else goes to
    `problems`. Links are never followed."""
    prefix = f"{LABEL_NAMES[source.label]}/{source.name}/"
    pending = [("", str(source.folder))]
    while pending:
        relative_folder, folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as err:  # a folder that cannot be listed is skipped like a file that cannot be read
            problems.append((prefix + relative_folder, f"skipped: cannot list this folder ({err.strerror})"))
            continue
        below = []
        for entry in entries:
            relative = relative_folder + entry.name
            if not _is_utf8(entry.name):
                shown = os.fsencode(prefix + relative).decode("utf-8", "backslashreplace")
                problems.append((shown, "skipped: its name is not UTF-8, which the dataset stores names as "
                                        "(rename it)"))
            elif entry.is_symlink():
                shown = prefix + relative + ("/" if entry.is_dir() else "")
                problems.append((shown, _link_problem(entry.path, source)))
            elif entry.name.startswith("."):
                kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
                problems.append((prefix + relative + "/" * (kind == "folder"), f"skipped: a hidden {kind}"))
            elif entry.is_dir(follow_symlinks=False):
                below.append((relative + "/", entry.path))
            elif not entry.is_file(follow_symlinks=False):
                problems.append((prefix + relative, "skipped: not a regular file"))
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                yield relative, entry.path
            elif relative_folder or not _is_attribution(Path(entry.path)):  # those are carried into the card instead
                problems.append((prefix + relative, "skipped: not an image file (JPEG, PNG, WebP, BMP or GIF)"))
        pending += reversed(below)  # depth first, folders in name order


def _is_utf8(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _link_problem(path: str, source: Source) -> str:
    if not Path(path).resolve().is_relative_to(source.folder):
        return "refused: it links outside the source folder"
    return "skipped: a link inside the source (what it points to is imported where it lies)"


def _cifar10_class(parts: list[str], root_name: str) -> int | None:
    for part in [*reversed(parts[:-1]), root_name]:
        if part.lower() in CIFAR10_CLASSES:
            return CIFAR10_CLASSES.index(part.lower())
    return None


def _is_attribution(path: Path) -> bool:
    return path.name.lower().startswith(_ATTRIBUTION_NAMES) and not path.is_symlink() and path.is_file()


def _attribution(source: Source) -> list[tuple[str, str, bool]]:
    """Attribution texts in the source folder, and beside it when they name it: (shown as, text, inside)."""
    found = []
    for folder, inside in ((source.folder, True), (source.folder.parent, False)):
        for path in sorted(folder.iterdir()):
            if not _is_attribution(path):
                continue
            with open(path, "rb") as handle:
                data = handle.read(_ATTRIBUTION_BYTES + 1)
            text = data[:_ATTRIBUTION_BYTES].decode("utf-8", errors="replace").strip()
            if len(data) > _ATTRIBUTION_BYTES:
                text += f"\n[... cut at {_ATTRIBUTION_BYTES:,} bytes; the whole file is {path.name} beside the images]"
            if text and (inside or source.folder.name in text):
                found.append((f"{folder.name}/{path.name}", text, inside))
    return found
