"""`cifake predict`: a saved model's verdict on image files and folders, one line per image.

Every file below the given folders is tried (sorted, recursively, hidden files and folders left
out); what is not an image, or is damaged, is listed as skipped and the run goes on. Images of
any size go through the model's own image processor. The verdict uses the model's decision
threshold (`config.fake_threshold`, chosen on its validation split by `cifake train`) unless
one is given.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from cifake_kit.errors import CifakeError

from .inference import decision_threshold, fake_probability, load_model, open_image

CSV_COLUMNS = ["path", "verdict", "p_fake", "threshold"]


@dataclass
class Verdict:
    path: str
    verdict: str | None  # FAKE / REAL, or None when the file was skipped
    p_fake: float | None
    problem: str = ""


def image_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The files named, and every non-hidden file below the folders named, in sorted order."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, folders, files in os.walk(path):
                folders[:] = sorted(f for f in folders if not f.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        elif path.exists():
            yield path
        else:
            raise CifakeError(f"{str(given)!r} does not exist. Give image files or folders of images.")


def predict_files(paths: Iterable[str | Path], model, processor, threshold: float | None = None,
                  batch_size: int = 256) -> Iterator[Verdict]:
    """A Verdict for every file below `paths`, in order; unreadable files come back with their problem."""
    threshold = decision_threshold(model.config) if threshold is None else threshold
    labels = model.config.id2label
    fake, real = model.config.label2id.get("FAKE", 0), model.config.label2id.get("REAL", 1)
    device = next(model.parameters()).device
    batch: list[tuple[Path, object]] = []

    def run() -> Iterator[Verdict]:
        pixel_values = processor([image for _, image in batch], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            p_fake = fake_probability(model(pixel_values=pixel_values.to(device)).logits.cpu(), model.config)
        for (path, _), p in zip(batch, p_fake.tolist()):
            yield Verdict(str(path), labels[fake if p >= threshold else real], p)
        batch.clear()

    for path in image_files(paths):
        try:
            image, _ = open_image(path)
        except CifakeError as err:
            yield Verdict(str(path), None, None, str(err))
            continue
        batch.append((path, image))
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
    target = Path(csv_path).expanduser() if csv_path else None
    if target is not None:
        if target.is_dir():
            raise CifakeError(f"--csv {csv_path!r} is a folder. Give a file name, e.g. {str(target / 'predictions.csv')!r}.")
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
    counts = {"FAKE": 0, "REAL": 0, "skipped": 0}
    skipped = []
    rows = []
    for verdict in predict_files(paths, net, processor, threshold):
        if verdict.verdict is None:
            counts["skipped"] += 1
            skipped.append(verdict)
            continue
        counts[verdict.verdict] += 1
        out(f"{verdict.path}\t{verdict.verdict}\t{verdict.p_fake:.4f}")
        rows.append(verdict)
    total = counts["FAKE"] + counts["REAL"]
    note(f"{total} image(s): {counts['FAKE']} FAKE, {counts['REAL']} REAL (FAKE when P(FAKE) >= {used:.3g}; {source})")
    if skipped:
        note(f"skipped {len(skipped)} file(s) that are not readable images:")
        for verdict in skipped:
            note(f"  {verdict.path}: {verdict.problem}")
    if total == 0 and not skipped:
        raise CifakeError(f"No files found below {', '.join(map(repr, paths))}. Give image files or folders of images.")
    if target is not None:
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for verdict in rows:
                writer.writerow([verdict.path, verdict.verdict, f"{verdict.p_fake:.6f}", f"{used:.6g}"])
        tmp.replace(target)
        note(f"wrote {target}")
    return {**counts, "threshold": used}
