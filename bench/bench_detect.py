"""Detection on genuine fakes: the kit's recipes against a hand-feature logistic baseline, in one run.

Task: the genuine task of ../shared (bench/_genuine.py: 2,116 real CIFAR-10 test photos against
the 2,116 images of 9 GANs and 8 DDPM samplers/checkpoints, one JPEG encoder for both halves, the
kit's stratified 80/20 split), or any dataset folder given with --data.

Baseline: logistic regression on hand features (log-FFT magnitude of the grey image pooled to 8x8,
high-pass residual energy, per-channel mean / std / percentiles), fitted on the training split
less a 10% validation part on which its threshold is chosen, exactly as `cifake train` does.
Recipes: trained with `modeling.training.train.train` as `cifake train --config NAME` runs them. With
--ablation, the forensic recipe is trained again without each of its parts (and with the colour
statistics it leaves out), and with a plain REAL/FAKE output in place of its family head. Every number comes
from the kit's own metric code (FAKE is the positive class).

    python bench/bench_detect.py [--ablation] [--recipes paper-best cifake-forensic] [--data DIR]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from _bench import arguments, fmt, header, table, timed
from _genuine import bench_task

DEFAULT_RECIPES = ["paper-best", "cifake-cnn-plus", "cifake-forensic"]
FORENSIC = "cifake-forensic"
# Ablation: the forensic recipe without one of its parts (model config fields switched off), and with a plain
# REAL/FAKE output instead of one output per generator family (a training field).
ABLATIONS = {
    "forensic - high-pass input": {"highpass_input": False},
    "forensic - spectrum": {"spectrum_size": 0},
    "forensic + image statistics": {"histogram_bins": 16},
    "forensic, conv stack only": {"highpass_input": False, "spectrum_size": 0},
    "forensic, flatten instead of mean/std pooling": {"global_pooling": "flatten"},
}
TRAINING_ABLATIONS = {"forensic, plain REAL/FAKE output": {"family_head": False}}  # --family_head false


def hand_features(pixels: np.ndarray) -> np.ndarray:
    """(N, 3, 32, 32) uint8 -> (N, 91): log-FFT magnitude (8x8), high-pass energy, channel statistics."""
    x = pixels.astype(np.float32) / 255.0
    grey = x.mean(1)
    spectrum = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean((1, 2), keepdims=True)), axes=(1, 2))))
    pooled = spectrum.reshape(len(x), 8, 4, 8, 4).mean((2, 4)).reshape(len(x), -1)
    laplacian = 4 * x[:, :, 1:-1, 1:-1] - x[:, :, :-2, 1:-1] - x[:, :, 2:, 1:-1] - x[:, :, 1:-1, :-2] - x[:, :, 1:-1, 2:]
    energy = np.concatenate([np.abs(laplacian).mean((2, 3)), laplacian.std((2, 3))], 1)
    flat = x.reshape(len(x), 3, -1)
    stats = np.concatenate([flat.mean(2), flat.std(2), *np.percentile(flat, [5, 25, 50, 75, 95], axis=2)], 1)
    return np.concatenate([pooled, energy, stats], 1)


def logistic_baseline(data, scores: dict | None = None) -> dict:
    """The baseline's row; `scores`, if given, receives the test split (`test`), its labels and P(FAKE)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modeling.data import load_pixels, stratified_split
    from modeling.scoring.detection import breakdown, choose_threshold
    from modeling.scoring.report import scored_metrics

    start = time.perf_counter()
    full = load_pixels(data, "train", None)
    fit_part, val_part = stratified_split(full, 0.1, seed=0)
    test = load_pixels(data, "test", None)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(hand_features(fit_part.pixels.numpy()), fit_part.labels.numpy())
    fake_column = list(model.classes_).index(0)
    p_val = model.predict_proba(hand_features(val_part.pixels.numpy()))[:, fake_column]
    threshold = choose_threshold(val_part.labels.numpy(), p_val)
    p_fake = model.predict_proba(hand_features(test.pixels.numpy()))[:, fake_column]
    labels = test.labels.numpy()
    metrics = {**scored_metrics(labels, p_fake, threshold),
               **breakdown(labels, p_fake, threshold, test.generator_ids, test.classes.numpy(), test.class_names)}
    if scores is not None:
        scores.update(test=test, labels=labels, p_fake=p_fake)
    return {"name": "logistic regression, hand features", "metrics": metrics, "seconds": time.perf_counter() - start,
            "parameters": int(model[-1].coef_.size + 1), "epochs": None}


def recipe_spec(recipe: str, model: dict | None = None, training: dict | None = None) -> str:
    """`recipe` as a config JSON string, with the `model` and `training` fields given changed."""
    from modeling.recipes import resolve_recipe

    _, fields, settings = resolve_recipe(recipe)
    return json.dumps({"model": {**fields, **(model or {})}, "training": {**settings, **(training or {})}})


def check_recipes(runs: list[tuple[str, str]]) -> None:
    """Refuse (name, spec) runs whose spec is a name that is no recipe."""
    from modeling.recipes import RECIPES

    unknown = [name for name, spec in runs if spec == name and name not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipes {unknown}; see `cifake train --list-configs`")


def fit(data, spec: str, out: Path, name: str | None = None, seed: int = 0) -> dict:
    """Train `spec` on `data` into `out` as `cifake train --config` does: its row (name, metrics, seconds,
    parameters, epochs, model_dir, and the kept model's validation ROC AUC)."""
    from modeling.training.train import train

    seconds, result = timed(train, data=str(data), output_dir=out, config=spec, overwrite=True, seed=seed)
    report = json.loads(result.report.read_text())
    return {"name": name or spec, "metrics": report["metrics"], "seconds": seconds, "parameters": report["parameters"],
            "epochs": report["epochs_run"], "model_dir": result.output_dir,
            "validation_roc_auc": (report.get("decision_threshold") or {}).get("validation_roc_auc")}


def recipe_run(data, name: str, spec: str, work: Path) -> dict:
    """`fit` into a folder of `work` named after `name`."""
    return fit(data, spec, work / name.replace(" ", "_").replace(",", "").replace("/", "-"), name)


def per_generator(rows: list[dict], label=str) -> list[list]:
    """Table rows: each generator of the first row's report (`label`led), its FAKE test images, and
    each row's ROC AUC of those against all REAL test images."""
    per = [{g["generator_id"]: g for g in row["metrics"]["per_generator"]} for row in rows]
    return [[label(g), per[0][g]["images"]] + [fmt(p[g]["roc_auc_vs_real"] if g in p else None) for p in per]
            for g in per[0]]


def main():
    parser = arguments(__doc__, data=True)
    parser.add_argument("--recipes", nargs="+", action="extend")
    parser.add_argument("--ablation", action="store_true", help="also train the forensic recipe without each of its parts")
    parser.add_argument("--json", type=Path, help="also write every row (metrics, per generator) to this JSON file")
    args = parser.parse_args()
    args.recipes = args.recipes or DEFAULT_RECIPES  # a repeated --recipes adds up: the default only when none was given
    work, data = bench_task(args, "detect")
    import torch

    from modeling.scoring.report import metrics_table

    runs = [(name, name) for name in args.recipes]
    if args.ablation:
        runs += [(name, recipe_spec(FORENSIC, model=off)) for name, off in ABLATIONS.items()]
        runs += [(name, recipe_spec(FORENSIC, training=off)) for name, off in TRAINING_ABLATIONS.items()]
    check_recipes(runs)

    print(header("CIFAKE kit: detection on genuine fakes, recipes vs a hand-feature baseline (bench/bench_detect.py)"))
    print(f"# data: {data} | {torch.get_num_threads()} threads | one run each, seed 0 | FAKE is the positive class")
    rows = [logistic_baseline(data)]
    for name, spec in runs:
        print(f"# training {name} ...", flush=True)
        rows.append(recipe_run(data, name, spec, work))
    print("\n" + metrics_table([{**row["metrics"], "detector": row["name"], "parameters": row["parameters"],
                                 "epochs": "" if row["epochs"] is None else f"{row['epochs']:g}",
                                 "train_s": round(row["seconds"], 1)} for row in rows],
                               ["detector", "parameters", "epochs", "train_s", "roc_auc", "average_precision",
                                "accuracy", "accuracy_at_threshold", "ece"]))
    print("\nPer generator: ROC AUC of its FAKE test images against all REAL test images.\n")
    print(table(["generator", "images"] + [row["name"] for row in rows], per_generator(rows)))
    if len(rows) > 1:
        best = max(rows[1:], key=lambda row: row["metrics"]["roc_auc"] or 0.0)
        base, mine = ({g["generator_id"]: g["roc_auc_vs_real"] for g in r["metrics"]["per_generator"]}
                      for r in (rows[0], best))
        worse = [g for g in base if mine.get(g, 0.0) <= base[g]]
        m = best["metrics"]
        print(f"\nBest recipe by ROC AUC: {best['name']}: AUROC {m['roc_auc']:.3f} (target >= 0.85), accuracy "
              f"{max(m['accuracy'], m['accuracy_at_threshold']):.1%} (target >= 75%), {best['seconds'] / 60:.1f} min "
              f"(target <= 15). Above the baseline on {len(base) - len(worse)} of {len(base)} generators"
              + (f"; not on: {', '.join(worse)}." if worse else "."))
    if args.json:
        rows = [{k: v for k, v in row.items() if k != "model_dir"} for row in rows]  # a deleted scratch folder
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
