"""The dataset's entry points: build CIFAKE from its parts, or import images that exist already.

`build_dataset` generates the FAKE half (resumable), then `CifakeBuilder` encodes both halves.
`import_kaggle` (the published release) and `import_folders` (any folders of real and generated
images) plan the files, then importing.py reads each once, in parallel and resumably. All of them
check the output folder first and end the same way: the folder that `load_dataset` opens, with
its card, swapped in whole.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.options import COUNT, SEEDS
from cifake_kit.outputs import FolderLock, require_same_settings, settings_changes
from cifake_kit.runtime import process_state
from cifake_kit.schema import DEMO_GENERATOR_ID, LABEL_NAMES, SPLITS

from . import licences
from .builder import CifakeBuilder
from .cards import build_section, card_metadata, folders_section, kaggle_section, licence_lines, render_card, top_codecs
from .cifar10 import load_cifar10
from .export import WORK_DIR, beside, prepare_output, unfinished_job, write_dataset_folder, write_parquet_folder
from .features import FULL_PER_CLASS, IMAGE_FORMATS, IMPORT_ENCODINGS
from .folders import parse_sources, plan_folders
from .generate import DEFAULT_GENERATOR, FakeStore, GenerationSettings, generate_fakes, generator_id, plan_fakes
from .importing import Encoding, imported_files, plan_digest, run_import
from .kaggle import KAGGLE_ENCODING, scan_kaggle
from .memory import check_generation_fits
from .shards import ShardStore

# `--cifar10 bundled-sample`: 60 CIFAR-10 photos in the python format, shipped with the kit.
SAMPLE_CIFAR10 = "bundled-sample"
_SAMPLE_ARCHIVE = "cifar10-sample.tar.gz"


@dataclass
class BuildReport:
    output_dir: Path
    counts: dict  # split -> {"FAKE": n, "REAL": n}
    generated: int = 0
    resumed: int = 0
    blank_regenerations: int = 0
    problems: list = field(default_factory=list)  # (path, why): files an import skipped
    notes: list = field(default_factory=list)  # warnings worth a line on the console and in the card
    sources: list = field(default_factory=list)  # import-folder: (label, source name, generator_id, {split: n})


def build_dataset(
    output_dir: str | Path = "cifake",
    cifar10: str | None = None,
    generator: str = DEFAULT_GENERATOR,
    per_class: int = FULL_PER_CLASS["train"],
    test_per_class: int | None = None,
    num_inference_steps: int = 50,
    guidance_scale: float = 7.5,
    batch_size: int = 8,
    seed: int = 0,
    image_format: str = "jpeg",
    resolution: int | None = None,
    shard_size: int = 256,
    overwrite: bool = False,
    pipe=None,
) -> BuildReport | None:
    """Build CIFAKE into `output_dir`: CIFAR-10 photos as REAL, images from `generator` as FAKE.

    Defaults give the paper's full dataset (5,000/1,000 images per class and label for
    train/test). `test_per_class` defaults to a fifth of `per_class`, the paper's ratio. Rerun the
    same call after an interruption to resume. Under `accelerate launch`, every process generates
    its share and the main one writes the folder (the others return None).
    """
    counts = {"train": per_class, "test": max(1, per_class // 5) if test_per_class is None else test_per_class}
    _check_counts(counts)
    _check_choice("image format", image_format, IMAGE_FORMATS)
    for name, value in [("--batch-size", batch_size), ("--steps", num_inference_steps), ("--shard-size", shard_size)]:
        COUNT.check(name, value)
    SEEDS.check("--seed", seed)
    if resolution is not None and (resolution < 8 or resolution % 8):
        raise CifakeError(f"--resolution must be a multiple of 8 of at least 8 (the pipelines' latent grid), got "
                          f"{resolution}. Leave it out for the pipeline's own size (512 for SD v1.4).")
    if not math.isfinite(guidance_scale) or guidance_scale < 0:
        raise CifakeError(f"--guidance must be a number of at least 0 (1 or less turns guidance off), got "
                          f"{guidance_scale}. The paper's generator used 7.5.")
    cifar10 = _resolve_cifar10(cifar10)
    settings = GenerationSettings(generator, num_inference_steps, guidance_scale, seed, resolution, batch_size, shard_size)

    state = process_state()
    out = Path(output_dir)
    # Every process checks; only the main one writes. Nothing is written before the inputs are checked.
    _check_real_counts(cifar10, counts)
    check_generation_fits(settings, pipe, state.device)  # from the generator's configs, before anything is loaded
    identity = {"cifar10": str(cifar10), "counts": counts, "image_format": image_format, **settings.identity()}
    with _job(out, overwrite, "build", identity, state) as work:
        plan = plan_fakes(counts)
        stats = generate_fakes(plan, settings, FakeStore(work / "fakes", rank=state.process_index), pipe=pipe, state=state)
        if not state.is_main_process:
            return None
        generation = {
            "generator_id": generator_id(generator),
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
        }
        report = BuildReport(out, {s: {"FAKE": 10 * n, "REAL": 10 * n} for s, n in counts.items()}, **stats)
        fake = licences.of_generator(generation["generator_id"], DEMO_GENERATOR_ID, generator)
        parts = [("REAL, CIFAR-10 photos", licences.CIFAR10), (f"FAKE, output of `{generation['generator_id']}`", fake)]
        section = build_section(report, cifar10, generation, settings, image_format) + licence_lines(parts)
        _run_builder(out, work, section, card_metadata(parts, from_cifar10=True), cifar10=str(cifar10),
                     per_class=counts, fakes_dir=str(work / "fakes"), generation=generation, image_format=image_format)
    return report


def import_kaggle(source: str | Path, output_dir: str | Path = "cifake", overwrite: bool = False,
                  workers: int | None = None) -> BuildReport:
    """Convert the published CIFAKE folders (train|test / REAL|FAKE) into the dataset folder.

    The original JPEG bytes are kept. Unreadable files and links leaving `source` are skipped and
    listed in the report's `problems`; everything else is imported. Rerun to resume.
    """
    scan = scan_kaggle(source)  # a wrong layout fails before the output is touched
    settings = {"source": str(scan.root), "plan": plan_digest(scan.files)}
    with _job(Path(output_dir), overwrite, "import-kaggle", settings) as work:
        report, stats, store = _import(Path(output_dir), work, scan.files, KAGGLE_ENCODING, workers, same_encoder=(
            "import-kaggle keeps the release's bytes; to store both halves with one encoder, import its folders with "
            "`cifake import-folder --real SRC/train/REAL SRC/test/REAL --fake SRC/train/FAKE SRC/test/FAKE`, which draws "
            "its own test split."))
        report.problems = sorted(scan.problems + report.problems)
        parts = [("both halves, as the release on Kaggle states", licences.CIFAKE_RELEASE)]
        _export_import(store, stats, report.output_dir, kaggle_section(report) + licence_lines(parts), work,
                       card_metadata(parts, from_cifar10=True))
    return report


def import_folders(
    real: list[str | Path],
    fake: list[str],
    output_dir: str | Path = "cifake",
    test_fraction: float = 0.2,
    seed: int = 0,
    encoder: str = "cifake-jpeg",
    overwrite: bool = False,
    workers: int | None = None,
    intro: str = "",
    source_datasets: list[str] | None = None,
) -> BuildReport:
    """Import folders of real photos (`real`) and generated images (`fake`: "NAME=DIR" or "DIR").

    Every image below each folder is taken; `NAME` (or the folder's name) becomes the FAKE rows'
    `generator_id`. Splits come from the sources' train/ and test/ folders, or are drawn at
    `test_fraction` per label and generator, deterministic in `seed`. `encoder`: "cifake-jpeg"
    (the default: one encoder for both halves, CIFAKE's own JPEGs kept as they are), "png" or
    "keep" (every file's bytes as they are; a note says when the halves' encoders differ).
    `intro`: a paragraph for the card; `source_datasets`: Hub ids for its `source_datasets` (e.g.
    "extended|cifar10"), when the photos are known to come from one. The card's licence is read from
    the README / LICENSE / SOURCES texts found in or beside each source. Rerun to resume.
    """
    _check_choice("encoder", encoder, IMPORT_ENCODINGS)
    plan = plan_folders(parse_sources([str(r) for r in real], [str(f) for f in fake]), test_fraction, seed)
    settings = {"sources": [[s.label, str(s.folder), s.generator_id] for s in plan.sources],
                "test_fraction": test_fraction, "seed": seed, "encoder": encoder,
                "plan": plan_digest(plan.files)}
    with _job(Path(output_dir), overwrite, "import-folder", settings) as work:
        report, stats, store = _import(Path(output_dir), work, plan.files, Encoding(policy=encoder), workers)
        report.problems = sorted(plan.problems + report.problems)
        skipped = {path for path, _ in report.problems}
        per_source = {}
        for file in plan.files:
            if file.relpath not in skipped:
                per_source.setdefault(file.relpath.split("/")[1], Counter())[file.split] += 1
        report.sources = [(LABEL_NAMES[s.label], s.name, s.generator_id,
                           {split: per_source[s.name][split] for split in SPLITS if per_source.get(s.name, {}).get(split)})
                          for s in plan.sources]
        parts = [(f"{LABEL_NAMES[s.label]} `{s.name}`", plan.licences[s.name]) for s in plan.sources]
        section = folders_section(report, plan, stats, encoder, test_fraction, seed, intro) + licence_lines(parts)
        metadata = {"license": licences.card_value(parts),
                    **({"source_datasets": source_datasets} if source_datasets else {})}
        _export_import(store, stats, report.output_dir, section, work, metadata)
    return report


def sample_archive() -> Path:
    """The bundled CIFAR-10-format sample behind `cifake build --demo` (see its README)."""
    return Path(str(resources.files("dataset_builder") / "data" / _SAMPLE_ARCHIVE))


@contextmanager
def _job(out: Path, overwrite: bool, job: str, settings: dict, state=None):
    """The work folder of `out` for `job` (a command's name) with `settings`, checked by the main process.

    An unfinished run of the same job with the same settings is resumed, also under --overwrite
    (which replaces the finished dataset only at the end). With other settings it is refused, or
    discarded under --overwrite, saying so. An unfinished run of another command is never
    discarded: it is refused, saying how to resume or discard it.
    """
    created = not out.exists()
    lock = FolderLock()  # held until the job ends: a second build or import into `out` is refused meanwhile
    try:
        if state is None or state.is_main_process:
            lock.hold(out, make=True)
            lock.hold(beside(out))
            work = prepare_output(out, overwrite)
            record = work / "settings.json"
            previous = unfinished_job(work)
            if previous is not None and previous != job:
                raise CifakeError(
                    f"{str(out)!r} holds an unfinished `cifake {previous}`; nothing was changed. Run that command again "
                    f"to resume it, or delete {str(work)!r} to discard it, then run this one."
                )
            if overwrite and settings_changes(record, {"job": job, **settings}):
                print(f"Discarding the unfinished {job} in {str(out)!r}: it had other settings (--overwrite).")
                shutil.rmtree(work)
                work.mkdir()
            require_same_settings(record, {"job": job, **settings}, what=f"an unfinished {job}", where=out)
        if state is not None:
            state.wait_for_everyone()
        try:
            yield out / WORK_DIR
        except BaseException:
            if state is None or state.is_main_process:
                _drop_if_empty(out, created)
            raise
    finally:
        lock.release()


def _drop_if_empty(out: Path, created: bool) -> None:
    """After a failure: remove the work folder if it holds nothing a rerun could resume, and `out` if
    this run created it and it is empty again. A failed first attempt leaves no trace."""
    work = out / WORK_DIR
    if work.is_dir() and not any(manifest.stat().st_size for manifest in work.glob("*/manifest-*.jsonl")):
        shutil.rmtree(work, ignore_errors=True)
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _import(out: Path, work: Path, files, encoding, workers, same_encoder: str = (
        "The default --encoder cifake-jpeg (or png) stores both one way.")):
    """Run a planned import into the work folder: (report, stats, the chunk store)."""
    store = ShardStore(work / "imported", durable=False)  # a chunk is a second's work: redone, not fsynced
    stats = run_import(files, encoding, store, workers)
    if not stats.rows:
        first = "; ".join(f"{path}: {why}" for path, why in stats.problems[:3])
        raise CifakeError(f"No file could be imported ({len(stats.problems)} skipped; first: {first}). Check the "
                          f"source folders: they need whole images.")
    report = BuildReport(out, stats.rows, resumed=stats.resumed, problems=list(stats.problems))
    for split, counts in stats.rows.items():
        (missing, *_), held = [name for name in LABEL_NAMES if not counts[name]] or [None], [
            f"{counts[name]:,} {name}" for name in LABEL_NAMES if counts[name]]
        if missing:
            use = ("no model can be trained on it" if split == "train" else
                   "scores on it cannot compare REAL and FAKE (no accuracy or ROC AUC)")
            report.notes.append(f"The {split} split holds no {missing} images ({', '.join(held)}): {use}. Import more "
                                f"{missing} images, or change --test-fraction.")
    real, fake = (set(stats.codecs.get(label, {})) for label in LABEL_NAMES[::-1])
    if real and fake and real != fake:
        report.notes.append(
            "The two halves are stored with different encoders (REAL: " + top_codecs(stats.codecs["REAL"]) + "; FAKE: "
            + top_codecs(stats.codecs["FAKE"]) + "): a detector can tell them apart by codec alone. " + same_encoder
        )
    return report, stats, store


def _run_builder(out: Path, work: Path, section: str, metadata: dict, **config) -> None:
    builder = CifakeBuilder(cache_dir=str(work / "cache"), **config)
    builder.download_and_prepare(download_mode="force_redownload")
    _export(builder.as_dataset(), out, section, work, metadata)


def _export(dataset_dict, out: Path, section: str, work: Path, metadata: dict) -> None:
    card = render_card(dataset_dict, section, metadata)
    write_dataset_folder(dataset_dict, out, card, work)
    del dataset_dict  # release the memory-mapped cache before removing it
    shutil.rmtree(work, ignore_errors=True)


def _export_import(store, stats, out: Path, section: str, work: Path, metadata: dict) -> None:
    write_parquet_folder(imported_files(store, stats.done), out, section, work, read=store.read, metadata=metadata)
    shutil.rmtree(work, ignore_errors=True)


def _check_counts(counts: dict) -> None:
    for split, n in counts.items():
        flag = "--per-class" if split == "train" else "--test-per-class"
        if n < 1:
            raise CifakeError(f"{flag} must be at least 1, got {n}.")
        if n > FULL_PER_CLASS[split]:
            raise CifakeError(
                f"{flag} {n} is more than CIFAR-10 has: at most {FULL_PER_CLASS[split]} {split} "
                f"images per class."
            )


def _check_real_counts(cifar10, counts: dict) -> None:
    for split in SPLITS:
        load_cifar10(cifar10, split).first_per_class(counts[split])


def _check_choice(what: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise CifakeError(f"Unknown {what} {value!r}. Use one of: {', '.join(allowed)}.")


def _resolve_cifar10(cifar10):
    return sample_archive() if cifar10 == SAMPLE_CIFAR10 else cifar10


