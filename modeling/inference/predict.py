"""`cifake predict`: a saved model's verdict on image files and folders, one line per image. What is not
an image, or is damaged, is listed as skipped and the run goes on. The verdict uses the model's decision
threshold (`config.fake_threshold`, chosen on its validation split) unless one is given.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cifake_kit.errors import CifakeError
from modeling.inference.core import (
    REDUCTION_CAVEAT,
    as_stored_for,
    decision_threshold,
    image_scores,
    is_reduced,
    likeliest_family,
    load_model,
    open_image,
    verdict_ids,
)

CSV_COLUMNS = ["path", "verdict", "p_fake", "threshold"]  # then, for a family head, one own_score_* column per family


@dataclass
class Verdict:
    path: str
    verdict: str | None  # FAKE / REAL, or None when the file was skipped
    p_fake: float | None
    problem: str = ""
    reduced: bool = False  # the picture was larger than the model's input and shrunk to it first
    family_scores: dict[str, float] = field(default_factory=dict)  # a family head's: family -> P(family | it or REAL)

    def most_like(self) -> str:
        """For a FAKE verdict of a family head, the family whose own score is highest, with it; else ""."""
        return likeliest_family(self.family_scores) if self.verdict == "FAKE" else ""


def own_score_column(family: str) -> str:
    """The CSV column of a family's own score: "Stable Diffusion" -> own_score_stable_diffusion."""
    return "own_score_" + "_".join(family.lower().replace("-", " ").split())


def image_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str | None]]:
    """(path, None) for the files named and every non-hidden file below the folders named, in sorted
    order; (path, why) for what is passed over: a folder that cannot be listed, or a link back to a
    folder already searched. Links to folders are followed (the user's own files), at any depth: the
    walk is a loop, not recursion, and remembers the folders it has been in."""
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            if not path.exists():
                raise CifakeError(f"{str(given)!r} does not exist. Give image files or folders of images.")
            yield path, None
            continue
        seen: set[tuple[int, int]] = set()
        todo = [path]
        while todo:
            folder = todo.pop()
            try:
                info = folder.stat()
                entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
            except OSError as err:
                yield folder, f"cannot list this folder ({err.strerror or err})"
                continue
            if (info.st_dev, info.st_ino) in seen:
                yield folder, "a link to a folder already searched: not searched again"
                continue
            seen.add((info.st_dev, info.st_ino))
            below = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():  # links to folders included
                    below.append(Path(entry.path))
                else:
                    yield Path(entry.path), None
            todo.extend(reversed(below))  # depth first, in sorted order


def predict_files(paths: Iterable[str | Path], model, processor, threshold: float | None = None,
                  batch_size: int = 256) -> Iterator[Verdict]:
    """A Verdict for every file below `paths`, in order; unreadable files come back with their problem."""
    batch: list[tuple[Path, object, bool]] = []

    def run() -> Iterator[Verdict]:
        p_fake, own = image_scores(model, processor, [image for _, image, _ in batch])
        families = getattr(model.config, "fake_families", None) or []
        own_rows = own.tolist() if own is not None else [[] for _ in batch]
        for (path, _, reduced), p, label, scores in zip(batch, p_fake.tolist(),
                                                         verdict_ids(p_fake, model.config, threshold).tolist(), own_rows):
            yield Verdict(str(path), model.config.id2label[label], p, reduced=reduced,
                          family_scores=dict(zip(families, scores)))
        batch.clear()

    for path, passed_over in image_files(paths):
        if passed_over:
            yield Verdict(str(path), None, None, passed_over)
            continue
        try:
            image = open_image(path)[0]
            reduced = is_reduced(model, image)
            image = as_stored_for(model, processor, image)
        except CifakeError as err:
            yield Verdict(str(path), None, None, str(err))
            continue
        batch.append((path, image, reduced))
        if len(batch) == batch_size:
            yield from run()
    if batch:
        yield from run()


def _to_stderr(line: str) -> None:
    sys.stdout.flush()  # the verdict lines first, also when stdout is a pipe
    print(line, file=sys.stderr, flush=True)


def predict_command(paths: list[str], model: str, csv_path: str | None = None, threshold: float | None = None,
                    overwrite: bool = False, out=print, note=None) -> dict:
    """What `cifake predict` does: a line per image to `out` (stdout), the summary and skipped files to
    `note` (stderr), the CSV on request; returns the counts."""
    note = note or _to_stderr
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise CifakeError(f"--threshold must be between 0 and 1 (exclusive): it is a cut-off on P(FAKE); got {threshold}.")
    # A link is written through, as the shell's `>` would: the file it points at gets the rows, the link stays.
    target = Path(csv_path).expanduser().resolve() if csv_path else None
    if overwrite and target is None:
        raise CifakeError("--overwrite replaces an existing --csv file, and no --csv was given: add --csv FILE, or drop "
                          "--overwrite.")
    if target is not None and target in {Path(p).expanduser().resolve() for p in paths}:
        raise CifakeError(f"--csv {csv_path!r} is one of the paths to classify: the CSV would replace it. Choose "
                          f"another name.")
    if target is not None:
        if target.is_dir():
            raise CifakeError(f"--csv {csv_path!r} is a folder. Give a file name, e.g. {str(target / 'predictions.csv')!r}.")
        if target.exists() and not target.is_file():
            raise CifakeError(f"--csv {csv_path!r} is not a regular file (a device, a pipe or a socket): the kit writes "
                              f"a CSV file whole, then puts it in place. Give the name of a file.")
        if target.exists() and not overwrite:
            raise CifakeError(f"--csv {csv_path!r} already exists. Pass --overwrite to replace it, or choose another name.")
        if not target.parent.is_dir():
            raise CifakeError(f"--csv {csv_path!r}: folder {str(target.parent)!r} does not exist. Create it first.")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:  # before the model loads
        raise CifakeError(f"{missing[0]!r} does not exist. Give image files or folders of images.")
    net, processor = load_model(model)
    used = decision_threshold(net.config) if threshold is None else threshold
    source = ("given with --threshold" if threshold is not None else
              "the model's, chosen on its validation split" if net.config.fake_threshold is not None else
              "0.5: the model stores no threshold")
    counts, skipped, rows = {"FAKE": 0, "REAL": 0}, [], []
    for verdict in predict_files(paths, net, processor, threshold):
        if verdict.verdict is None:
            skipped.append(verdict)
            continue
        counts[verdict.verdict] += 1
        out(f"{verdict.path}\t{verdict.verdict}\t{verdict.p_fake:.4f}" + (f"\t{like}" if (like := verdict.most_like()) else ""))
        rows.append(verdict)
    total = len(rows)
    if total == 0 and not skipped:
        raise CifakeError(f"No files found below {', '.join(map(repr, paths))}. Give image files or folders of images.")
    note(f"{total} image(s): {counts['FAKE']} FAKE, {counts['REAL']} REAL (FAKE when P(FAKE) >= {used:.3g}; {source})")
    if reduced := sum(verdict.reduced for verdict in rows):
        size = net.config.image_size
        note(f"{reduced} of them {'was' if reduced == 1 else 'were'} reduced to {size}x{size} first (a shorter side over "
             f"{size} pixels). {REDUCTION_CAVEAT}")
    families = getattr(net.config, "fake_families", None) or []
    if families and rows:
        note(f"The model tells {len(families)} generator families apart ({', '.join(families)}): a FAKE line names the one "
             f"whose own score, P(that family | that family or REAL), is highest" +
             ("; the CSV gives each family's." if target is not None else "; --csv FILE gives each family's."))
    if skipped:
        note(f"skipped {len(skipped)} path(s) that are not readable images:")
        for verdict in skipped:
            note(f"  {verdict.path}: {verdict.problem}")
    if target is not None and any(Path(verdict.path).resolve() == target for verdict in rows):
        raise CifakeError(f"--csv {csv_path!r} is one of the images just classified: the CSV would replace it. Choose "
                          f"another name; nothing was written.")
    if target is not None:
        # A new file of its own (never one that is there already, a link included), then one rename.
        with tempfile.NamedTemporaryFile("w", newline="", dir=target.parent, prefix=f".{target.name}.", suffix=".tmp",
                                         delete=False) as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS + [own_score_column(family) for family in families])
            for verdict in rows:
                writer.writerow([verdict.path, verdict.verdict, f"{verdict.p_fake:.6f}", f"{used:.6g}"]
                                + [f"{verdict.family_scores[family]:.6f}" for family in families])
        os.chmod(handle.name, 0o666 & ~_umask())
        os.replace(handle.name, target)
        note(f"wrote {csv_path}")
    return {**counts, "skipped": len(skipped), "threshold": used, "reduced": reduced}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
