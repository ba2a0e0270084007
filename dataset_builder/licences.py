"""Which licence a dataset card states: derived from where its images came from, never assumed.

CIFAR-10 states none ("unknown"), the CIFAKE release is MIT, a pipeline's output follows its licence, an
imported folder's is read from the README / LICENSE / SOURCES text in or beside it. The card's `license` is
that one id when all parts agree, else the list of them all.
"""

from __future__ import annotations

import re
from pathlib import Path

UNKNOWN = "unknown"  # the Hub's id for "no licence stated"
CIFAR10 = (UNKNOWN,)  # CIFAR-10's page asks for a citation and states no licence
CIFAKE_RELEASE = ("mit",)  # the published Kaggle release
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

# Signs of a licence in free text: (Hub id, pattern, case-sensitive); a text that shows a more specific
# licence's sign does not also count as the generic one it contains (Boost's or MIT's grant).
_SIGNS = [
    ("creativeml-openrail-m", r"creativeml[\s-]*open[\s-]*rail[\s-]*m\b", False),
    ("openrail++", r"open[\s-]*rail\s*\+\+", False),
    ("wtfpl", r"\bwtfpl\b|do what the fuck you want", False),
    ("apache-2.0", r"apache(?: license)?,?[\s-]*(?:version\s*|v)?2(?:\.0)?\b", False),
    ("cc-by-nc-sa-4.0", r"\bcc[\s-]by[\s-]nc[\s-]sa[\s-]4\.0\b|attribution-noncommercial-sharealike 4\.0", False),
    ("cc-by-nc-4.0", r"\bcc[\s-]by[\s-]nc[\s-]4\.0\b|attribution-noncommercial 4\.0", False),
    ("cc-by-sa-4.0", r"\bcc[\s-]by[\s-]sa[\s-]4\.0\b|attribution-sharealike 4\.0", False),
    ("cc-by-4.0", r"\bcc[\s-]by[\s-]4\.0\b|creative commons attribution 4\.0", False),
    ("cc0-1.0", r"\bcc0\b", False),
    ("bsl-1.0", r"boost software license", False),
    ("bsd-3-clause", r"\bbsd[\s-]3\b|3-clause bsd|neither the name of .{0,200} may be used to endorse", False),
    ("gpl-3.0", r"\bgpl[\s-]?v?3|gnu general public license,? version 3|gnu general public license\s+version 3", False),
    ("mit", r"\bMIT\b(?!-)|\bMIT licen[cs]e\b", True),
    ("mit", r"permission is hereby granted, free of charge", False),
]
_SPECIFIC_OVER = {"mit": ("bsl-1.0",)}  # a grant that the more specific licence's text also carries
_LICENCE_FILES = ("license", "licence", "copying")  # their text outranks a README's prose


def from_text(text: str) -> list[str]:
    """The licence ids whose signs `text` carries (empty when none)."""
    found = []
    for licence, pattern, case_sensitive in _SIGNS:
        if licence not in found and re.search(pattern, text, 0 if case_sensitive else re.IGNORECASE | re.DOTALL):
            found.append(licence)
    return [licence for licence in found if not any(specific in found for specific in _SPECIFIC_OVER.get(licence, ()))]


def of_source(texts: list[tuple[str, bool, str]], name: str) -> tuple[str, ...]:
    """The licences of folder `name` from its texts (file name, inside the folder, text): licence files outrank
    others; a text beside the folder counts only on lines naming it as a word. None found: ("unknown",)."""
    word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
    files = [entry for entry in texts if Path(entry[0]).name.lower().startswith(_LICENCE_FILES)]
    found = []
    for _, inside, text in files or texts:
        relevant = text if inside else "\n".join(line for line in text.splitlines() if word.search(line))
        found += [licence for licence in from_text(relevant) if licence not in found]
    return tuple(sorted(found)) or (UNKNOWN,)


def of_generator(generator_id: str, demo_id: str, source: str | None = None) -> tuple[str, ...]:
    """The licence of a diffusers pipeline's output, by its `generator_id`: the kit's random pipeline,
    known Hub ids, the model card in its `source` folder, or unknown."""
    if generator_id == demo_id:
        return (KIT_MADE,)
    if generator_id in _GENERATORS:
        return (_GENERATORS[generator_id],)
    card = Path(source or generator_id).expanduser() / "README.md"
    if card.is_file():
        from huggingface_hub import ModelCard

        try:
            licence = ModelCard.load(card).data.get("license")
        except Exception:  # an unreadable card states nothing
            licence = None
        if isinstance(licence, str) and licence:
            return (licence,)
    return (UNKNOWN,)


def card_value(parts: list[tuple[str, tuple[str, ...]]]) -> str | list[str]:
    """The card's `license` for parts [(what, its licence ids)]: one id, or the sorted list of them all."""
    ids = sorted({licence for _, licences in parts for licence in licences})
    return ids[0] if len(ids) == 1 else ids
