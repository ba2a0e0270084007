"""Build CIFAKE from its parts, or import the published folders: the kit's two entry points.

Both go the same way: check the output folder, feed `CifakeBuilder`, write the folder that
`load_dataset` opens. `build_dataset` first generates the FAKE half (resumable) when needed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.outputs import require_same_settings
from cifake_kit.runtime import process_state
from cifake_kit.schema import DEMO_GENERATOR_ID, SPLITS

from .features import FULL_PER_CLASS, IMAGE_FORMATS, JPEG_QUALITY, JPEG_SUBSAMPLING
from .generate import DEFAULT_GENERATOR, TINY_GENERATOR

# The offline demo: a handful of bundled CIFAR-10 photos and the kit's tiny random pipeline.
DEMO = {
    "cifar10": "bundled-sample",
    "generator": TINY_GENERATOR,
    "per_class": 4,
    "test_per_class": 2,
    "num_inference_steps": 2,
    "guidance_scale": 6.0,
}
_SAMPLE_ARCHIVE = "cifar10-sample.tar.gz"


@dataclass
class BuildReport:
    output_dir: Path
    counts: dict  # split -> {"FAKE": n, "REAL": n}
    generated: int = 0
    resumed: int = 0
    blank_regenerations: int = 0
    problems: list = field(default_factory=list)  # (path, why), Kaggle import only


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
    from .generate import FakeStore, GenerationSettings, generate_fakes, generator_id, plan_fakes

    counts = {"train": per_class, "test": max(1, per_class // 5) if test_per_class is None else test_per_class}
    _check_counts(counts)
    _check_choice("image format", image_format, IMAGE_FORMATS)
    for name, value in [("--batch-size", batch_size), ("--steps", num_inference_steps), ("--shard-size", shard_size)]:
        if value < 1:
            raise CifakeError(f"{name} must be at least 1, got {value}.")
    cifar10 = _resolve_cifar10(cifar10)
    settings = GenerationSettings(generator, num_inference_steps, guidance_scale, seed, resolution, batch_size, shard_size)

    state = process_state()
    out = Path(output_dir)
    # Every process checks; only the main one writes. Nothing is written before the inputs are checked.
    _check_real_counts(cifar10, counts)
    work = _prepare(out, overwrite, state)
    if state.is_main_process:
        identity = {"cifar10": str(cifar10), "counts": counts, "image_format": image_format, **settings.identity()}
        require_same_settings(work / "settings.json", identity, what="an unfinished build")
    state.wait_for_everyone()

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
    section = _build_section(report, cifar10, generation, settings, image_format)
    _run_builder(out, work, section, source="generate", cifar10=str(cifar10), per_class=counts,
                 fakes_dir=str(work / "fakes"), generation=generation, image_format=image_format)
    return report


def import_kaggle(source: str | Path, output_dir: str | Path = "cifake", overwrite: bool = False) -> BuildReport:
    """Convert the published CIFAKE folders (train|test / REAL|FAKE) into the dataset folder.

    The original JPEG bytes are kept. Unreadable files and links leaving `source` are skipped and
    listed in the report's `problems`; everything else is imported.
    """
    from .export import prepare_output
    from .kaggle import find_kaggle_root

    root = find_kaggle_root(Path(source).expanduser())  # a wrong layout fails before the output is touched
    out = Path(output_dir)
    work = prepare_output(out, overwrite)
    builder, dataset_dict = _prepare_builder(work, source="kaggle", kaggle_dir=str(root))
    counts = {split: _label_counts(dataset_dict[split]) for split in dataset_dict}
    report = BuildReport(out, counts, problems=sorted(builder.problems))
    section = _kaggle_section(report, source)
    _export(dataset_dict, out, section, work)
    return report


def sample_archive() -> Path:
    """The bundled CIFAR-10-format sample behind `cifake build --demo` (see its README)."""
    return Path(str(resources.files("dataset_builder") / "data" / _SAMPLE_ARCHIVE))


def _prepare(out: Path, overwrite: bool, state) -> Path:
    from .export import WORK_DIR, prepare_output

    if state.is_main_process:
        work = prepare_output(out, overwrite)
        if overwrite and (work / "settings.json").exists():
            shutil.rmtree(work)
            work.mkdir()
    state.wait_for_everyone()
    return out / WORK_DIR


def _run_builder(out: Path, work: Path, section: str, **config) -> None:
    _, dataset_dict = _prepare_builder(work, **config)
    _export(dataset_dict, out, section, work)


def _prepare_builder(work: Path, **config):
    from .builder import CifakeBuilder

    builder = CifakeBuilder(cache_dir=str(work / "cache"), **config)
    builder.download_and_prepare(download_mode="force_redownload")
    return builder, builder.as_dataset()


def _export(dataset_dict, out: Path, section: str, work: Path) -> None:
    from .export import render_card, write_dataset_folder

    card = render_card(dataset_dict, section)
    write_dataset_folder(dataset_dict, out, card, work)
    del dataset_dict  # release the memory-mapped cache before removing it
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
    from .cifar10 import load_cifar10

    for split in SPLITS:
        load_cifar10(cifar10, split).first_per_class(counts[split])


def _check_choice(what: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise CifakeError(f"Unknown {what} {value!r}. Use one of: {', '.join(allowed)}.")


def _resolve_cifar10(cifar10):
    return sample_archive() if cifar10 == DEMO["cifar10"] else cifar10


def _label_counts(dataset) -> dict:
    labels = dataset.data.column("label").to_numpy()
    names = dataset.features["label"].names
    return {name: int((labels == i).sum()) for i, name in enumerate(names)}


def _encoder_line(image_format: str) -> str:
    if image_format == "jpeg":
        return f"JPEG, libjpeg quality {JPEG_QUALITY}, {JPEG_SUBSAMPLING} chroma subsampling (the published CIFAKE tables), for both labels"
    return "PNG (lossless), for both labels"


def _build_section(report: BuildReport, cifar10, generation: dict, settings, image_format: str) -> str:
    counts = ", ".join(f"{s}: {c['REAL']} REAL + {c['FAKE']} FAKE" for s, c in report.counts.items())
    lines = [
        "## This copy",
        "",
        "Built by the CIFAKE kit (`cifake build`) with these settings:",
        "",
        f"- Images: {counts} ({report.counts['train']['REAL'] // 10} / {report.counts['test']['REAL'] // 10} per CIFAR-10 class and label).",
        f"- REAL: CIFAR-10 photos from `{_public_source(cifar10)}`, the first of each class in CIFAR-10's order.",
        f"- FAKE: generator `{generation['generator_id']}`, {settings.num_inference_steps} steps, guidance {settings.guidance_scale}, base seed {settings.seed}, "
        f"{'native' if settings.resolution is None else settings.resolution} resolution, downscaled to 32x32 (PIL bicubic).",
        f"- Safety-checker blanks regenerated: {report.blank_regenerations}.",
        f"- Encoder: {_encoder_line(image_format)}.",
    ]
    if generation["generator_id"] == DEMO_GENERATOR_ID:
        lines += [
            "",
            "**This is a demonstration build.** Its FAKE images come from the kit's tiny pipeline with "
            "random weights: they are noise-like textures, not Stable Diffusion output, and a model trained "
            "on them learns nothing about real generators. Its REAL images are a bundled handful of CIFAR-10 "
            "*test* photos, some filed under `train` so both splits exist.",
        ]
    return "\n".join(lines)


def _kaggle_section(report: BuildReport, source) -> str:
    counts = ", ".join(f"{s}: {c['REAL']} REAL + {c['FAKE']} FAKE" for s, c in report.counts.items())
    return "\n".join(
        [
            "## This copy",
            "",
            "Imported from the published CIFAKE folders by the CIFAKE kit (`cifake import-kaggle`), "
            "original JPEG bytes unchanged.",
            "",
            f"- Images: {counts}.",
            f"- Files skipped (unreadable, misnamed, or links leaving the folder): {len(report.problems)}.",
        ]
    )


def _public_source(cifar10) -> str:
    if cifar10 is None:
        from .cifar10 import DEFAULT_CIFAR10

        return f"hf://datasets/{DEFAULT_CIFAR10}"
    path = Path(str(cifar10))
    return path.name if path.exists() else str(cifar10)
