"""The dataset card's text: `dataset_card.md` with YAML measured from the data, and each entry point's
"This copy" section with its licences (build.py composes; the Markdown is written here)."""

from __future__ import annotations

import re
from pathlib import Path

from cifake_kit.outputs import KIT_TAG
from cifake_kit.schema import DEMO_GENERATOR_ID, LABEL_NAMES

from . import licences
from .cifar10 import DEFAULT_CIFAR10
from .features import JPEG_QUALITY, JPEG_SUBSAMPLING

_CARD_TEMPLATE = Path(__file__).parent / "data" / "dataset_card.md"
_JPEG = f"JPEG, libjpeg quality {JPEG_QUALITY}, {JPEG_SUBSAMPLING} chroma subsampling (the published CIFAKE tables)"


def card_text(features, sizes: dict, build_section: str, metadata: dict | None = None) -> str:
    """`dataset_card.md` with YAML for `features` and `sizes` ({split: (rows, bytes)}), plus `build_section`.
    `metadata`: the YAML that depends on the sources (`license`, `source_datasets`); else licence unknown."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(_CARD_TEMPLATE, repo_type="dataset")
    for key in ("dataset_info", "configs", "source_datasets"):
        card.data.pop(key, None)
    card.data["license"] = "unknown"
    for key, value in (metadata or {}).items():
        card.data[key] = value
    splits = SplitDict()
    for name, (rows, nbytes) in sizes.items():
        splits.add(SplitInfo(name=name, num_bytes=nbytes, num_examples=rows))
    info = DatasetInfo(features=features, splits=splits, dataset_size=sum(s.num_bytes for s in splits.values()))
    DatasetInfosDict({"default": info}).to_dataset_card_data(card.data)
    MetadataConfigs(
        {"default": {"data_files": [{"split": name, "path": f"data/{name}-*"} for name in sizes]}}
    ).to_dataset_card_data(card.data)
    card.data["size_categories"] = [_size_category(sum(rows for rows, _ in sizes.values()))]
    tags = list(card.data.get("tags") or [])
    card.data["tags"] = tags + [KIT_TAG] if KIT_TAG not in tags else tags
    card.text = card.text.rstrip() + "\n\n" + build_section.strip() + "\n"
    return str(card)


def _size_category(n: int) -> str:
    for bound, name in [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]:
        if n < bound:
            return name
    return "1M<n<10M"


def top_codecs(counts: dict, most: int = 2) -> str:
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{signature} ({n:,})" for signature, n in ordered[:most])
    return shown + (f" and {len(ordered) - most} more" if len(ordered) > most else "")


def _with_licences(lines: list[str], parts: list[tuple[str, tuple[str, ...]]],
                   source_datasets: list[str] | None = None) -> tuple[str, dict]:
    """(The "This copy" section of `lines` with a line per part saying which licence it is under, the card's YAML
    for the sources)."""
    lines = ["## This copy", "", *lines, "", "Licences of this copy's images (the card's `license` lists them all):",
             ""]
    lines += [f"- {what}: " + " and ".join(f"`{licence}`" for licence in ids) for what, ids in parts]
    if any(licences.UNKNOWN in ids for _, ids in parts):
        lines.append("- `unknown`: the source states no licence; check its terms before you redistribute it.")
    return "\n".join(lines), {"license": licences.card_value(parts),
                              **({"source_datasets": source_datasets} if source_datasets else {})}


def build_section(report, cifar10, generation: dict, settings, image_format: str, fake_licence) -> tuple[str, dict]:
    """(The "This copy" section, the card's YAML for the sources) of `cifake build`."""
    lines = [
        "Built by the CIFAKE kit (`cifake build`) with these settings:",
        "",
        f"- Images: {_counts_line(report)} ({report.counts['train']['REAL'] // 10} / "
        f"{report.counts['test']['REAL'] // 10} per CIFAR-10 class and label).",
        f"- REAL: CIFAR-10 photos from `{_public_source(cifar10)}`, the first of each class in CIFAR-10's order.",
        f"- FAKE: generator `{generation['generator_id']}`, {settings.num_inference_steps} steps, guidance "
        f"{settings.guidance_scale}, base seed {settings.seed}, "
        f"{'native' if settings.resolution is None else settings.resolution} resolution, downscaled to 32x32 "
        f"(PIL bicubic).",
        f"- Safety-checker blanks regenerated: {report.blank_regenerations}.",
        f"- Encoder: {_JPEG if image_format == 'jpeg' else 'PNG (lossless)'}, for both labels.",
    ]
    if generation["generator_id"] == DEMO_GENERATOR_ID:
        lines += [
            "",
            "**This build only exercises the generation path.** Its FAKE images come from the kit's tiny "
            "pipeline with random weights: noise-like textures, not Stable Diffusion output and not the output "
            "of any trained generator. A model trained on them learns nothing about real generators.",
        ]
    parts = [("REAL, CIFAR-10 photos", licences.CIFAR10), (f"FAKE, output of `{generation['generator_id']}`",
                                                          fake_licence)]
    return _with_licences(lines, parts, ["extended|cifar10"])


def _counts_line(report) -> str:
    return "; ".join(f"{s}: {c['REAL']:,} REAL + {c['FAKE']:,} FAKE" for s, c in report.counts.items())


def kaggle_section(report) -> tuple[str, dict]:
    lines = [
        "Imported from the published CIFAKE folders by the CIFAKE kit (`cifake import-kaggle`), "
        "original JPEG bytes unchanged.",
        "",
        f"- Images: {_counts_line(report)}.",
        f"- Files skipped (unreadable, misnamed, or links leaving the folder): {len(report.problems)}.",
    ]
    parts = [("both halves, as the release on Kaggle states", licences.CIFAKE_RELEASE)]
    return _with_licences(lines + [f"- Note: {note}" for note in report.notes], parts, ["extended|cifar10"])


def folders_section(report, plan, stats, encoder: str, test_fraction: float, seed: int, intro: str = "",
                    source_datasets: list[str] | None = None) -> tuple[str, dict]:
    lines = [
        *([intro, ""] if intro else []),
        "Imported by the CIFAKE kit (`cifake import-folder`) from folders of real photos and of images made by "
        "the generators named below.",
        "",
        f"- Images: {_counts_line(report)}.",
        f"- Splits: {_splits_line(plan.split_rule, test_fraction, seed)}.",
        f"- Encoder: {_import_encoder_line(encoder, stats)}",
        f"- Files skipped (not images, unreadable, links, hidden): {len(report.problems):,}.",
        *[f"- Note: {note}" for note in report.notes],
        "",
        "| label | source folder | generator_id | train | test |",
        "|---|---|---|---|---|",
    ]
    for label, name, generator, counts in report.sources:
        lines.append(f"| {label} | `{name}` | {f'`{generator}`' if generator else '-'} | {counts.get('train', 0):,} | "
                     f"{counts.get('test', 0):,} |")
    lines += ["", "Encodings as stored (format, size, JPEG tables):", ""]
    for label in ("REAL", "FAKE"):
        lines.append(f"- {label}: {top_codecs(stats.codecs.get(label, {}), most=3)}")
    if plan.attribution:
        lines += ["", "### Attribution of the sources", "",
                  "Found beside the imported images and carried here as they were written:"]
        for shown, text in plan.attribution:
            lines += ["", f"`{shown}`:", "", _fence(text)]
    parts = [(f"{LABEL_NAMES[s.label]} `{s.name}`", plan.licences[s.name]) for s in plan.sources]
    return _with_licences(lines, parts, source_datasets)


def _splits_line(split_rule: dict, test_fraction: float, seed: int) -> str:
    drawn = [f"`{name}`" for name, rule in split_rule.items() if rule == "drawn"]
    kept = [f"`{name}`" for name, rule in split_rule.items() if rule != "drawn"]
    parts = []
    if drawn:
        which = "every source" if not kept else ", ".join(drawn)
        parts.append(f"{test_fraction:.0%} of each label and generator drawn at random into test (seed {seed}) "
                     f"for {which}")
    if kept:
        parts.append(f"the train/ and test/ folders of {', '.join(kept)} kept as they are")
    return "; ".join(parts)


def _fence(text: str) -> str:
    """`text` as a Markdown code block whose fence no run of backticks inside can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _import_encoder_line(encoder: str, stats) -> str:
    if encoder == "keep":
        return f"none: every file's bytes kept as they were ({stats.kept:,} files)."
    resized = f" ({stats.resized:,} of them first brought to 32x32: shorter side with PIL bicubic, centre crop)"
    if encoder == "png":
        return f"PNG (lossless) for both labels: {stats.encoded:,} files decoded and written as PNG{resized}."
    return (f"{_JPEG}, for both labels: {stats.kept:,} files that already were 32x32 JPEGs with exactly those "
            f"tables kept byte for byte (no second compression), {stats.encoded:,} encoded{resized}.")


def _public_source(cifar10) -> str:
    if cifar10 is None:
        return f"hf://datasets/{DEFAULT_CIFAR10}"
    path = Path(str(cifar10))
    return path.name if path.exists() else str(cifar10)
