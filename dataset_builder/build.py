"""The dataset's entry points: `build_dataset` (generate the FAKE half, then builder.py encodes both),
`import_kaggle` and `import_folders` (plan the files, then importing.py reads each once). Each checks the output
folder first and ends with the folder `load_dataset` opens, its card included, switched in whole.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.options import COUNT, SEEDS
from cifake_kit.outputs import FolderLock, require_same_settings, settings_changes
from cifake_kit.runtime import process_state
from cifake_kit.schema import DEMO_GENERATOR_ID, LABEL_NAMES, SPLITS

from . import licences
from .builder import build_tables
from .cards import build_section, folders_section, kaggle_section, top_codecs
from .cifar10 import load_cifar10
from .export import WORK_DIR, prepare_output, unfinished_job, write_dataset_folder
from .features import FULL_PER_CLASS, IMAGE_FORMATS, IMPORT_ENCODINGS
from .folders import parse_sources, plan_folders
from .generate import DEFAULT_GENERATOR, FakeStore, GenerationSettings, generate_fakes, generator_id, plan_fakes
from .importing import Encoding, plan_digest, run_import
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

    Defaults give the paper's dataset (5,000/1,000 per class and label); `test_per_class` defaults to a
    fifth of `per_class`. Rerun to resume. Under `accelerate launch` every process generates its share
    and the main one writes the folder (the others return None).
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
    cifar10 = sample_archive() if cifar10 == SAMPLE_CIFAR10 else cifar10
    settings = GenerationSettings(generator, num_inference_steps, guidance_scale, seed, resolution, batch_size,
                                  shard_size)

    state = process_state()
    out = Path(output_dir)
    # Every process checks; only the main one writes. Nothing is written before the inputs are checked.
    for split in SPLITS:
        load_cifar10(cifar10, split).first_per_class(counts[split])  # enough photos of each class
    check_generation_fits(settings, pipe, state.device)  # from the generator's configs, before anything is loaded
    identity = {"cifar10": str(cifar10), "counts": counts, "image_format": image_format, **asdict(settings)}
    with _job(out, overwrite, "build", identity, state) as work:
        plan = plan_fakes(counts)
        store = FakeStore(work / "fakes", rank=state.process_index)
        stats = generate_fakes(plan, settings, store, pipe=pipe, state=state)
        if not state.is_main_process:
            return None
        generation = {"generator_id": generator_id(generator), "num_inference_steps": num_inference_steps,
                      "guidance_scale": guidance_scale}
        report = BuildReport(out, {s: {"FAKE": 10 * n, "REAL": 10 * n} for s, n in counts.items()}, **stats)
        fake = licences.of_generator(generation["generator_id"], DEMO_GENERATOR_ID, generator)
        section, metadata = build_section(report, cifar10, generation, settings, image_format, fake)
        tables = build_tables(cifar10, counts, store.read_items(plan), generation, image_format)
        write_dataset_folder(tables, out, section, work, metadata=metadata)
        shutil.rmtree(work, ignore_errors=True)
    return report


def import_kaggle(source: str | Path, output_dir: str | Path = "cifake", overwrite: bool = False,
                  workers: int | None = None) -> BuildReport:
    """Convert the published CIFAKE folders (train|test / REAL|FAKE), bytes kept, into the dataset folder.
    Unreadable files and links leaving `source` are skipped and listed in `problems`. Rerun to resume."""
    scan = scan_kaggle(source)  # a wrong layout fails before the output is touched
    settings = {"source": str(scan.root), "plan": plan_digest(scan.files)}
    with _job(Path(output_dir), overwrite, "import-kaggle", settings) as work:
        return _import(Path(output_dir), work, scan.files, KAGGLE_ENCODING, workers, scan.problems,
                       lambda report, stats: kaggle_section(report), same_encoder=(
                           "import-kaggle keeps the release's bytes; to store both halves with one encoder, import "
                           "its folders with `cifake import-folder --real SRC/train/REAL SRC/test/REAL --fake "
                           "SRC/train/FAKE SRC/test/FAKE`, which draws its own test split."))


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
    """Import folders of real photos (`real`) and generated images (`fake`: "NAME=DIR" or "DIR"; NAME, or
    the folder's name, is the FAKE rows' `generator_id`); see folders.py for splits, importing.py for
    `encoder`. `intro`: a paragraph for the card; `source_datasets`: its `source_datasets` (e.g.
    "extended|cifar10"). The licence comes from the sources' README / LICENSE / SOURCES. Rerun to resume.
    """
    _check_choice("encoder", encoder, IMPORT_ENCODINGS)
    plan = plan_folders(parse_sources([str(r) for r in real], [str(f) for f in fake]), test_fraction, seed)
    settings = {"sources": [[s.label, str(s.folder), s.generator_id] for s in plan.sources],
                "test_fraction": test_fraction, "seed": seed, "encoder": encoder,
                "plan": plan_digest(plan.files)}

    def card(report: BuildReport, stats) -> tuple[str, dict]:
        skipped = {path for path, _ in report.problems}
        kept = Counter((file.relpath.split("/")[1], file.split) for file in plan.files if file.relpath not in skipped)
        report.sources = [(LABEL_NAMES[s.label], s.name, s.generator_id,
                           {split: kept[s.name, split] for split in SPLITS if kept[s.name, split]})
                          for s in plan.sources]
        return folders_section(report, plan, stats, encoder, test_fraction, seed, intro, source_datasets)

    with _job(Path(output_dir), overwrite, "import-folder", settings) as work:
        return _import(Path(output_dir), work, plan.files, Encoding(policy=encoder), workers, plan.problems, card)


def sample_archive() -> Path:
    """The bundled CIFAR-10-format sample behind `cifake build --cifar10 bundled-sample` (see its README)."""
    return Path(str(resources.files("dataset_builder") / "data" / _SAMPLE_ARCHIVE))


@contextmanager
def _job(out: Path, overwrite: bool, job: str, settings: dict, state=None):
    """The work folder of `out` for `job` (a command) with `settings`, checked by the main process. An unfinished
    run of the same job and settings is resumed (--overwrite too: it replaces the dataset only at the end); other
    settings are refused, or discarded under --overwrite; another command's unfinished run is always refused."""
    created = not out.exists()
    lock = FolderLock()  # held until the job ends: a second build or import into `out` is refused meanwhile
    try:
        if state is None or state.is_main_process:
            lock.hold(out)
            work = prepare_output(out, overwrite)
            record = work / "settings.json"
            previous = unfinished_job(work)
            if previous is not None and previous != job:
                raise CifakeError(f"{str(out)!r} holds an unfinished `cifake {previous}`; nothing was changed. Run "
                                  f"that command again to resume it, or delete {str(work)!r} to discard it, then run "
                                  "this one.")
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


def _import(out: Path, work: Path, files, encoding, workers, problems: list, card, same_encoder: str = (
        "The default --encoder cifake-jpeg (or png) stores both one way.")) -> BuildReport:
    """Run a planned import (`problems`: the plan's) in the work folder and write the dataset, its "This copy"
    section and YAML from `card(report, stats)`."""
    store = ShardStore(work / "imported", durable=False)  # a chunk is a second's work: redone, not fsynced
    stats = run_import(files, encoding, store, workers)
    if not stats.rows:
        first = "; ".join(f"{path}: {why}" for path, why in stats.problems[:3])
        raise CifakeError(f"No file could be imported ({len(stats.problems)} skipped; first: {first}). Check the "
                          f"source folders: they need whole images.")
    report = BuildReport(out, stats.rows, resumed=stats.resumed, problems=sorted(problems + stats.problems))
    for split, counts in stats.rows.items():
        for missing in [name for name in LABEL_NAMES if not counts[name]]:
            held = ", ".join(f"{counts[name]:,} {name}" for name in LABEL_NAMES if counts[name])
            use = ("no model can be trained on it" if split == "train" else
                   "scores on it cannot compare REAL and FAKE (no accuracy or ROC AUC)")
            report.notes.append(f"The {split} split holds no {missing} images ({held}): {use}. Import more "
                                f"{missing} images, or change --test-fraction.")
    real, fake = (set(stats.codecs.get(label, {})) for label in LABEL_NAMES[::-1])
    if real and fake and real != fake:
        report.notes.append(
            "The two halves are stored with different encoders (REAL: " + top_codecs(stats.codecs["REAL"]) + "; FAKE: "
            + top_codecs(stats.codecs["FAKE"]) + "): a detector can tell them apart by codec alone. " + same_encoder
        )
    section, metadata = card(report, stats)
    tables = {split: [store.read(path) for path in files] for split in SPLITS
              if (files := store.files(split, stats.done))}
    write_dataset_folder(tables, out, section, work, metadata=metadata)
    shutil.rmtree(work, ignore_errors=True)
    return report


def _check_counts(counts: dict) -> None:
    for split, n in counts.items():
        flag = "--per-class" if split == "train" else "--test-per-class"
        if n < 1:
            raise CifakeError(f"{flag} must be at least 1, got {n}.")
        if n > FULL_PER_CLASS[split]:
            raise CifakeError(f"{flag} {n} is more than CIFAR-10 has: at most {FULL_PER_CLASS[split]} {split} images "
                              f"per class.")


def _check_choice(what: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise CifakeError(f"Unknown {what} {value!r}. Use one of: {', '.join(allowed)}.")


