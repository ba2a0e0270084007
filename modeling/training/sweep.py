"""`cifake sweep`: train the paper's 36 topologies (`OUT/<name>/`, with `train.train`) and write its
comparison table from `OUT/results.jsonl`. A rerun skips finished topologies and resumes a cut one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.outputs import check_output_dir, settings_changes, write_json
from modeling.data import open_split
from modeling.layout import REPORT_DIR, REPORT_JSON, RUN_FILE
from modeling.recipes import paper_topologies
from modeling.scoring.report import metrics_table
from modeling.training.arguments import split_fields
from modeling.training.runs import pending_replacement
from modeling.training.train import train

RESULTS = "results.jsonl"
SETTINGS = "sweep.json"  # the data and settings every row of the folder was trained with
COLUMNS = [
    "topology", "conv_filters", "dense_units", "parameters", "epochs_run", "roc_auc", "average_precision", "accuracy",
    "accuracy_at_threshold",
    "precision_fake", "recall_fake", "f1_fake", "precision_real", "recall_real", "f1_real",
    "macro_f1", "train_seconds",
]


def sweep(
    data: str = "cifake",
    output_dir: str | Path = "cifake-sweep",
    topologies: list[str] | None = None,
    seed: int = 0,
    **train_options,
) -> Path:
    """Train `topologies` (default: all 36) on `data`; return the Markdown table's path."""
    split_fields({"seed": seed, **train_options})  # its numbers checked before anything is written
    grid = paper_topologies()
    names = topologies or list(grid)
    unknown = [n for n in names if n not in grid]
    if unknown:
        raise CifakeError(f"Unknown topologies {unknown}. The 36 are: {', '.join(grid)}.")
    out = Path(output_dir).expanduser()
    check_output_dir(out, ours=lambda folder: (folder / RESULTS).exists() or (folder / SETTINGS).exists()
                     or any((folder / n).is_dir() for n in grid),
                     kit_names=[RESULTS, SETTINGS, "results.md", "results.csv", *grid])
    open_split(data, "train", split_flag=None)  # a missing, empty or test-only dataset: refused before anything is written
    settings = {"data": data_name(data), "seed": seed, **train_options}
    started = read_rows(out) or any((out / n).is_dir() for n in grid)  # else the settings of a sweep that trained nothing
    changed = settings_changes(out / SETTINGS, settings) if started else []
    if changed:
        raise CifakeError(
            f"{str(out)!r} holds a sweep with other settings ({', '.join(changed)}): its finished rows would stand for "
            f"runs that were never made with these. Run it again with its own settings to resume it, or choose another "
            f"--output-dir."
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SETTINGS, settings)
    done = {row["topology"]: row for row in read_rows(out)}
    for position, name in enumerate(names, 1):
        if name in done:
            print(f"[{position}/{len(names)}] {name}: done earlier, accuracy {done[name]['accuracy']:.2%}")
            continue
        report_path = out / name / REPORT_DIR / REPORT_JSON
        if not report_path.is_file():  # a finished run whose row was not written yet is not redone
            print(f"[{position}/{len(names)}] {name}: training")
            replacement = pending_replacement(out / name)  # a restart of this topology that was cut in turn
            if replacement is not None and any(replacement.glob("checkpoint-*")):
                resume = overwrite = True
            else:
                resume = (out / name / RUN_FILE).is_file() and any((out / name).glob("checkpoint-*"))
                overwrite = not resume
            train(data=data, output_dir=out / name, config=name, seed=seed, resume=resume, overwrite=overwrite,
                  **train_options)
        row = _row(name, grid[name]["model"], json.loads(report_path.read_text()))
        with open(out / RESULTS, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        done[name] = row
        write_tables(out, [done[n] for n in grid if n in done], settings)
    rows = [done[n] for n in grid if n in done]
    return write_tables(out, rows, settings)


def _settings_line(settings: dict | None) -> str:
    if not settings:
        return ""
    given = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in settings.items() if key != "data" and
                      value is not None)
    return f"Data: `{settings['data']}`; {given} (others: each topology's recipe).\n\n"


def _row(name: str, model: dict, report: dict) -> dict:
    metrics = report["metrics"]
    return {
        "topology": name,
        "conv_filters": "-".join(map(str, model["conv_filters"])),
        "dense_units": "-".join(map(str, model["dense_units"])) or "none",
        "parameters": report["parameters"],
        "epochs_run": report["epochs_run"],
        **{k: v for k, v in metrics.items() if isinstance(v, float)},
        "split": report["split"],
        "train_seconds": round(float(report["train_metrics"].get("train_runtime", 0.0)), 1),
    }


def read_rows(out: Path) -> list[dict]:
    rows = []
    for line in (out / RESULTS).read_text().splitlines() if (out / RESULTS).is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a kill: that topology runs again
            continue
    return rows


def data_name(data) -> str:
    """The data as a rerun names it: a local folder by its full path, a Hub id as it is."""
    path = Path(str(data)).expanduser()
    return str(path.resolve()) if path.exists() else str(data)


def write_tables(out: Path, rows: list[dict], settings: dict | None = None) -> Path:
    """results.md (the paper's comparison, best first marked; headed by the data and settings) and results.csv."""
    best = max(rows, key=lambda row: (row.get("accuracy") or 0.0, row.get("roc_auc") or 0.0),
               default={}).get("topology")
    marked = [{**row, "topology": row["topology"] + (" **(best)**" if row["topology"] == best else "")} for row in rows]
    split = rows[0].get("split", "test") if rows else "test"
    text = (
        f"# CIFAKE topology sweep\n\n{_settings_line(settings)}Metrics on the {split} split; ROC AUC, average precision and `_fake` columns "
        f"take FAKE as the positive class, `_real` columns REAL; `accuracy` is at P(FAKE) = 0.5, "
        f"`accuracy_at_threshold` at each model's threshold chosen on its validation split. Best: highest "
        f"accuracy (ROC AUC breaks ties). {len(rows)} of 36 topologies trained.\n\n" + metrics_table(marked, COLUMNS) + "\n"
    )
    (out / "results.md").write_text(text)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return out / "results.md"
