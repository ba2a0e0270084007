"""The FAKE half: a diffusers text-to-image pipeline, batched, seeded per image, resumable.

The plan, items (split, CIFAR-10 class, index), is cut into shards kept in a `shards.ShardStore` (under
`accelerate launch` each process takes every N-th shard). Images are kept as raw 32x32 pixels: they are
encoded once, later, by the encoder the real photos go through.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np

from cifake_kit.errors import CifakeError
from cifake_kit.hub import loading
from cifake_kit.runtime import process_state, verbose
from cifake_kit.schema import CIFAR10_CLASSES, DEMO_GENERATOR_ID, IMAGE_SIZE, SPLITS

from .features import CIFAKE_GENERATOR_ID
from .imaging import downscale
from .prompts import prompt_for, seed_for
from .shards import ShardStore
from .tiny_generator import make_tiny_pipeline

DEFAULT_GENERATOR = CIFAKE_GENERATOR_ID
TINY_GENERATOR = "tiny-random"  # built in process by tiny_generator.py, no download
MAX_ATTEMPTS = 10  # generations per image before a safety-checker blank is an error
_SHARD_COLUMNS = ["split", "cifar10_class", "index", "seed", "prompt", "attempts", "pixels"]


@dataclass(frozen=True)
class FakeItem:
    split: str
    class_idx: int
    index: int  # rank of the image within its split and class


@dataclass(frozen=True)
class GenerationSettings:
    """All of it is what a resumed build must match (batched float arithmetic rounds differently, so a seed gives
    the same bytes only at the same batch size)."""

    generator: str = DEFAULT_GENERATOR
    num_inference_steps: int = 50
    guidance_scale: float = 7.5
    seed: int = 0
    resolution: int | None = None  # None: the pipeline's native size (512 for SD v1.4)
    batch_size: int = 8
    shard_size: int = 256  # rounded up to whole batches

    @property
    def images_per_shard(self) -> int:
        return -(-self.shard_size // self.batch_size) * self.batch_size


def plan_fakes(counts: dict[str, int]) -> list[FakeItem]:
    """Every FAKE image of a build, in a fixed order: split, then class, then index."""
    return [FakeItem(split, class_idx, index) for split in SPLITS for class_idx in range(len(CIFAR10_CLASSES))
            for index in range(counts[split])]


def generator_id(generator: str) -> str:
    """How a generator is recorded in the dataset: a Hub id as is, a local folder by its name."""
    if generator == TINY_GENERATOR:
        return DEMO_GENERATOR_ID
    path = Path(generator).expanduser()
    return f"local:{path.resolve().name}" if path.exists() else generator


def load_generator(generator: str, device=None):
    """A diffusers text-to-image pipeline (Hub id, pipeline folder, or `tiny-random`), CUDA fp16 or CPU fp32."""
    import torch

    if device is None:
        device = process_state().device
    device = torch.device(device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    pipe = (make_tiny_pipeline() if generator == TINY_GENERATOR else _from_pretrained(generator, dtype)).to(device)
    if device.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _from_pretrained(generator: str, dtype):
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    path = Path(generator).expanduser()
    check_pipeline_folder(path)
    if path.exists():
        _require_safetensors(path)
    if not verbose():
        diffusers_logging.disable_progress_bar()  # "Loading pipeline components": the build shows its own bar
    with loading("the generator", generator, generator_hint(generator)):
        # Safetensors only, from a folder or the Hub: pickled weights (.bin) can run code when loaded.
        return AutoPipelineForText2Image.from_pretrained(str(path) if path.exists() else generator, dtype=dtype,
                                                         use_safetensors=True)


def check_pipeline_folder(path: Path) -> None:
    """Refuse an existing folder that is not a diffusers pipeline (a path that does not exist may be a Hub id)."""
    if path.exists() and not (path / "model_index.json").is_file():
        raise CifakeError(f"Generator folder {str(path)!r} has no model_index.json: it is not a diffusers pipeline. "
                          f"Pass a folder written by `pipeline.save_pretrained(...)`, or a Hub id.")


def generator_hint(generator: str) -> str:
    """What to do when `generator` cannot be loaded, for `cifake_kit.hub.loading`."""
    return (f"Pass --generator PATH to a local diffusers pipeline folder, download it first with "
            f"`hf download {generator}` while online, or use --generator {TINY_GENERATOR} for the offline toy "
            f"pipeline.")


_PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _require_safetensors(folder: Path) -> None:
    """Refuse a pipeline folder any part of which has its weights only as pickle files."""
    for part in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = [f.name for f in part.iterdir() if f.is_file()]
        pickled = [name for name in files if name.endswith(_PICKLED_WEIGHTS)]
        if pickled and not any(name.endswith(".safetensors") for name in files):
            raise CifakeError(f"Generator folder {str(folder)!r} holds {part.name}'s weights only as a pickle file "
                              f"({part.name}/{pickled[0]}), which can run code when loaded; the kit loads safetensors "
                              "only. If you trust it, convert it once: "
                              "DiffusionPipeline.from_pretrained(folder).save_pretrained(new_folder) writes "
                              "safetensors.")


class FakeStore(ShardStore):
    """Shards of generated pixels (`shard-NNNNNN.arrow`) plus per-process manifests, in one folder."""

    def write(self, shard_id: int, rows: dict[str, list], blank_regenerations: int) -> None:
        import pyarrow as pa

        files = self.write_files(shard_id, {"shard": pa.table(rows)})
        self.record(shard_id, files, rows=len(rows["index"]), blank_regenerations=blank_regenerations)

    def read_items(self, plan: list[FakeItem]) -> dict[FakeItem, dict]:
        """All generated images by item; fails unless every planned item is there exactly once."""
        found: dict[FakeItem, dict] = {}
        for path in self.files("shard"):
            for row in self.read(path).to_pylist():
                item = FakeItem(row["split"], row["cifar10_class"], row["index"])
                if item in found:
                    raise CifakeError(f"Generated image {item} appears twice in {self.folder}; rebuild with "
                                      f"--overwrite.")
                found[item] = row
        missing = [item for item in plan if item not in found]
        if missing:
            raise CifakeError(f"{len(missing)} generated images are missing from {self.folder} (first: {missing[0]}). "
                              f"Run the same build command again to finish them.")
        return found


def generate_fakes(plan: list[FakeItem], settings: GenerationSettings, store: FakeStore, pipe=None, state=None) -> dict:
    """Generate every item of `plan` not yet in `store`. Returns counts for the build report."""
    from tqdm.auto import tqdm

    if state is None:
        state = process_state()
    step = settings.images_per_shard  # whole batches, so a batch never depends on the shard cut
    shards = [plan[i : i + step] for i in range(0, len(plan), step)]
    done = store.completed()
    mine = [s for s in range(len(shards)) if s % state.num_processes == state.process_index]
    todo = [s for s in mine if s not in done]
    stats = {"generated": 0, "resumed": sum(done[s]["rows"] for s in mine if s in done), "blank_regenerations": 0}
    if todo:
        pipe = pipe if pipe is not None else load_generator(settings.generator, device=state.device)
        progress = tqdm(total=sum(len(shards[s]) for s in mine), initial=stats["resumed"], unit="img",
                        desc="Generating FAKE images", disable=not state.is_local_main_process)
        for shard_id in todo:
            rows, blanks = _generate_shard(pipe, shards[shard_id], settings, progress)
            store.write(shard_id, rows, blanks)
            stats["generated"] += len(shards[shard_id])
            stats["blank_regenerations"] += blanks
        progress.close()
    state.wait_for_everyone()
    stats["blank_regenerations"] += sum(done[s]["blank_regenerations"] for s in mine if s in done)
    return stats


def _generate_shard(pipe, items: list[FakeItem], settings: GenerationSettings, progress) -> tuple[dict, int]:
    rows = {column: [] for column in _SHARD_COLUMNS}
    blanks = 0
    for start in range(0, len(items), settings.batch_size):
        batch = items[start : start + settings.batch_size]
        prompts = [prompt_for(item.class_idx, item.index) for item in batch]
        attempts, seeds, images = [0] * len(batch), [0] * len(batch), [None] * len(batch)
        pending = list(range(len(batch)))
        while pending:
            for i in pending:
                seeds[i] = seed_for(settings.seed, *astuple(batch[i]), attempts[i])
            outputs = _run_pipeline(pipe, [prompts[i] for i in pending], [seeds[i] for i in pending], settings)
            still_pending = []
            flags = outputs.nsfw_content_detected or [False] * len(outputs.images)
            for i, image, flagged in zip(pending, outputs.images, flags):
                if flagged or not np.asarray(image).any():
                    blanks += 1
                    attempts[i] += 1
                    if attempts[i] >= MAX_ATTEMPTS:
                        raise CifakeError(f"The safety checker blanked image {batch[i]} {MAX_ATTEMPTS} times in a "
                                          f"row. Check the prompts in dataset_builder/prompts.py for this class.")
                    still_pending.append(i)
                else:
                    images[i] = downscale(image, IMAGE_SIZE)
            pending = still_pending
        for i, item in enumerate(batch):
            values = (*astuple(item), seeds[i], prompts[i], attempts[i] + 1, images[i].tobytes())
            for column, value in zip(_SHARD_COLUMNS, values):
                rows[column].append(value)
        progress.update(len(batch))
    return rows, blanks


def _run_pipeline(pipe, prompts: list[str], seeds: list[int], settings: GenerationSettings):
    import torch

    # One CPU generator per image: an image depends on its own seed only, whatever the batch.
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    size = settings.resolution
    with torch.inference_mode():
        return pipe(prompt=prompts, num_inference_steps=settings.num_inference_steps,
                    guidance_scale=settings.guidance_scale, generator=generators, height=size, width=size,
                    output_type="pil")
