"""Which licence a dataset card states: derived from where its images came from, never assumed.

Each part of a dataset (the REAL photos, each generator's FAKE images) has the licence of its
source: CIFAR-10 states none ("unknown", as its Hub card says), the published CIFAKE release is
MIT, a diffusers pipeline's output follows the pipeline's licence (Stable Diffusion v1.x:
CreativeML OpenRAIL-M), and an imported folder's licence is read from the README / LICENSE /
SOURCES text found in or beside it. The card's `license` is that one id when all parts agree,
otherwise the list of every part's id (the Hub's dataset metadata takes a list), and the card's
text says which part is under which.
"""

from __future__ import annotations

import re
from pathlib import Path

UNKNOWN = "unknown"  # the Hub's id for "no licence stated"
CIFAR10 = UNKNOWN  # CIFAR-10's page asks for a citation and states no licence
CIFAKE_RELEASE = "mit"  # the published Kaggle release
KIT_MADE = "mit"  # images the kit's own random-weight pipeline makes

# Pipelines whose output licence is known: their model cards' `license`.
_GENERATORS = {
    **dict.fromkeys([f"CompVis/stable-diffusion-v1-{n}" for n in (1, 2, 3, 4)] +
                    ["runwayml/stable-diffusion-v1-5", "stable-diffusion-v1-5/stable-diffusion-v1-5"],
                    "creativeml-openrail-m"),
    **dict.fromkeys(["stabilityai/stable-diffusion-2", "stabilityai/stable-diffusion-2-base",
                     "stabilityai/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1-base",
                     "stabilityai/stable-diffusion-xl-base-1.0"], "openrail++"),
}

# Signs of a licence in free text, most specific first: (Hub id, pattern).
_SIGNS = [
    ("creativeml-openrail-m", r"creativeml[\s-]*open[\s-]*rail[\s-]*m"),
    ("openrail++", r"openrail\+\+"),
    ("wtfpl", r"\bwtfpl\b|do what the fuck you want"),
    ("apache-2.0", r"apache(?: license)?,?[\s-]*(?:version\s*)?2\.0"),
    ("cc-by-4.0", r"\bcc[\s-]by[\s-]4\.0\b|creative commons attribution 4\.0"),
    ("cc0-1.0", r"\bcc0\b"),
    ("bsd-3-clause", r"\bbsd[\s-]3\b|3-clause bsd"),
    ("gpl-3.0", r"\bgpl[\s-]?v?3|gnu general public license,? version 3"),
    ("mit", r"\bmit\b(?: licen[cs]e)?|permission is hereby granted, free of charge"),
]


def from_text(text: str) -> list[str]:
    """The licence ids whose signs `text` carries (empty when none)."""
    found = []
    for licence, pattern in _SIGNS:
        if re.search(pattern, text, re.IGNORECASE) and licence not in found:
            found.append(licence)
    return found


def of_source(texts: list[tuple[bool, str]], name: str) -> str:
    """The licence of an imported folder `name` from its attribution texts, each (inside the folder, text).

    A text inside the folder counts whole; one beside it only on its lines that name the folder (a
    SOURCES table of several folders). Several licences found, or none: they are listed, or
    "unknown".
    """
    found = []
    for inside, text in texts:
        relevant = text if inside else "\n".join(line for line in text.splitlines() if name in line)
        found += [licence for licence in from_text(relevant) if licence not in found]
    return "+".join(sorted(found)) if found else UNKNOWN


def of_generator(generator_id: str, demo_id: str, source: str | None = None) -> str:
    """The licence of a diffusers pipeline's output, by its `generator_id`: the kit's random pipeline,
    known Hub ids, the model card in its `source` folder, or unknown."""
    if generator_id == demo_id:
        return KIT_MADE
    if generator_id in _GENERATORS:
        return _GENERATORS[generator_id]
    card = Path(source or generator_id).expanduser() / "README.md"
    if card.is_file():
        from huggingface_hub import ModelCard

        try:
            licence = ModelCard.load(card).data.get("license")
        except Exception:  # an unreadable card states nothing
            licence = None
        if isinstance(licence, str) and licence:
            return licence
    return UNKNOWN


def card_value(parts: list[tuple[str, str]]) -> str | list[str]:
    """The card's `license` for parts [(what, licence id or ids joined by "+")]: one id, or the sorted list."""
    ids = sorted({licence for _, joined in parts for licence in joined.split("+")})
    return ids[0] if len(ids) == 1 else ids


def card_lines(parts: list[tuple[str, str]]) -> list[str]:
    """Markdown lines saying which part is under which licence."""
    lines = [f"- {what}: `{joined.replace('+', '` and `')}`" for what, joined in parts]
    if any(UNKNOWN in joined.split("+") for _, joined in parts):
        lines.append("- `unknown`: the source states no licence; check its terms before you redistribute it.")
    return lines
