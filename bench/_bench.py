"""What the bench scripts share: the header each prints (machine, versions, date), the common
arguments and environment, Markdown tables, timing statistics, and inputs from ../shared/data.

The benches that use `write_test_folder` measure speed, not accuracy: its FAKE-labelled images are
the same photos with a faint fixed pattern, not generated images of any kind.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import os
import platform
import shutil
import statistics
import tempfile
import time
from importlib.metadata import distributions
from pathlib import Path

import numpy as np

from cifake_kit.schema import CIFAR10_CLASSES, PROVENANCE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["torch", "torchvision", "datasets", "transformers", "diffusers", "accelerate", "pillow", "pyarrow",
            "huggingface_hub"]
OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def header(title: str) -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as handle:
        cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    lines = [
        f"# {title}",
        f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC | {cpu} | {os.cpu_count()} cores | "
        f"Python {platform.python_version()}",
    ]
    import torch

    if torch.cuda.is_available():
        lines.append(f"# GPU: {torch.cuda.get_device_name()} | CUDA {torch.version.cuda}")
    installed = {d.metadata["Name"].lower().replace("-", "_"): d.version for d in distributions()}
    lines.append("# " + " | ".join(f"{name} {installed[name]}" for name in PACKAGES if name in installed))
    return "\n".join(lines)


def arguments(doc: str, data: bool = False) -> argparse.ArgumentParser:
    """A bench's parser: its docstring's first line and --shared (with `data`, --data too)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    if data:
        parser.add_argument("--data", type=Path, help="a dataset folder (default: the genuine task of --shared)")
    return parser


def scratch(name: str) -> Path:
    """A temporary folder for this run, deleted when the bench exits (after an error too)."""
    work = Path(tempfile.mkdtemp(prefix=f"cifake-bench-{name}-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work


def offline(**more: str) -> None:
    """Offline and without progress bars, as `cifake` runs; `more` variables too; what is set stays."""
    for name, value in {**dict.fromkeys(OFFLINE, "1"), **more}.items():
        os.environ.setdefault(name, value)


def table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def fmt(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def mean_sd(values, spec: str = ".2f") -> str:
    """"mean ± sd" of `values` in the format `spec` (sd 0 for one value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{spec}} ± {sd:{spec}}"


def percentiles(samples, *qs: float) -> list[float]:
    """The percentiles `qs` of `samples`, each an observed value (numpy's "nearest" method), as p50 / p95 are reported."""
    return [float(np.percentile(samples, q, method="nearest")) for q in qs]


def like_cifake(**more: str) -> bool:
    """Offline, quiet (`more` variables too), glibc's allocator as `cifake` sets it; whether that took."""
    from cifake_kit.runtime import keep_freed_memory

    offline(**more)
    return keep_freed_memory()


def timed(call, *args, **kwargs) -> tuple[float, object]:
    """(wall seconds, result) of `call(*args, **kwargs)`, GPU work included (the timer stops when the GPU is done,
    not when the work is queued), freeing the result not timed."""
    import torch

    start = time.perf_counter()
    result = call(*args, **kwargs)
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # no CUDA context made inside a timed region
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def seconds(call, *args, **kwargs) -> float:
    return timed(call, *args, **kwargs)[0]


def photo_files(shared: Path) -> list[tuple[Path, int]]:
    """The 10,000 CIFAR-10 test JPEGs of ../shared/data and their classes."""
    root = shared / "data" / "cifar10-test-jpeg"
    return [(p, c) for c, name in enumerate(CIFAR10_CLASSES) for p in sorted((root / name).glob("*.jpg"))]


def decoded_photos(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    """(10000, 32, 32, 3) uint8 and their CIFAR-10 classes."""
    from PIL import Image

    files = photo_files(shared)
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p, _ in files])
    return pixels, np.array([c for _, c in files])


def write_test_folder(shared: Path, out: Path) -> Path:
    """A 20,000-image CIFAKE-layout folder (test split only): the 10,000 photos as REAL (their own
    JPEG bytes) and the same photos plus a faint pattern, JPEG q75, as FAKE."""
    from datasets import Dataset

    from dataset_builder.export import write_dataset_folder
    from dataset_builder.features import cifake_features
    from dataset_builder.imaging import encode_image

    files = photo_files(shared)
    pixels, _ = decoded_photos(shared)
    pattern = ((np.indices((32, 32)).sum(0) % 2) * 6 - 3)[..., None].astype(np.int16)
    rows = []
    for (path, c), photo in zip(files, pixels):
        faked = encode_image(np.clip(photo + pattern, 0, 255).astype(np.uint8))
        for label, data in ((1, path.read_bytes()), (0, faked)):
            rows.append({"image": {"bytes": data, "path": path.name}, "label": label, "cifar10_class": c,
                         **dict.fromkeys(PROVENANCE_COLUMNS)})
    table = Dataset.from_list(rows, features=cifake_features()).data.table
    (out / ".work").mkdir(parents=True, exist_ok=True)
    write_dataset_folder({"test": [table]}, out, "Benchmark fixture (not generated images).", out / ".work")
    return out
