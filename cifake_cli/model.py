"""`cifake train`, `evaluate`, `predict`, `sweep`, `explain`, `export-onnx`, `push-model`: the model side (modeling).

Parse, call one `modeling` function (imported in the handler), say where the output went. `train`'s flags are
HfArgumentParser's (modeling/training/arguments.py), built only when `cifake train` runs.
"""

from __future__ import annotations

import argparse

from cifake_kit.errors import CifakeError
from cifake_kit.runtime import keep_freed_memory

from .flags import FORMATTER, add_columns, add_data, add_model, add_output_dir, add_split, command

TRAIN_EXAMPLE = """\
examples:
  cifake train --data ./cifake --output-dir ./cifake-model
      the paper's best CNN (2 conv x 32 + 1 dense x 64) on a dataset folder; test scores in cifake-model/report/
  cifake train --config cifake-forensic --output-dir ./forensic
      for genuine fakes at 32x32: high-pass residuals and a residual spectrum beside a small CNN
  cifake train --config cifake-cnn-plus --num_train_epochs 40 --output-dir ./cnn-plus
      the kit's stronger small CNN (batch norm, augmentation, cosine schedule)
  cifake train --config resnet18-cifar --pretrained timm --output-dir ./resnet
      a timm backbone from its ImageNet weights (downloaded; a local timm checkpoint folder works offline)
  cifake train --output-dir ./cifake-model --resume
      continue an interrupted run from its last checkpoint
  accelerate launch -m cifake_cli train --data your-name/cifake --streaming
      several GPUs, data streamed from the Hub

Every transformers TrainingArguments field is a flag under its own name (--warmup_steps,
--gradient_accumulation_steps, --bf16, --report_to tensorboard, ...); one the recipe sets
(epochs, batch size, learning rate, schedule, ...) keeps the recipe's value unless given.
"""

EVALUATE_EXAMPLE = """\
examples:
  cifake evaluate --model ./cifake-model --data ./cifake --split test
  cifake evaluate --model ./cifake-model --robustness --cross-data ./cifake-sd21
      adds JPEG / blur / noise / rescale rows and another generator's data to robustness.md
"""

SWEEP_EXAMPLE = """\
examples:
  cifake sweep --data ./cifake --output-dir ./cifake-sweep
      all 36 topologies; rerun the same command to resume
  cifake sweep --topologies conv1x16 conv2x32 conv2x32-dense1x64 --num-train-epochs 5
"""

EXPLAIN_EXAMPLE = """\
examples:
  cifake explain photo.jpg other.png --model ./cifake-model --output-dir ./explain
      an overlay PNG per image, the 32x32 input, and gradcam-grid.png with label and probability per tile
  cifake explain --model ./cifake-model --data ./cifake --split test --sample 2000
      the paper's finding as numbers: Grad-CAM mass on the border vs the centre (cam_mass.json, .png)
"""

PREDICT_EXAMPLE = """\
examples:
  cifake predict photo.jpg ./downloads --model ./cifake-model
      one line per image: path, verdict, P(FAKE); files that are not images are listed and skipped
  cifake predict ./folder --model your-name/cifake-cnn --csv verdicts.csv --threshold 0.7
      a CSV too, and a stricter cut-off than the model's own
"""

EXPORT_EXAMPLE = """\
examples:
  cifake export-onnx --model ./cifake-model
      writes cifake-model/onnx/ (model.onnx + config + processor config), checked against PyTorch;
      `cifake push-model` uploads it with the model
  cifake export-onnx --model your-name/cifake-cnn --output-dir ./cifake-onnx
"""

PUSH_EXAMPLE = """\
example:
  cifake push-model your-name/cifake-cnn --model ./cifake-model --dataset-id your-name/cifake
      weights, processor, code and a card whose model-index comes from report/report.json
"""

TRAIN_DESCRIPTION = (
    "Train a CIFAKE classifier (the paper's CNN family, a stronger CNN, or a timm backbone) with transformers' Trainer: "
    "checkpoints, resume, early stopping on a validation split carved from train, and a final report (JSON + figures) "
    "on the test split. Shows one progress bar and one line per epoch (--verbose: Trainer's own output).")
# sweep's training flags, by train's names (checked by the sweep, as train checks them).
_SWEEP_TRAINING = {"num_train_epochs": (float, "epochs of every topology (default: each recipe's)"),
                   "per_device_train_batch_size": (int, "images per step (default: each recipe's)"),
                   "early_stopping_patience": (int, "validations without a better score before stopping, keeping "
                                                    "the best model; 0 = off, the final model kept (default: each recipe's)"),
                   "seed": (int, "seed of every run (default: 0)")}


def register(subparsers) -> None:
    # main() parses the rest of train's line with parse_train, so no other command imports transformers.
    subparsers.add_parser("train", help="train a CIFAKE model with transformers' Trainer", add_help=False)

    evaluate = command(
        subparsers, "evaluate", "score a saved model on a dataset split, clean and perturbed",
        "Score a saved model (folder or Hub id) on any split of any CIFAKE dataset: report.json, confusion matrix and "
        "per-class figures; optionally a robustness table under perturbations and on other generators' data.",
        EVALUATE_EXAMPLE, run_evaluate,
    )
    add_model(evaluate)
    add_data(evaluate)
    add_columns(evaluate)
    add_split(evaluate)
    add_output_dir(evaluate, None, "report folder (default: MODEL/eval/<data>-<split>)")
    evaluate.add_argument("--robustness", action="store_true", help="also score JPEG, blur, noise and rescale perturbations")
    evaluate.add_argument("--cross-data", nargs="+", action="extend", metavar="DATA", help="also score these datasets (e.g. other generators)")
    evaluate.add_argument("--batch-size", type=int, default=1024, help="images per forward pass (default: 1024)")
    evaluate.add_argument("--save-predictions", action="store_true",
                          help="also write predictions.csv: P(FAKE) and the verdict of every image")
    evaluate.add_argument("--overwrite", action="store_true",
                          help="replace an earlier evaluation in the report folder (once the new one is complete)")

    sweep = command(
        subparsers, "sweep", "train the paper's 36 topologies and write the comparison table",
        "Train the CIFAKE paper's 36 CNN topologies and write results.md / results.csv with every metric. Resumable: "
        "finished topologies are skipped, an interrupted one continues from its checkpoint.",
        SWEEP_EXAMPLE, run_sweep,
    )
    add_data(sweep)
    add_output_dir(sweep, "cifake-sweep", "one subfolder per topology (default: ./cifake-sweep)")
    sweep.add_argument("--topologies", nargs="+", action="extend", metavar="NAME", help="a subset by name (default: all 36)")
    for name, (kind, text) in _SWEEP_TRAINING.items():  # under both spellings, as train takes them
        flags = dict.fromkeys(["--" + name.replace("_", "-"), "--" + name])
        sweep.add_argument(*flags, dest=name, type=kind, default=0 if name == "seed" else None, help=text)

    explain = command(
        subparsers, "explain", "Grad-CAM overlays for images, or the border-vs-centre study on a dataset",
        "Explain a model's verdicts with Grad-CAM (pytorch-grad-cam): overlays and a grid figure for the given images; "
        "with --data, the share of Grad-CAM mass on the border against the centre over a sample of a split, by label "
        "and by correct/wrong (the CIFAKE paper's finding, measured).",
        EXPLAIN_EXAMPLE, run_explain,
    )
    explain.add_argument("images", metavar="IMAGE", nargs="*", help="image files to explain")
    add_model(explain)
    add_output_dir(explain, "cifake-explain", "folder for the pictures and the study (default: ./cifake-explain)")
    explain.add_argument("--all-classes", action="store_true", help="a heatmap for each class, not only the predicted one")
    add_data(explain, help="dataset folder or Hub id: run the border-vs-centre study on it", default=None)
    add_columns(explain, unset=True)  # the study's options: None unless given, so that they are refused without --data
    add_split(explain, help="split for the study (default: test)", default=None)
    explain.add_argument("--sample", type=int, help="images in the study (default: 1000)")

    predict = command(
        subparsers, "predict", "a saved model's verdict on image files and folders",
        "Classify image files, and every file below the given folders, with a saved model: one line per image (path, "
        "verdict, P(FAKE)), unreadable files listed and skipped. The verdict uses the model's decision threshold "
        "(chosen on its validation split by `cifake train`) unless --threshold is given.",
        PREDICT_EXAMPLE, run_predict,
    )
    predict.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders (searched recursively)")
    add_model(predict)
    predict.add_argument("--csv", metavar="FILE", help="also write path, verdict, P(FAKE), threshold to this CSV file")
    predict.add_argument("--threshold", type=float, metavar="T",
                         help="call an image FAKE when P(FAKE) >= T (default: the model's own threshold, else 0.5)")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")

    export = command(
        subparsers, "export-onnx", "export a saved model to ONNX (for onnxruntime, transformers.js)",
        "Export a saved model to ONNX (pixel_values -> logits, dynamic batch) with torch's exporter, beside the "
        "config and processor config it needs, and check that onnxruntime gives PyTorch's logits on the kit's bundled "
        "CIFAR-10 photos. Needs the ONNX extra: pip install 'cifake-kit[onnx]'.",
        EXPORT_EXAMPLE, run_export_onnx,
    )
    add_model(export)
    add_output_dir(export, None, "folder for model.onnx and its configs (default: MODEL/onnx)")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export in --output-dir")

    push = command(
        subparsers, "push-model", "push a trained model folder to the Hugging Face Hub with its card",
        "Upload a model folder (weights, processor, code, report figures) to a Hub model repo, with model_card.md "
        "filled from the folder's measured results.",
        PUSH_EXAMPLE, run_push_model,
    )
    push.add_argument("repo_id", metavar="REPO_ID", help="Hub model repo, e.g. your-name/cifake-cnn")
    add_model(push, help="model folder written by `cifake train` (default: ./cifake-model)")
    push.add_argument("--dataset-id", help="Hub id of the dataset it was scored on, for the card's model-index")
    push.add_argument("--private", action="store_true", help="create the repo as private")


def parse_train(argv: list[str]) -> argparse.Namespace:
    """`cifake train`'s command line, parsed by HfArgumentParser: the Namespace main() runs."""
    from modeling.training.arguments import parse

    kit, given = parse(argv, description=TRAIN_DESCRIPTION, epilog=TRAIN_EXAMPLE, formatter_class=FORMATTER)
    return argparse.Namespace(command="train", handler=run_train, verbose=kit.verbose, kit=kit, given=given,
                              output_dir=given.get("output_dir") or "cifake-model", data=kit.data,
                              pretrained=kit.pretrained, hub_model_id=given.get("hub_model_id"))


def run_train(args: argparse.Namespace) -> None:
    if args.kit.list_configs:
        from modeling.recipes import RECIPES

        print("\n".join(RECIPES))
        return
    keep_freed_memory()
    try:  # an interrupt while transformers loads is answered by what the folders hold too
        from modeling.training.train import train

        result = train(args.kit, **args.given)
    except (KeyboardInterrupt, OSError):
        args.interrupt_hint = args.resume_hint = train_resume_hint(args.output_dir)
        raise
    if result is not None:  # None on the non-main processes of a multi-GPU run
        print(f"saved the model to {result.output_dir}/ (load it with from_pretrained({str(result.output_dir)!r}))")
        print(f"  {result.split}: {headline(result.metrics)}; report: {result.report.parent}/")
        if result.pushed_to:
            print(f"pushed it to {result.pushed_to}")


def train_resume_hint(output_dir) -> str:
    """How to go on after `cifake train` stopped short, by what its folders hold now."""
    from pathlib import Path

    from modeling.layout import RUN_FILE
    from modeling.training.runs import pending_replacement

    replacement = pending_replacement(output_dir)
    if replacement is not None:
        if any(replacement.glob("checkpoint-*")):
            return ("Run it again with --overwrite --resume to continue the replacement from its last checkpoint; the old "
                    "model is untouched until the new one is complete.")
        return "Run it again with --overwrite (no checkpoint of the replacement was saved yet; the old model is untouched)."
    out = Path(output_dir).expanduser()
    if (out / RUN_FILE).is_file() and any(out.glob("checkpoint-*")):
        return "Run it again with --resume to continue from the last checkpoint."
    if (out / RUN_FILE).is_file():
        return "Run it again with --overwrite (no checkpoint was saved yet)."
    return "Run the same command again."


def headline(metrics: dict) -> str:
    """The numbers a command ends with: AUROC (FAKE positive), accuracy at 0.5 and at the threshold, AUROC per
    generator family; for a split of one label, only the share of it called right."""
    label = metrics.get("only_label")
    if label:
        name = label.lower()
        line = f"{label} images only, {metrics[f'called_{name}']:.2%} called {label} at P(FAKE) 0.5"
        if metrics.get("threshold", 0.5) != 0.5:
            line += f", {metrics[f'called_{name}_at_threshold']:.2%} at the model's threshold {metrics['threshold']:.3g}"
        return line + "; AUROC and accuracy need REAL and FAKE images"
    auroc = "-" if metrics.get("roc_auc") is None else f"{metrics['roc_auc']:.3f}"
    line = f"AUROC {auroc} (FAKE positive), accuracy {metrics['accuracy']:.2%}"
    if metrics.get("threshold", 0.5) != 0.5:
        line += f" at P(FAKE) 0.5, {metrics['accuracy_at_threshold']:.2%} at the model's threshold {metrics['threshold']:.3g}"
    families = [row for row in metrics.get("per_family") or [] if row.get("roc_auc_vs_real") is not None]
    if families:
        line += "; AUROC of each family's FAKE images vs all REAL: " + ", ".join(
            f"{row['family']} {row['roc_auc_vs_real']:.3f}" + (f" ({own:.3f} by its own score)" if
                                                               (own := row.get("roc_auc_vs_real_own_score")) is not None
                                                               else "") + f" ({row['images']})" for row in families)
    return line


def run_evaluate(args: argparse.Namespace) -> None:
    from modeling.data import Columns
    from modeling.scoring.evaluation import evaluate_model

    keep_freed_memory()
    result = evaluate_model(args.model, data=args.data, split=args.split, output_dir=args.output_dir,
                            robustness=args.robustness, cross_data=args.cross_data, batch_size=args.batch_size,
                            save_predictions=args.save_predictions, overwrite=args.overwrite,
                            columns=Columns(args.image_column, args.label_column))
    print(f"{args.split}: {headline(result.metrics)}; report: {result.output_dir}/")
    if result.robustness:
        print(f"  robustness table: {result.output_dir / 'robustness.md'}")


def run_sweep(args: argparse.Namespace) -> None:
    from modeling.training.sweep import sweep

    keep_freed_memory()
    options = {name: getattr(args, name) for name in _SWEEP_TRAINING if getattr(args, name) is not None}
    table = sweep(data=args.data, output_dir=args.output_dir, topologies=args.topologies, **options)
    print(f"wrote {table} and {table.with_suffix('.csv')}")


def run_explain(args: argparse.Namespace) -> None:
    if not args.images and not args.data:
        raise CifakeError("Nothing to explain: give IMAGE paths, or --data DIR for the border-vs-centre study.")
    study_flags = {"--split": args.split, "--sample": args.sample, "--image-column": args.image_column,
                   "--label-column": args.label_column}
    if not args.data and (given := [flag for flag, value in study_flags.items() if value is not None]):
        raise CifakeError(f"{', '.join(given)} set the border-vs-centre study, which runs only with --data DIR: give "
                          f"--data, or drop {', '.join(given)}.")
    if args.all_classes and not args.images:
        raise CifakeError("--all-classes draws a heatmap for each class of the IMAGE paths given; the study with --data "
                          "draws none: give IMAGE paths, or drop --all-classes.")
    from modeling.inference.explain import cam_mass_study, explain

    if args.images:
        grid = explain(args.images, args.model, output_dir=args.output_dir, all_classes=args.all_classes)
        print(f"wrote Grad-CAM overlays and {grid}")
    if args.data:
        keep_freed_memory()
        from modeling.data import Columns

        given = {"split": args.split, "sample": args.sample}  # the rest: cam_mass_study's and Columns' defaults
        columns = {"image": args.image_column, "label": args.label_column}
        study = cam_mass_study(args.model, data=args.data, output_dir=args.output_dir,
                               columns=Columns(**{k: v for k, v in columns.items() if v is not None}),
                               **{k: v for k, v in given.items() if v is not None})
        print(f"share of Grad-CAM mass in the centre ({study['centre']}; a uniform map: {study['uniform_centre_share']:.0%}):")
        for group, numbers in study["groups"].items():
            if numbers["images"]:
                print(f"  {group:13s} {numbers['centre_share']:.1%} over {numbers['images']} images")
        if study["empty_maps"]:
            print(f"  ({study['empty_maps']} image(s) left out: Grad-CAM found no evidence for the verdict, an empty map)")
        print(f"wrote {args.output_dir}/cam_mass.json and cam_mass.png")


def run_predict(args: argparse.Namespace) -> int:
    from modeling.inference.predict import predict_command

    counts = predict_command(args.paths, args.model, csv_path=args.csv, threshold=args.threshold,
                             overwrite=args.overwrite)
    return 0 if counts["FAKE"] + counts["REAL"] else 1


def run_export_onnx(args: argparse.Namespace) -> None:
    from PIL import Image

    from dataset_builder.build import sample_archive
    from dataset_builder.cifar10 import load_cifar10  # the bundled photos the check scores
    from modeling.inference.export_onnx import export_onnx

    photos = load_cifar10(sample_archive(), "test").images[:16]
    result = export_onnx(args.model, output_dir=args.output_dir, images=[Image.fromarray(p) for p in photos],
                         opset=args.opset, overwrite=args.overwrite)
    print(f"wrote {result.folder}/model.onnx (+ config.json, preprocessor_config.json); onnxruntime matches PyTorch "
          f"to {result.max_difference:.1g} on {result.images} CIFAR-10 photos")


def run_push_model(args: argparse.Namespace) -> None:
    from modeling.publishing.hub import push_model

    url = push_model(args.model, args.repo_id, private=args.private, dataset_id=args.dataset_id)
    print(f"pushed {args.model} to {url}")
