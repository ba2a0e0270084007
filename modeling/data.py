"""CIFAKE data for training and evaluation: decode once, then keep uint8 tensors.

`load_pixels` decodes a split once to (N, 3, 32, 32) uint8 (through the model's image processor when
an image is not 32x32 RGB) and caches it beside datasets' cache. `CifakeTensorDataset` hands out whole
batches by indexing; `CifakeCollator` normalises them as the processor would. `StreamingCifake` decodes
on the fly, for data too large for memory.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import constants
from PIL import Image
from tqdm.auto import tqdm

from cifake_kit.codec import stored_encoding as encoding_of
from cifake_kit.errors import CifakeError
from cifake_kit.hub import is_hub_id, loading
from cifake_kit.schema import FAKE, GENERATOR_FAMILIES, IMAGE_SIZE, LABEL_NAMES, MAX_IMAGE_FILE_BYTES, generator_family
from modeling.image_processing_cifake import to_rgb
from modeling.layout import RUN_FILE

logger = logging.getLogger(__name__)

_CACHE_VERSION = 1  # bump when the decoded layout changes
_DECODE_BATCH = 2048


@dataclass
class CifakePixels:
    """One split, decoded: images, labels (FAKE=0, REAL=1) and CIFAR-10 classes (-1 if unknown)."""

    pixels: torch.Tensor  # (N, 3, 32, 32) uint8
    labels: torch.Tensor  # (N,) int64
    classes: torch.Tensor  # (N,) int64
    class_names: list[str]
    source: str
    generators: list[str] = field(default_factory=list)  # generator_id values of the FAKE images, if recorded
    generator_ids: list[str | None] | None = None  # each image's generator_id (None: real, or not recorded)
    image_ids: list[str] | None = None  # each image's stored file name, for per-image reports
    encoding: str | None = None  # "cifake-jpeg" when the split's images are stored as CIFAKE's JPEGs (stored_encoding)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> "CifakePixels":
        indices = torch.as_tensor(indices, dtype=torch.long)
        pick = indices.tolist()
        return CifakePixels(self.pixels[indices], self.labels[indices], self.classes[indices], self.class_names,
                            self.source, self.generators,
                            None if self.generator_ids is None else [self.generator_ids[i] for i in pick],
                            None if self.image_ids is None else [self.image_ids[i] for i in pick])


@dataclass(frozen=True)
class Columns:
    """Which columns of a dataset hold the images and the REAL/FAKE labels (a Hub dataset's own names)."""

    image: str = "image"
    label: str = "label"


DEFAULT_COLUMNS = Columns()
_ANNOUNCED: set[str] = set()  # datasets whose source or label mapping was already said, once per process


def open_split(data: str | Path, split: str, streaming: bool = False, columns: Columns = DEFAULT_COLUMNS,
               flag: str = "--data", split_flag: str | None = "--split"):
    """The `datasets` split of a dataset folder or Hub id (owner/name: a bare name is never looked up in
    datasets' cache), `columns` renamed to `image` and `label`, checked for CIFAKE's labels. Messages name
    `flag` and `split_flag` (None where the command needs this split, as training needs `train`)."""
    import datasets

    where = str(data)
    hint = (f"Pass {flag} with a folder written by `cifake build` / `cifake import-folder`, or a Hub dataset id while "
            f"online.")
    local = check_source(where, flag)
    if not local and where not in _ANNOUNCED:
        _ANNOUNCED.add(where)
        cached = " (datasets' cached copy: the Hub is offline)" if constants.HF_HUB_OFFLINE else ""
        print(f"cifake: {where!r} is no folder here: reading the Hub dataset {where}{cached}", file=sys.stderr)
    with loading("the dataset", where, hint, verb="open"):
        try:
            dataset = datasets.load_dataset(where, split=split, streaming=streaming)
        except ValueError as err:
            if "split" in str(err).lower():
                raise CifakeError(_no_such_split(where, split, split_flag)) from err
            raise
    dataset = _rename(dataset, columns, where)
    check_columns(dataset, where)
    return dataset


MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", RUN_FILE)  # beside config.json: a model, not data


def check_source(data: str | Path, flag: str = "--data") -> bool:
    """True for a folder here, False for a Hub dataset id (owner/name); CifakeError, naming `flag`, for
    anything else: a missing folder is never looked up on the Hub or in datasets' cache."""
    where = str(data)
    folder = Path(where).expanduser()
    if folder.exists():
        if (folder / "config.json").is_file() and any((folder / name).is_file() for name in MODEL_FILES):
            raise CifakeError(f"{where!r} ({flag}) is a model folder, not a dataset. Pass {flag} with a dataset folder "
                              f"(e.g. ./cifake, which `cifake build --demo` writes) or a Hub dataset id.")
        return True
    if "/" in where and is_hub_id(where):
        return False
    raise CifakeError(
        f"Cannot open the dataset {where!r} ({flag}): there is no such folder here, and it is no Hub dataset id "
        f"(owner/name). Pass {flag} with a dataset folder (e.g. ./cifake, which `cifake build --demo` writes) or a "
        f"Hub id."
    )


def _no_such_split(where: str, split: str, split_flag: str | None) -> str:
    import datasets

    try:
        have = datasets.get_dataset_split_names(where)
    except Exception:  # the names are only for the message
        have = []
    which = f" (it has {', '.join(have)})" if have else ""
    if split_flag:
        return f"Dataset {where!r} has no split {split!r}{which}. Pass {split_flag} with one it has."
    if split == "train":
        return (f"Dataset {where!r} has no train split{which}: training needs one. A test-only dataset (import-folder "
                f"--test-fraction 1) is for `cifake evaluate`; train on a dataset with a train split.")
    return f"Dataset {where!r} has no {split} split{which}, which this command needs."


def hub_dataset_id(data: str | Path) -> str | None:
    """`data` when it was read from the Hub (no folder here by that name), else None: what a report
    records, so that a card never takes a relative folder, read elsewhere later, for a Hub id."""
    return None if Path(str(data)).expanduser().exists() else str(data)


def _rename(dataset, columns: Columns, where: str):
    names = list(dataset.features or {})
    renames = {old: new for old, new in ((columns.image, "image"), (columns.label, "label")) if old != new}
    if columns.label not in names and columns.image in names and getattr(dataset.info, "builder_name", "") == "imagefolder":
        classes = sorted({part for path in Path(where).expanduser().glob("**/*") if path.is_dir()
                          for part in [path.name] if part.lower() not in ("train", "test", "validation")})
        raise CifakeError(
            f"{where!r} is a folder of images whose labels come from its subfolders' names, and it has one kind only "
            f"({', '.join(classes) or 'no subfolders'}): datasets gives no labels then. Put the generated images in a "
            f"folder named FAKE beside the REAL one (any case), or import both with `cifake import-folder --real DIR "
            f"--fake DIR`."
        )
    for old, flag in ((columns.image, "--image-column"), (columns.label, "--label-column")):
        if old not in names:
            raise CifakeError(f"Dataset {where!r} has no column {old!r} ({flag}); its columns are {names}. A CIFAKE "
                              f"dataset has an image column and a label ClassLabel FAKE/REAL: build one with `cifake build`.")
    if not renames:
        return dataset
    taken = [new for old, new in renames.items() if new in names]
    dataset = dataset.remove_columns(taken) if taken else dataset  # a column already named image/label gives way
    return dataset.rename_columns(renames)


def check_columns(dataset, where: str) -> None:
    """Fail unless the `label` column (`_rename` made sure of both columns) holds REAL/FAKE labels, in any case."""
    from datasets import ClassLabel

    label = dataset.features["label"]
    if not isinstance(label, ClassLabel) or sorted(name.upper() for name in label.names) != sorted(LABEL_NAMES):
        names = label.names if isinstance(label, ClassLabel) else type(label).__name__
        raise CifakeError(
            f"Dataset {where!r} has labels {names}, not the ClassLabel names {LABEL_NAMES} (in any case). "
            f"Use a CIFAKE dataset (or rename its classes to FAKE and REAL), or name its label column with --label-column."
        )
    if label.names != [name.upper() for name in label.names] and f"labels:{where}" not in _ANNOUNCED:
        _ANNOUNCED.add(f"labels:{where}")
        mapping = ", ".join(f"{name} as {name.upper()}" for name in label.names)
        print(f"cifake: {where!r}: its labels are read by name, whatever their case: {mapping}", file=sys.stderr)


def load_pixels(data: str | Path, split: str, image_processor=None, cache: bool = True,
                columns: Columns = DEFAULT_COLUMNS, flag: str = "--data", split_flag: str | None = "--split") -> CifakePixels:
    """Every image of `split` as uint8 tensors, decoded once and cached beside datasets' cache (see
    `open_split` for `flag` and `split_flag`)."""
    from datasets import Image as ImageFeature

    dataset = open_split(data, split, columns=columns, flag=flag, split_flag=split_flag)
    path = _cache_path(dataset, split) if cache else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as stored:
                return _from_arrays(stored, dataset, str(data))
        except (OSError, ValueError, KeyError) as err:  # a torn cache file is rebuilt, not trusted
            logger.warning("Decoded-image cache %s is unreadable (%s); decoding again.", path, err)
    raw = dataset.cast_column("image", ImageFeature(decode=False))
    pixels = np.empty((len(raw), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)

    with tqdm(total=len(raw), desc=f"Decoding {split} images (once; cached)", unit="img", disable=len(raw) < 5000) as bar:
        for start in range(0, len(raw), _DECODE_BATCH):
            stop = min(start + _DECODE_BATCH, len(raw))
            images = raw.data.column("image").slice(start, stop - start).to_pylist()
            for i, image in enumerate(images):
                pixels[start + i] = decode_to_pixels(image, image_processor, where=f"{data} [{split} #{start + i}]")
            bar.update(stop - start)
    arrays = {"pixels": pixels, "labels": _labels(dataset), "classes": _classes(dataset)}
    if path is not None:  # several processes may decode at once (multi-GPU): each writes its own file
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    return _from_arrays(arrays, dataset, str(data))


def decode_to_pixels(image: dict, image_processor=None, where: str = "image") -> np.ndarray:
    """(3, 32, 32) uint8 pixels of one stored image ({"bytes", "path"} as datasets stores it). A file is
    checked for size before it is read, and a decompression bomb is refused, not decoded."""
    source = io.BytesIO(image["bytes"]) if image.get("bytes") is not None else image["path"]
    try:
        if not isinstance(source, io.BytesIO) and (size := os.stat(source).st_size) > MAX_IMAGE_FILE_BYTES:
            raise CifakeError(
                f"{where} ({source}) is a {size / 2**20:,.0f} MB file, more than an image can be here "
                f"({MAX_IMAGE_FILE_BYTES >> 20} MB); it was not read. Remove it from the dataset."
            )
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                rgb = to_rgb(opened)
    except CifakeError:
        raise
    except Image.UnidentifiedImageError as err:  # its message names an in-memory buffer by address
        raise CifakeError(f"Cannot decode {where}: it is not image data. Rebuild or re-import the dataset.") from err
    except Exception as err:  # PIL raises many types for bad data
        raise CifakeError(f"Cannot decode {where} ({type(err).__name__}: {err}). Rebuild or re-import the dataset.") from err
    if rgb.size == (IMAGE_SIZE, IMAGE_SIZE):
        return np.array(rgb, dtype=np.uint8).transpose(2, 0, 1)
    if image_processor is None:
        raise CifakeError(f"{where} is {rgb.size[0]}x{rgb.size[1]}, not 32x32, and no image processor was given to resize it.")
    resized = image_processor(rgb, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0]
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def stratified_split(pixels: CifakePixels, fraction: float, seed: int) -> tuple[CifakePixels, CifakePixels]:
    """Carve a validation set from training data: `fraction` of every (label, class) group."""
    if not 0.0 < fraction < 1.0:
        raise CifakeError(f"--validation_fraction must be between 0 and 1 (exclusive), got {fraction}.")
    rng = np.random.default_rng(seed)
    groups = pixels.labels.numpy() * 1000 + pixels.classes.numpy()
    keep, held = [], []
    for group in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == group))
        n = int(round(len(members) * fraction))
        if len(members) > 1:
            n = min(max(n, 1), len(members) - 1)
        held += list(members[:n])
        keep += list(members[n:])
    if not held:
        raise CifakeError("The training split is too small to hold out a validation set; use more data.")
    return pixels.subset(np.sort(keep)), pixels.subset(np.sort(held))


OTHER_FAMILY = "other"  # the family of a FAKE image whose generator_id names none of GENERATOR_FAMILIES


def families_of(pixels: CifakePixels) -> list[str | None]:
    """Each image's generator family (`generator_family`, else OTHER_FAMILY); None for REAL images."""
    ids = pixels.generator_ids or [None] * len(pixels)
    return [(generator_family(g) or OTHER_FAMILY) if label == FAKE else None
            for label, g in zip(pixels.labels.tolist(), ids)]


def fake_families(pixels: CifakePixels) -> list[str]:
    """The generator families of `pixels`' FAKE images, in GENERATOR_FAMILIES' order, OTHER_FAMILY last."""
    found = set(families_of(pixels)) - {None}
    return [family for family in [name for name, _ in GENERATOR_FAMILIES] + [OTHER_FAMILY] if family in found]


def family_targets(pixels: CifakePixels, families: list[str]) -> torch.Tensor:
    """A family head's targets (`CifakeForImageClassification`'s `family_targets`): 0 for REAL, 1 + the
    index in `families` for FAKE."""
    index = {family: i + 1 for i, family in enumerate(families)}
    return torch.tensor([0 if family is None else index[family] for family in families_of(pixels)], dtype=torch.long)


class CifakeTensorDataset(torch.utils.data.Dataset):
    """Examples from decoded tensors, a whole batch at once (`__getitems__`); with `augment`, randomly
    flipped and cropped from a padded copy (`augment_batch`), as the usual CIFAR recipe does. With
    `families` (a family head's), each example carries its `family_targets` too."""

    def __init__(self, pixels: CifakePixels, augment: bool = False, seed: int = 0, crop_padding: int = 4,
                 families: list[str] | None = None):
        self.pixels, self.labels = pixels.pixels, pixels.labels
        self.families = family_targets(pixels, families) if families else None
        self.augment, self.crop_padding = augment, crop_padding
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> dict:
        index = torch.as_tensor(indices, dtype=torch.long)
        images = self.pixels[index]
        if self.augment:
            images = augment_batch(images, self.generator, self.crop_padding)
        batch = {"pixel_values": images, "labels": self.labels[index]}
        if self.families is not None:
            batch["family_targets"] = self.families[index]
        return batch


def augment_batch(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random horizontal flips and (`pad` > 0) padded random crops of a uint8 batch (B, C, H, W)."""
    batch, _, height, width = images.shape
    flip = torch.rand(batch, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if pad == 0:
        return images
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    rows = (dy[:, None] + torch.arange(height))[:, None, :, None].expand(-1, images.shape[1], -1, width + 2 * pad)
    cropped = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(width))[:, None, None, :].expand(-1, images.shape[1], height, -1)
    return cropped.gather(3, cols)


class CifakeCollator:
    """uint8 batches -> `pixel_values` normalised exactly as the image processor normalises."""

    def __init__(self, image_processor):
        mean = torch.tensor(image_processor.image_mean, dtype=torch.float32)[None, :, None, None]
        std = torch.tensor(image_processor.image_std, dtype=torch.float32)[None, :, None, None]
        self.scale = image_processor.rescale_factor / std
        self.shift = -mean / std

    def __call__(self, batch) -> dict:
        if isinstance(batch, list):  # per-example items (streaming, or a sampler without __getitems__)
            whole = len(batch) == 1 and batch[0]["pixel_values"].ndim == 4
            batch = batch[0] if whole else torch.utils.data.default_collate(batch)
        return {"pixel_values": self.normalize(batch["pixel_values"]), "labels": batch["labels"],
                **({"family_targets": batch["family_targets"]} if "family_targets" in batch else {})}

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, pixels.float(), self.scale)


class StreamingCifake(torch.utils.data.IterableDataset):
    """Decode-as-you-go examples from a streamed split, for data that does not fit in memory."""

    def __init__(self, dataset, image_processor=None, augment: bool = False, seed: int = 0, where: str = "stream",
                 crop_padding: int = 4):
        self.dataset, self.image_processor, self.where = dataset, image_processor, where
        self.augment, self.seed, self.crop_padding = augment, seed, crop_padding
        self.label_map = _label_map(dataset)

    def __iter__(self):
        from datasets import Image as ImageFeature

        generator = torch.Generator().manual_seed(self.seed)
        for n, example in enumerate(self.dataset.cast_column("image", ImageFeature(decode=False))):
            pixels = torch.from_numpy(decode_to_pixels(example["image"], self.image_processor, f"{self.where} #{n}"))
            if self.augment:
                pixels = augment_batch(pixels[None], generator, self.crop_padding)[0]
            yield {"pixel_values": pixels, "labels": self.label_map[example["label"]]}


def _label_map(dataset) -> dict[int, int]:
    """Dataset label id -> kit label id (FAKE=0, REAL=1), by name, whatever its case."""
    names = dataset.features["label"].names
    return {i: LABEL_NAMES.index(name.upper()) for i, name in enumerate(names)}


def _labels(dataset) -> np.ndarray:
    mapping = _label_map(dataset)
    raw = dataset.data.column("label").to_numpy()
    return np.vectorize(mapping.get, otypes=[np.int64])(raw) if len(raw) else raw.astype(np.int64)


def _classes(dataset) -> np.ndarray:
    if "cifar10_class" not in dataset.features:
        return np.full(len(dataset), -1, dtype=np.int64)
    return dataset.data.column("cifar10_class").fill_null(-1).to_numpy().astype(np.int64)  # null: class unknown


def _from_arrays(arrays, dataset, source: str) -> CifakePixels:
    return CifakePixels(
        torch.from_numpy(np.ascontiguousarray(arrays["pixels"])),
        torch.from_numpy(np.asarray(arrays["labels"], dtype=np.int64)),
        torch.from_numpy(np.asarray(arrays["classes"], dtype=np.int64)),
        list(getattr(dataset.features.get("cifar10_class"), "names", []) or []),
        source,
        sorted(g for g in dataset.unique("generator_id") if g) if "generator_id" in dataset.features else [],
        dataset.data.column("generator_id").to_pylist() if "generator_id" in dataset.features else None,
        _image_ids(dataset),
        stored_encoding(dataset),
    )


def stored_encoding(dataset) -> str | None:
    """"cifake-jpeg" when 64 images spread through the split are all stored as CIFAKE's JPEGs
    (`cifake_kit.codec`), else None: what a model trained on them records as `input_encoding`."""
    column = dataset.data.column("image")
    if not len(dataset):
        return None
    picks = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, min(64, len(dataset)))})
    try:
        stored = [column[i].as_py() for i in picks]
        found = {encoding_of(item["bytes"]) if isinstance(item, dict) and item.get("bytes") else None for item in stored}
    except Exception:  # noqa: BLE001 - not a bytes/path struct, or bytes PIL cannot open: no claim about the codec
        return None
    return found.pop() if len(found) == 1 else None


def _image_ids(dataset) -> list[str]:
    """The stored file name of every image (its `path` in datasets' Image struct), "" when none."""
    column = dataset.data.column("image")
    try:
        paths = column.combine_chunks().field("path").to_pylist()
    except (AttributeError, KeyError, TypeError):  # not a bytes/path struct
        return [""] * len(dataset)
    return [p or "" for p in paths]


def _cache_path(dataset, split: str) -> Path | None:
    files = getattr(dataset, "cache_files", None)
    if not files:
        return None
    return Path(files[0]["filename"]).parent / f"cifake-pixels-v{_CACHE_VERSION}-{split}-{dataset._fingerprint}.npz"
