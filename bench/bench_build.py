"""Imports at full size against the floor of the same work, and the time `load_dataset` takes to open the result.

Two imports, each measured side by side with its floor in the same run:
- `import-kaggle`: 120,000 files laid out under the published CIFAKE names
  (../shared/data/cifake-filelists), filled with the real CIFAR-10 test JPEGs from ../shared/data,
  cycling through the 10,000 photos (FAKE-folder files are photos too: this measures the
  converter, not the data).
- `import-folder`: the whole shared set, the 10,000 CIFAR-10 test JPEGs as REAL and the 2,116
  genuine generated PNGs of ../shared/data/generated as FAKE (4 sources), default encoder.

The floor is the least any importer must do with the same files: list them, read each one,
decode it completely, and write the bytes to one Parquet file, on all cores (a process pool over
chunks, as the import itself works). The ratio import / floor is the target (<= 1.3 for import-kaggle).
Then `load_dataset` opens the Kaggle import twice: cold (builds datasets' Arrow cache) and warm.

    python bench/bench_build.py [--shared ../shared] [--work /tmp/cifake-bench] [--repeat 3]
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _bench import arguments, header, mean_sd, photo_files, scratch, seconds, table, timed

FLOOR_CHUNK = 1024


def lay_out(shared: Path, root: Path) -> int:
    photos = [p.read_bytes() for p, _ in photo_files(shared)]
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


def _read_and_decode(paths: list[str]) -> list[bytes]:
    from PIL import Image

    out = []
    for path in paths:
        with open(path, "rb") as handle:  # the floor reads as plainly as it can: no Path per file
            data = handle.read()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        out.append(data)
    return out


def list_files(roots: list[Path], suffixes: tuple[str, ...]) -> list[str]:
    return sorted(os.path.join(folder, name) for root in roots for folder, _, names in os.walk(root)
                  for name in names if name.lower().endswith(suffixes))


def floor(roots: list[Path], suffixes: tuple[str, ...], target: Path) -> float:
    """Seconds to list, read + decode every file on all cores, and write the bytes to one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    paths = list_files(roots, suffixes)
    chunks = [paths[i : i + FLOOR_CHUNK] for i in range(0, len(paths), FLOOR_CHUNK)]
    writer = None
    with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        for blobs in pool.map(_read_and_decode, chunks):
            table = pa.table({"image": pa.array(blobs, pa.binary())})
            writer = writer or pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
    writer.close()
    return time.perf_counter() - start


def main():
    parser = arguments(__doc__)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = args.work or scratch("build")
    work.mkdir(parents=True, exist_ok=True)
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")  # a cold cache we control
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # as `cifake` runs

    from datasets import load_dataset

    from dataset_builder.build import import_folders, import_kaggle

    print(header("CIFAKE kit: imports against their floor, and open (bench/bench_build.py)"))
    kaggle = work / "kaggle"
    if not kaggle.exists():
        took, files = timed(lay_out, args.shared, kaggle)
        print(f"# laid out {files} files in {took:.1f} s (not timed below)")
    generated = args.shared / "data" / "generated"
    fakes = sorted(p for p in generated.iterdir() if p.is_dir())
    real = args.shared / "data" / "cifar10-test-jpeg"
    jobs = {  # name: (the import, what its floor lists)
        "kaggle": (lambda out: import_kaggle(kaggle, output_dir=out), [kaggle], (".jpg",)),
        "folder": (lambda out: import_folders([real], [str(p) for p in fakes], output_dir=out), [real, *fakes],
                   (".jpg", ".png")),
    }
    counts = {name: len(list_files(roots, suffixes)) for name, (_, roots, suffixes) in jobs.items()}

    # Warm-up, not timed: every file read once (the page cache holds them for both sides alike), and
    # one import of each kind (process pools, imports and lazy setup paid once).
    for _, (do, roots, suffixes) in jobs.items():
        floor(roots, suffixes, work / "floor.parquet")
        _timed(do, work / "warm-up")
        shutil.rmtree(work / "warm-up")
    results = {name: [] for name in ("kaggle", "kaggle floor", "folder", "folder floor", "cold", "warm")}
    for run in range(args.repeat):
        # Alternate the order of import and floor: neither always meets a warmer page cache.
        for what, (do, roots, suffixes) in jobs.items():
            out = work / f"{what}{run}"
            for step in ("floor", "import") if run % 2 else ("import", "floor"):
                if step == "floor":
                    results[what + " floor"].append(floor(roots, suffixes, work / "floor.parquet"))
                else:
                    results[what].append(_timed(do, out))
            if what == "kaggle":
                results["cold"].append(seconds(load_dataset, str(out)))
                took, ds = timed(load_dataset, str(out))
                results["warm"].append(took)
                assert sum(len(d) for d in ds.values()) == 120_000, {k: len(v) for k, v in ds.items()}
                size = sum(p.stat().st_size for p in (out / "data").iterdir())
                del ds
            shutil.rmtree(out)
            shutil.rmtree(work / "hf-cache", ignore_errors=True)

    print(f"\nn = {args.repeat} runs (mean ± sd); import-kaggle writes {size / 1e6:.0f} MB of Parquet")
    for what in ("kaggle", "folder"):
        print(f"# {what} runs, import / floor (s): " + ", ".join(f"{a:.2f} / {b:.2f}"
                                                         for a, b in zip(results[what], results[what + " floor"])))
    rows = []
    for what, name, target in (("kaggle", "import-kaggle", 1.3), ("folder", "import-folder (shared set)", None)):
        ratio = statistics.mean([a / b for a, b in zip(results[what], results[what + " floor"])])
        verdict = "" if target is None else (f"<= {target} " + ("ok" if ratio <= target else "OVER"))
        rows.append([name, f"{counts[what]:,}", mean_sd(results[what]) + " s", mean_sd(results[what + " floor"]) + " s",
                     f"{ratio:.2f}", verdict])
    for name, key in (("load_dataset, cold cache", "cold"), ("load_dataset, warm cache", "warm")):
        ok = "ok" if statistics.mean(results[key]) <= 2 else "OVER"
        rows.append([name, "120,000", mean_sd(results[key]) + " s", "", "", f"<= 2 s {ok}"])
    print("\n" + table(["job", "files", "import", "floor (read + decode + write, all cores)", "ratio", "target"], rows))


def _timed(call, out) -> float:
    elapsed, report = timed(call, out)
    assert not [p for p in report.problems if "provenance.csv" not in p[0]], report.problems[:3]
    return elapsed


if __name__ == "__main__":
    main()
