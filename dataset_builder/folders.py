"""Any folders of real and generated images -> an import plan (`cifake import-folder`).

Every image below each folder is taken, at any depth, by extension (JPEG, PNG, WebP, BMP, GIF;
written out, as datasets' imagefolder does); other files are listed and skipped. A REAL folder's
images are REAL; a FAKE folder's are FAKE and carry its generator's name as `generator_id`.
`cifar10_class` comes from a CIFAR-10 class name among a file's folders (the nearest), else null.

Splits: a source with `train/` or `test/` folders keeps them; the other sources' images are drawn
into test at `test_fraction`, stratified by label and generator and deterministic in `seed`.
Links are never followed: one that leaves its source is refused, one inside it is skipped (its
target is imported where it lies). Text files named README, LICENSE, MANIFEST, SOURCES... in a
source, or beside it when they name it, are carried into the dataset card as its attribution.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.schema import CIFAR10_CLASSES, FAKE, LABEL_NAMES, REAL, SPLITS

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
    counts: dict[str, Counter] = field(default_factory=dict)  # source name -> files per split
    attribution: list[tuple[str, str]] = field(default_factory=list)  # (file shown as, text)


def parse_sources(real: list[str], fake: list[str]) -> list[Source]:
    """The sources of an import, checked: folders that exist, named generators, no overlaps."""
    if not real or not fake:
        raise CifakeError("An import needs folders of both kinds: --real DIR [DIR ...] and --fake [NAME=]DIR [...].")
    specs = [(REAL, None, Path(spec).expanduser(), spec) for spec in real]
    specs += [(FAKE, *_parse_fake(spec), spec) for spec in fake]
    resolved = []
    for label, _, folder, spec in specs:
        if not folder.is_dir():
            raise CifakeError(f"{_KINDS[label]} {spec!r} is not a folder. Give folders that hold images (at any depth).")
        resolved.append(folder.resolve())
    for i in range(len(specs)):
        for j in range(i + 1, len(specs)):
            a, b = resolved[i], resolved[j]
            if a == b or a in b.parents or b in a.parents:
                how = "are the same folder" if a == b else "overlap (one is inside the other)"
                twice = "as REAL and as FAKE" if specs[i][0] != specs[j][0] else "twice"
                raise CifakeError(
                    f"{_KINDS[specs[i][0]]} {specs[i][3]!r} and {_KINDS[specs[j][0]]} {specs[j][3]!r} {how}: their "
                    f"images would be imported {twice}. Give separate folders."
                )
    sources, taken = [], Counter()
    for (label, generator, _, _), folder in zip(specs, resolved):
        base = folder.name or "root"
        taken[base] += 1
        name = base if taken[base] == 1 else f"{base}-{taken[base]}"
        sources.append(Source(label, folder, (generator or folder.name) if label == FAKE else None, name))
    return sources


def plan_folders(sources: list[Source], test_fraction: float = 0.2, seed: int = 0) -> FolderPlan:
    """Every image of every source, with its split, class and generator; nothing is read yet."""
    import numpy as np

    if not 0.0 <= test_fraction <= 1.0:
        raise CifakeError(f"--test-fraction must be between 0 and 1, got {test_fraction}.")
    plan = FolderPlan(sources, [])
    drawn: dict[tuple, list[int]] = {}  # (label, generator) -> positions in plan.files still to split
    for source in sources:
        own_splits = any((source.folder / split).is_dir() and not (source.folder / split).is_symlink() for split in SPLITS)
        plan.split_rule[source.name] = "its train/ and test/ folders" if own_splits else "drawn"
        plan.counts[source.name] = Counter()
        found = 0
        for relative in _walk(source, plan.problems):
            stored = f"{LABEL_NAMES[source.label]}/{source.name}/{relative.as_posix()}"
            split = None
            if own_splits:
                if relative.parts[0] not in SPLITS:
                    plan.problems.append((stored, "skipped: outside the source's train/ and test/ folders"))
                    continue
                split = relative.parts[0]
            found += 1
            if split is None:
                drawn.setdefault((source.label, source.generator_id), []).append(len(plan.files))
            plan.files.append(ImportFile(str(source.folder / relative), stored, split or "", source.label,
                                         _cifar10_class(relative, source.folder), source.generator_id))
        if not found:
            raise CifakeError(
                f"{_KINDS[source.label]} {str(source.folder)!r} holds no images below it (JPEG, PNG, WebP, BMP or GIF "
                f"files). Give the folder the images are in."
            )
        plan.attribution += [entry for entry in _attribution(source) if entry not in plan.attribution]
    for (label, generator), positions in drawn.items():
        key = int.from_bytes(hashlib.sha256(f"{label}:{generator}".encode()).digest()[:8], "big")
        order = np.random.default_rng([seed, key]).permutation(len(positions))
        test = {positions[i] for i in order[: int(len(positions) * test_fraction + 0.5)]}
        for position in positions:
            file = plan.files[position]
            plan.files[position] = ImportFile(file.path, file.relpath, "test" if position in test else "train",
                                              file.label, file.cifar10_class, file.generator_id)
    for file in plan.files:
        plan.counts[file.relpath.split("/")[1]][file.split] += 1
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
    """The path (relative to the source) of each image file below it; everything else goes to `problems`."""
    label = LABEL_NAMES[source.label]
    for folder, dirs, names in os.walk(source.folder):  # links to folders are listed, never entered
        here = Path(folder)
        for name in sorted(dirs):
            path = here / name
            shown = f"{label}/{source.name}/{path.relative_to(source.folder).as_posix()}/"
            if path.is_symlink():
                dirs.remove(name)
                problems.append((shown, _link_problem(path, source)))
            elif name.startswith("."):
                dirs.remove(name)
                problems.append((shown, "skipped: a hidden folder"))
        dirs.sort()
        for name in sorted(names):
            path = here / name
            relative = path.relative_to(source.folder)
            shown = f"{label}/{source.name}/{relative.as_posix()}"
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                problems.append((shown, _link_problem(path, source)))
            elif name.startswith("."):
                problems.append((shown, "skipped: a hidden file"))
            elif not stat.S_ISREG(info.st_mode):
                problems.append((shown, "skipped: not a regular file"))
            elif path.suffix.lower() not in IMAGE_EXTENSIONS:
                if here != source.folder or not _is_attribution(path):  # those are carried into the card instead
                    problems.append((shown, "skipped: not an image file (JPEG, PNG, WebP, BMP or GIF)"))
            else:
                yield relative


def _link_problem(path: Path, source: Source) -> str:
    if not path.resolve().is_relative_to(source.folder):
        return "refused: it links outside the source folder"
    return "skipped: a link inside the source (what it points to is imported where it lies)"


def _cifar10_class(relative: Path, root: Path) -> int | None:
    for part in [*reversed(relative.parts[:-1]), root.name]:
        if part.lower() in CIFAR10_CLASSES:
            return CIFAR10_CLASSES.index(part.lower())
    return None


def _is_attribution(path: Path) -> bool:
    return path.name.lower().startswith(_ATTRIBUTION_NAMES) and not path.is_symlink() and path.is_file()


def _attribution(source: Source) -> list[tuple[str, str]]:
    """Attribution texts in the source folder, and beside it when they name it."""
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
                found.append((f"{folder.name}/{path.name}", text))
    return found
