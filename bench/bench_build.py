"""Kaggle import at full size, and the time `load_dataset` takes to open the result.

Lays out 120,000 files under the published CIFAKE names (../shared/data/cifake-filelists) and
fills them with the real CIFAR-10 test JPEGs from ../shared/data, cycling through the 10,000
photos (FAKE-folder files are photos too: this measures the converter, not the data). Then runs
`import_kaggle` and opens the result with `load_dataset` twice: cold (first open, which builds
datasets' Arrow cache) and warm.

Targets on the 2-core reference machine: import <= 30 s, open <= 2 s.

    python bench/bench_build.py [--shared ../shared] [--work /tmp/cifake-bench] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _header import header  # noqa: E402

from cifake_kit.schema import CIFAR10_CLASSES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def lay_out(shared: Path, root: Path) -> int:
    photos = [p.read_bytes() for c in CIFAR10_CLASSES for p in sorted((shared / "data" / "cifar10-test-jpeg" / c).glob("*.jpg"))]
    count = 0
    for label in ("REAL", "FAKE"):
        for split in ("train", "test"):
            folder = root / split / label
            folder.mkdir(parents=True)
            with open(shared / "data" / "cifake-filelists" / label / f"{split}.csv", newline="") as handle:
                for row in csv.DictReader(handle):
                    (folder / row["filename"]).write_bytes(photos[count % len(photos)])
                    count += 1
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    work = Path(args.work or tempfile.mkdtemp(prefix="cifake-bench-"))
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")  # a cold cache we control

    from datasets import load_dataset
    from datasets.utils.logging import disable_progress_bar

    from dataset_builder.build import import_kaggle

    disable_progress_bar()
    print(header("CIFAKE kit: Kaggle import and open (bench/bench_build.py)"))
    source = work / "kaggle"
    if not source.exists():
        t = time.perf_counter()
        files = lay_out(args.shared, source)
        print(f"# laid out {files} files in {time.perf_counter() - t:.1f} s (not timed below)")

    imports, colds, warms = [], [], []
    for run in range(args.repeat):
        out = work / f"out{run}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(work / "hf-cache", ignore_errors=True)
        t = time.perf_counter()
        report = import_kaggle(source, output_dir=out)
        imports.append(time.perf_counter() - t)
        t = time.perf_counter()
        ds = load_dataset(str(out))
        colds.append(time.perf_counter() - t)
        del ds
        t = time.perf_counter()
        ds = load_dataset(str(out))
        warms.append(time.perf_counter() - t)
        assert sum(len(d) for d in ds.values()) == 120_000, {k: len(v) for k, v in ds.items()}
        assert not report.problems, report.problems[:3]
        size = sum(p.stat().st_size for p in (out / "data").iterdir())
        shutil.rmtree(out)

    def row(name, values, target):
        mean, sd = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        verdict = "ok" if mean <= target else "OVER"
        return f"| {name} | {mean:.2f} ± {sd:.2f} s | {min(values):.2f} s | {target:.0f} s | {verdict} |"

    print(f"\n120,000 files -> {size / 1e6:.0f} MB of Parquet; n = {args.repeat} runs (mean ± sd, best)\n")
    print("| step | mean ± sd | best | target | |")
    print("|---|---|---|---|---|")
    print(row("import-kaggle (120,000 files)", imports, 30))
    print(f"| ... throughput | {120_000 / statistics.mean(imports):,.0f} files/s | | | |")
    print(row("load_dataset, cold cache", colds, 2))
    print(row("load_dataset, warm cache", warms, 2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
