"""The Stable Diffusion task of ../shared: real CIFAR-10 photos vs 791 genuine SD v1.x outputs.

`build_sd_task` lays ../shared/data/generated-sd out as import-folder sources, one per source
repository (generator_id `stable-diffusion:<owner>/<repo>`), beside the same number of real CIFAR-10
test photos spread evenly over the ten classes, and imports both halves with the kit's one encoder
(JPEG q75, CIFAKE's tables) into a seeded 80/20 split (`draw_split`) stratified by source (the real
photos by class) and grouped by prompt: where a source used many prompts (bento170502: two samples
of each line of its prompts.txt), the samples of one prompt stay on one side of the split, so no
test picture has a sibling of the same prompt in training. A source prompted by its class alone, as
CIFAKE was (vincegmz: "a photo of a dog" for all 200), is split image by image, and so are images
whose prompt is unknown. The real photos are taken after
the ones bench/_genuine.py uses, so that the two tasks can be trained together without a photo in
one task's training split and the other's test split.

Every SD image also gets a content type from its provenance row (`content_of`): `photo` for the
"a photo of ..." images (vincegmz's DreamBooth class priors, bento170502's photo prompts), `art`
for the rest, and for the photo-like ones the CIFAR-10 class the prompt names, if any. The side
table (`SdImage`) is keyed by the path the import stores for each image, which `load_pixels` hands
back as `image_ids`.

Derived tasks (content controls, the joint task, learning-curve subsets) are re-imported from
lists of `Row`s that carry their split (`import_rows`): each source then gets train/ and test/
folders, so the split is exactly the one given and the encoder the same.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from _genuine import REAL_TOTAL, build_genuine_task, generator_files, import_staged, real_photos

from cifake_kit.schema import CIFAR10_CLASSES, FAKE, REAL

SD_FOLDER = "generated-sd"
PHOTO, ART = "photo", "art"
# Words of a prompt that name a CIFAR-10 class (whole words, singular or plural).
CLASS_WORDS = {
    **{name: name for name in CIFAR10_CLASSES},
    "plane": "airplane", "aeroplane": "airplane", "car": "automobile", "boat": "ship", "puppy": "dog",
    "kitten": "cat", "pony": "horse", "lorry": "truck",
}
_PHOTO_PROMPT = re.compile(r"\ba photo of\b|\bphotograph\b", re.IGNORECASE)


@dataclass(frozen=True)
class SdImage:
    """One generated-sd image and what its provenance says it shows."""

    folder: str  # the source folder under generated-sd/
    file: str
    generator_id: str  # stable-diffusion:<owner>/<repo>
    content: str  # PHOTO or ART
    cifar10_class: str | None  # for photo-like images whose prompt names a CIFAR-10 class
    group: str = ""  # images of one group stay on one side of the split (`prompt_groups`); "": on its own


@dataclass(frozen=True)
class Row:
    """One image of a task: where it lies, its label, generator, CIFAR-10 class and split."""

    path: Path
    label: int  # FAKE or REAL
    generator_id: str | None
    cifar10_class: str | None
    split: str  # "train" or "test"

    @property
    def key(self) -> str:
        return row_key(self.label, self.generator_id, self.cifar10_class, self.path.name)


def row_key(label: int, generator_id: str | None, cifar10_class: str | None, name: str) -> str:
    """A name unique in a task: FAKE images by generator and file, REAL photos by class and file."""
    return f"fake/{generator_id}/{name}" if label == FAKE else f"real/{cifar10_class}/{name}"


def generator_id_of(repo: str) -> str:
    return f"stable-diffusion:{repo}"


def prompt_text(prompt: str) -> str:
    """The prompt itself: "(inferred: ...) a photo of a dog" -> "a photo of a dog"; "" when unknown."""
    text = prompt.strip()
    if text.lower().startswith("unknown"):
        return ""  # e.g. bento's "unknown (earlier run; README example prompt is ...)": the README's, not this image's
    if text.startswith("("):
        depth = 0
        for i, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                text = text[i + 1:]
                break
    return text.strip().strip('"').strip()


def class_in_prompt(text: str) -> str | None:
    """The CIFAR-10 class of a prompt's subject: the first two words after "photo(graph) of a/an/the"
    (or of the prompt), so "a photo of a cat on a leash" -> cat and "a photo of a fox driving a car"
    -> None: a car in the background does not make a CIFAR-10 automobile photo."""
    words = re.findall(r"[a-z]+", text.lower())
    for i in range(len(words) - 1):
        if words[i].startswith("photo") and words[i + 1] == "of":
            words = words[i + 2:]
            break
    while words and words[0] in ("a", "an", "the", "some", "two", "three"):
        words = words[1:]
    for word in words[:2]:
        for form in (word, word[:-1] if word.endswith("s") else word):
            if form in CLASS_WORDS:
                return CLASS_WORDS[form]
    return None


def content_of(row: dict) -> tuple[str, str | None]:
    """(content type, CIFAR-10 class or None) of a provenance row.

    `photo`: an "a photo of ..." / "photograph" prompt (vincegmz's class priors are all "a photo of
    a dog"); `art` for the rest, including prompts that are unknown. The class only for photo-like
    images: a painting of a cat is no CIFAR-10 cat photo.
    """
    text = prompt_text(row.get("prompt", ""))
    if not _PHOTO_PROMPT.search(text):
        return ART, None
    return PHOTO, class_in_prompt(text)


def prompt_groups(folder: str, prompts: list[str]) -> list[str]:
    """The split group of each image of one source folder, from its provenance prompts.

    A source with more than one known prompt: its images of one prompt form a group (`folder/prompt`).
    A source with one prompt or none known (a class prompt such as vincegmz's "a photo of a dog", or
    "unknown"): "", each image on its own, as CIFAKE splits the images of its per-class prompts.
    """
    texts = [prompt_text(prompt) for prompt in prompts]
    by_prompt = len({text for text in texts if text}) > 1
    return [f"{folder}/{text}" if by_prompt and text else "" for text in texts]


def sd_images(shared: Path) -> list[SdImage]:
    """Every image of ../shared/data/generated-sd with its generator_id, content type, class and group."""
    root = shared / "data" / SD_FOLDER
    if not root.is_dir():
        raise SystemExit(f"{root} is missing: this bench needs ../shared/data/generated-sd (see ../shared/README.md).")
    images = []
    for folder in sorted(p for p in root.iterdir() if (p / "provenance.csv").is_file()):
        with open(folder / "provenance.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        groups = prompt_groups(folder.name, [row.get("prompt", "") for row in rows])
        images += [SdImage(folder.name, row["file"], generator_id_of(row["repo"]), *content_of(row), group)
                   for row, group in zip(rows, groups)]
    return images


def stage(rows: list[Row], staging: Path, keep_splits: bool) -> tuple[list[Path], list[str]]:
    """Copy `rows` into import-folder sources under `staging`: one REAL source (class folders) and one
    FAKE source per generator; with `keep_splits`, each under train/ and test/ folders."""
    if staging.exists():
        shutil.rmtree(staging)
    fake_dirs: dict[str, Path] = {}
    for row in rows:
        split = row.split if keep_splits else ""
        if row.label == REAL:
            target = staging / "real" / split / row.cifar10_class
        else:
            base = fake_dirs.setdefault(row.generator_id, staging / "fake" / row.generator_id.replace(":", "__").replace("/", "__"))
            target = base / split
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(row.path, target / row.path.name)
    return [staging / "real"], [f"{g}={d}" for g, d in fake_dirs.items()]


def import_rows(rows: list[Row], out: Path, seed: int = 0, keep_splits: bool = True, intro: str = "") -> Path:
    """Import `rows` into the dataset folder `out` (replaced): with their own splits (`keep_splits`),
    or drawn by the kit's stratified 80/20 split in `seed`."""
    return import_staged(lambda staging: stage(rows, staging, keep_splits), out, seed,
                         intro or "A task of the kit's Stable Diffusion bench (bench/_sd.py).")


def class_names(pixels) -> list[str | None]:
    """The CIFAR-10 class name of every image of a loaded split (`CifakePixels`); None where unknown."""
    return [pixels.class_names[c] if 0 <= c < len(pixels.class_names) else None for c in pixels.classes.tolist()]


def pixel_keys(pixels) -> list[str]:
    """`row_key` of every image of a loaded split (`CifakePixels`), from the paths the import stored."""
    gens = pixels.generator_ids or [None] * len(pixels)
    return [row_key(label, g if label == FAKE else None, n if label == REAL else None, i.rsplit("/", 1)[-1])
            for i, label, g, n in zip(pixels.image_ids, pixels.labels.tolist(), gens, class_names(pixels))]


def stored_keys(out: Path):
    """(split, row key) of every image of the dataset folder `out`, train split first, in stored order."""
    from modeling.data import load_pixels

    for split in ("train", "test"):
        yield from ((split, key) for key in pixel_keys(load_pixels(out, split, None)))


def sd_rows(shared: Path, real_count: int | None = None,
            real_skip: int = REAL_TOTAL) -> tuple[list[Row], dict[str, SdImage]]:
    """The SD task's images as rows (split not yet drawn) and the side table by row key."""
    images = sd_images(shared)
    root = shared / "data" / SD_FOLDER
    rows = [Row(root / image.folder / image.file, FAKE, image.generator_id, None, "") for image in images]
    table = {row.key: image for row, image in zip(rows, images)}
    rows += [Row(path, REAL, None, name, "") for name, path in
             real_photos(shared, real_count if real_count is not None else len(images), real_skip)]
    return rows, table


def draw_split(rows: list[Row], table: dict[str, SdImage], seed: int = 0, test_fraction: float = 0.2) -> list[Row]:
    """`rows` with a seeded test split of about `test_fraction`, stratified by source (the real photos
    by class) and keeping each SD image's group (`SdImage.group`) on one side (sklearn's
    StratifiedGroupKFold, its first fold as test)."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    strata = [row.generator_id if row.label == FAKE else f"real/{row.cifar10_class}" for row in rows]
    groups = [(table[row.key].group if row.label == FAKE else "") or row.key for row in rows]
    folds = StratifiedGroupKFold(n_splits=round(1 / test_fraction), shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # sources of 2-3 images cannot be spread over 5 folds, and need not be
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        _, test = next(folds.split(np.zeros(len(rows)), strata, groups))
    test = set(test.tolist())
    return [replace(row, split="test" if i in test else "train") for i, row in enumerate(rows)]


def as_stored(rows: list[Row], out: Path) -> list[Row]:
    """`rows` with the split each has in the dataset folder `out`; refused if one is not there."""
    split_of = {key: split for split, key in stored_keys(out)}
    missing = [row.key for row in rows if row.key not in split_of]
    if missing:
        raise SystemExit(f"{len(missing)} of the task's images are not in {out} (e.g. {missing[0]}): "
                         f"the import skipped them; see its report in {out}.")
    return [replace(row, split=split_of[row.key]) for row in rows]


def build_sd_task(shared: Path, out: Path, seed: int = 0, real_count: int | None = None,
                  real_skip: int = REAL_TOTAL) -> tuple[Path, list[Row], dict[str, SdImage]]:
    """Import the SD task into `out`: (dataset folder, its rows with their split, side table).

    REAL: `real_count` photos (default: as many as SD images) spread over the classes, after the
    `real_skip` photos of the GAN/DDPM task. The split: `draw_split` in `seed`, checked against the
    written dataset.
    """
    rows, table = sd_rows(shared, real_count, real_skip)
    rows = draw_split(rows, table, seed)
    import_rows(rows, out, keep_splits=True,
                intro="The Stable Diffusion task of the kit's benchmarks (bench/_sd.py): genuine SD v1.x outputs from "
                      "public repositories against real CIFAR-10 test photos.")
    if as_stored(rows, out) != rows:
        raise SystemExit(f"the splits stored in {out} are not the ones drawn.")
    return out, rows, table


def with_more_real(rows: list[Row], shared: Path, per_fake: int, skip: int) -> list[Row]:
    """`rows`, and real training photos added until there are `per_fake` for each FAKE training image:
    CIFAR-10 test photos after the first `skip` of the class-balanced pick, the test split unchanged."""
    fakes = sum(1 for row in rows if row.split == "train" and row.label == FAKE)
    reals = sum(1 for row in rows if row.split == "train" and row.label == REAL)
    extra = [Row(path, REAL, None, name, "train") for name, path in real_photos(shared, max(fakes * per_fake - reals, 0), skip)]
    if reused := {row.path for row in extra} & {row.path for row in rows}:
        raise SystemExit(f"photos {sorted(map(str, reused))[:3]} are in the task already: raise the skip.")
    return rows + extra


def leave_source_out(rows: list[Row], generator_id: str) -> list[Row]:
    """The task with one SD source never seen in training: every other source's training images and the real
    training photos train; all of that source's images (both splits) and the real test photos are the test
    split. The other sources' test images are left out: they are not what this scores."""
    held_out = [replace(r, split="test") for r in rows if r.label == FAKE and r.generator_id == generator_id]
    kept = [r for r in rows if r.label == REAL or (r.generator_id != generator_id and r.split == "train")]
    return kept + held_out


def genuine_rows(shared: Path, out: Path, seed: int = 0) -> tuple[Path, list[Row]]:
    """The GAN/DDPM task (bench/_genuine.py) built into `out`, and its rows with their splits."""
    build_genuine_task(shared, out, seed=seed)
    rows = [Row(path, FAKE, g, None, "") for g, path in generator_files(shared)]
    rows += [Row(path, REAL, None, name, "") for name, path in real_photos(shared, REAL_TOTAL)]
    return out, as_stored(rows, out)


# --- learning curve -------------------------------------------------------------------------------

def curve_subset(rows: list[Row], fakes: int | None, seed: int) -> list[Row]:
    """`fakes` FAKE training images drawn at random in `seed` (None or more than there are: all), as
    many REAL training images drawn the same way, and every test image."""
    rng = np.random.default_rng(seed)
    train_fake = [r for r in rows if r.split == "train" and r.label == FAKE]
    train_real = [r for r in rows if r.split == "train" and r.label == REAL]
    n = len(train_fake) if fakes is None else min(fakes, len(train_fake))
    m = min(n, len(train_real))
    pick_fake = [train_fake[i] for i in sorted(rng.choice(len(train_fake), size=n, replace=False))]
    pick_real = [train_real[i] for i in sorted(rng.choice(len(train_real), size=m, replace=False))]
    return pick_fake + pick_real + [r for r in rows if r.split == "test"]


# --- content controls -----------------------------------------------------------------------------

def control_masks(keys: list[str], labels, classes: list[str | None], table: dict[str, SdImage]) -> dict[str, dict]:
    """Which test images each content control scores, as boolean masks (FAKE positives, REAL negatives).

    - "vincegmz dogs vs real dogs": the photo-like SD dogs of vincegmz against the real dog photos;
    - "bento photo animals vs real of their classes": bento170502's photo-like images whose prompt names a
      CIFAR-10 class, against the real photos of those classes;
    - "photo-like SD vs all real" and "art SD vs all real": each content type against every real photo.
    `classes`: each image's CIFAR-10 class name (the real photos'; None where unknown).
    """
    real = np.asarray(labels) == REAL
    info = [table.get(k) for k in keys]
    out = {}

    def add(name, fake_mask, real_mask):
        out[name] = {"fake": fake_mask, "real": real_mask,
                     "fake_images": int(fake_mask.sum()), "real_images": int(real_mask.sum())}

    vince = np.array([i is not None and i.generator_id == generator_id_of("vincegmz/stable-diffusion")
                      and i.content == PHOTO for i in info])
    add("vincegmz dogs vs real dogs", vince, real & np.array([c == "dog" for c in classes]))
    bento = np.array([i is not None and i.generator_id == generator_id_of("bento170502/stable-diffusion")
                      and i.content == PHOTO and i.cifar10_class is not None for i in info])
    bento_classes = {i.cifar10_class for i, b in zip(info, bento) if b}
    add("bento photo animals vs real of their classes", bento, real & np.array([c in bento_classes for c in classes]))
    for content in (PHOTO, ART):
        add(f"{'photo-like' if content == PHOTO else 'art'} SD vs all real",
            np.array([i is not None and i.content == content for i in info]), real.copy())
    return out


def art_only(rows: list[Row], table: dict[str, SdImage]) -> list[Row]:
    """Control (b): the training split without its photo-like SD images; the test split whole."""
    return [r for r in rows if not (r.split == "train" and r.label == FAKE and table[r.key].content == PHOTO)]


# Real photos larger than 32x32, installed by the kit's own dependencies and read where they lie (never
# copied): the only such photos on these machines. Left out: gradio's groot (a render) and cheetah2 (a
# cut-out on white). Few scenes, so a probe of what reduction does, not a benchmark of photos.
LARGE_PHOTOS = {
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "cheetah": ("gradio", "media_assets/images/cheetah.jpg"),
    "cheetah-face": ("gradio", "media_assets/images/cheetah1.jpg"),
    "lion": ("gradio", "media_assets/images/lion.jpg"),
    "tower": ("gradio", "media_assets/images/tower.jpg"),
}


def large_photos(photos: dict[str, tuple[str, str]] = LARGE_PHOTOS) -> dict[str, Path]:
    """The `photos` (name: (package, path inside it)) found in the installed packages, by name."""
    found = {}
    for name, (package, inside) in photos.items():
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            if (Path(folder) / inside).is_file():
                found[name] = Path(folder) / inside
                break
    return found


def square_crops(image, count: int, seed: int = 0, smallest: float = 0.3) -> list:
    """`count` square crops of a PIL `image` at full resolution: its centre square first, then squares of
    `smallest` to 1 times its shorter side at seeded random places."""
    width, height = image.size
    side = min(width, height)
    boxes = [((width - side) // 2, (height - side) // 2, side)]
    rng = np.random.default_rng(seed)
    for _ in range(count - 1):
        size = int(rng.uniform(smallest, 1.0) * side)
        boxes.append((int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1)), size))
    return [image.crop((x, y, x + size, y + size)) for x, y, size in boxes[:count]]


REDUCED_CLASS = "reduced-photos"  # the class folder of reduced real photos: no CIFAR-10 class


def reduced_photo_rows(photos: dict[str, Path], out: Path, count: int, seed: int = 0) -> list[Row]:
    """REAL training rows of `count` squares of each photo (`square_crops`), reduced to 32x32 with the
    dataset's filter and saved as PNG under `out` (replaced); their class names no CIFAR-10 class."""
    from PIL import Image

    from dataset_builder.imaging import fit

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rows = []
    for name, path in photos.items():
        with Image.open(path) as image:
            for i, square in enumerate(square_crops(image, count, seed)):
                target = out / f"{name}-{i:03d}.png"
                Image.fromarray(fit(square)).save(target)
                rows.append(Row(target, REAL, None, REDUCED_CLASS, "train"))
    return rows
