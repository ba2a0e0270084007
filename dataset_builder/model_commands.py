"""Handlers for `cifake train`, `evaluate`, `sweep` and `push-model`.

They sit beside the CLI rather than in `modeling/`: importing `modeling` registers the model
classes with transformers (torch and all), and `cifake train --help` must answer without that.
Thin by design: parse, call one `modeling` function, say where the output went. Flags mirror
the function's parameters.
"""

from __future__ import annotations

import argparse
import ctypes
import os

TRAIN_EXAMPLE = """\
examples:
  cifake train --data ./cifake --output-dir ./cifake-model
      the paper's best CNN (2 conv x 32 + 1 dense x 64) on a dataset folder; test scores in cifake-model/report/
  cifake train --config cifake-cnn-plus --epochs 40 --output-dir ./cnn-plus
      the kit's stronger small CNN (batch norm, augmentation, cosine schedule)
  cifake train --output-dir ./cifake-model --resume
      continue an interrupted run from its last checkpoint
  accelerate launch -m dataset_builder.cli train --data your-name/cifake --streaming
      several GPUs, data streamed from the Hub
"""

EVALUATE_EXAMPLE = """\
examples:
  cifake evaluate ./cifake-model --data ./cifake --split test
  cifake evaluate ./cifake-model --robustness --cross-data ./cifake-sd21
      adds JPEG / blur / noise / rescale rows and another generator's data to robustness.md
"""

SWEEP_EXAMPLE = """\
examples:
  cifake sweep --data ./cifake --output-dir ./cifake-sweep
      all 36 topologies; rerun the same command to resume
  cifake sweep --topologies conv1x16 conv2x32 conv2x32-dense1x64 --epochs 5
"""

EXPLAIN_EXAMPLE = """\
examples:
  cifake explain photo.jpg other.png --model ./cifake-model --out ./explain
      an overlay PNG per image, the 32x32 input, and gradcam-grid.png with label and probability per tile
  cifake explain --model ./cifake-model --data ./cifake --split test --sample 2000
      the paper's finding as numbers: Grad-CAM mass on the border vs the centre (cam_mass.json, .png)
"""

DEMO_EXAMPLE = """\
example:
  cifake demo --model ./cifake-model --port 7860
      the Space's app on http://127.0.0.1:7860 (CIFAKE_MODEL is set from --model)
"""

SPACE_EXAMPLE = """\
example:
  cifake push-space your-name/cifake-demo --model your-name/cifake-cnn --dataset-id your-name/cifake
      space/ plus the kit's packages; CIFAKE_MODEL is set to the model id
"""

PUSH_EXAMPLE = """\
example:
  cifake push-model ./cifake-model your-name/cifake-cnn --dataset-id your-name/cifake
      weights, processor, code and a card whose model-index comes from report/report.json
"""


def register(subparsers) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    train = subparsers.add_parser(
        "train", help="train a CIFAKE model with transformers' Trainer",
        description="Train a CIFAKE classifier (the paper's CNN family, a stronger CNN, or a timm backbone) with "
        "transformers' Trainer: checkpoints, resume, early stopping on a validation split carved from train, and "
        "a final report (JSON + figures) on the test split.",
        epilog=TRAIN_EXAMPLE, formatter_class=formatter,
    )
    train.add_argument("--data", default="cifake", help="dataset folder or Hub id (default: ./cifake)")
    train.add_argument("--output-dir", default="cifake-model", help="model folder; checkpoints go below it (default: ./cifake-model)")
    train.add_argument("--config", help="recipe name (default: paper-best), JSON file or JSON string; --list-configs shows names")
    train.add_argument("--list-configs", action="store_true", help="print the recipe names and exit")
    train.add_argument("--epochs", type=float, help="epochs (default: the recipe's)")
    train.add_argument("--batch-size", type=int, help="images per step and device (default: the recipe's)")
    train.add_argument("--learning-rate", type=float, help="peak learning rate (default: the recipe's)")
    train.add_argument("--seed", type=int, default=0, help="seed for weights, data order and the validation split (default: 0)")
    train.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a training run already in --output-dir")
    train.add_argument("--validation-fraction", type=float, default=0.1, help="share of train held out (default: 0.1)")
    train.add_argument("--early-stopping-patience", type=int, help="epochs without improvement before stopping; 0 = off")
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random flips and crops (default: the recipe's)")
    train.add_argument("--eval-split", default="test", help="split scored at the end (default: test)")
    train.add_argument("--streaming", action="store_true", help="stream the data instead of decoding it all first")
    train.add_argument("--max-steps", type=int, help="stop after this many steps (overrides --epochs)")
    train.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes (default: 0)")
    train.set_defaults(handler=run_train, interrupt_hint="Run it again with --resume to continue from the last checkpoint.")

    evaluate = subparsers.add_parser(
        "evaluate", help="score a saved model on a dataset split, clean and perturbed",
        description="Score a saved model (folder or Hub id) on any split of any CIFAKE dataset: report.json, confusion "
        "matrix and per-class figures; optionally a robustness table under perturbations and on other generators' data.",
        epilog=EVALUATE_EXAMPLE, formatter_class=formatter,
    )
    evaluate.add_argument("model", metavar="MODEL", help="model folder written by `cifake train`, or a Hub id")
    evaluate.add_argument("--data", default="cifake", help="dataset folder or Hub id (default: ./cifake)")
    evaluate.add_argument("--split", default="test", help="split to score (default: test)")
    evaluate.add_argument("--output-dir", help="report folder (default: MODEL/eval/<data>-<split>)")
    evaluate.add_argument("--robustness", action="store_true", help="also score JPEG, blur, noise and rescale perturbations")
    evaluate.add_argument("--cross-data", nargs="+", metavar="DATA", help="also score these datasets (e.g. other generators)")
    evaluate.add_argument("--batch-size", type=int, default=1024, help="images per forward pass (default: 1024)")
    evaluate.set_defaults(handler=run_evaluate)

    sweep = subparsers.add_parser(
        "sweep", help="train the paper's 36 topologies and write the comparison table",
        description="Train the CIFAKE paper's 36 CNN topologies and write results.md / results.csv with every metric. "
        "Resumable: finished topologies are skipped, an interrupted one continues from its checkpoint.",
        epilog=SWEEP_EXAMPLE, formatter_class=formatter,
    )
    sweep.add_argument("--data", default="cifake", help="dataset folder or Hub id (default: ./cifake)")
    sweep.add_argument("--output-dir", default="cifake-sweep", help="one subfolder per topology (default: ./cifake-sweep)")
    sweep.add_argument("--topologies", nargs="+", metavar="NAME", help="a subset by name (default: all 36)")
    sweep.add_argument("--epochs", type=float, help="epochs per topology (default: the paper recipe's)")
    sweep.add_argument("--batch-size", type=int, help="images per step (default: the paper recipe's)")
    sweep.add_argument("--early-stopping-patience", type=int, help="epochs without improvement before stopping")
    sweep.add_argument("--seed", type=int, default=0, help="seed for every topology (default: 0)")
    sweep.set_defaults(handler=run_sweep)

    push = subparsers.add_parser(
        "push-model", help="push a trained model folder to the Hugging Face Hub with its card",
        description="Upload a model folder (weights, processor, code, report figures) to a Hub model repo, with "
        "model_card.md filled from the folder's measured results.",
        epilog=PUSH_EXAMPLE, formatter_class=formatter,
    )
    push.add_argument("model", metavar="MODEL", help="model folder written by `cifake train`")
    push.add_argument("repo_id", metavar="REPO_ID", help="Hub model repo, e.g. your-name/cifake-cnn")
    push.add_argument("--dataset-id", help="Hub id of the dataset it was scored on, for the card's model-index")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.set_defaults(handler=run_push_model)

    explain = subparsers.add_parser(
        "explain", help="Grad-CAM overlays for images, or the border-vs-centre study on a dataset",
        description="Explain a model's verdicts with Grad-CAM (pytorch-grad-cam): overlays and a grid figure for the "
        "given images; with --data, the share of Grad-CAM mass on the border against the centre over a sample of a "
        "split, by label and by correct/wrong (the CIFAKE paper's finding, measured).",
        epilog=EXPLAIN_EXAMPLE, formatter_class=formatter,
    )
    explain.add_argument("images", metavar="IMAGE", nargs="*", help="image files to explain")
    explain.add_argument("--model", required=True, help="model folder written by `cifake train`, or a Hub id")
    explain.add_argument("--out", default="cifake-explain", help="output folder (default: ./cifake-explain)")
    explain.add_argument("--all-classes", action="store_true", help="a heatmap for each class, not only the predicted one")
    explain.add_argument("--data", help="dataset folder or Hub id: run the border-vs-centre study on it")
    explain.add_argument("--split", default="test", help="split for the study (default: test)")
    explain.add_argument("--sample", type=int, default=1000, help="images in the study (default: 1000)")
    explain.set_defaults(handler=run_explain)

    demo = subparsers.add_parser(
        "demo", help="run the Gradio Space locally",
        description="Run the CIFAKE Space (space/app.py) on this machine: prediction, Grad-CAM overlay and the 32x32 view.",
        epilog=DEMO_EXAMPLE, formatter_class=formatter,
    )
    demo.add_argument("--model", help="model folder or Hub id (default: $CIFAKE_MODEL, else ./cifake-model)")
    demo.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    demo.set_defaults(handler=run_demo, interrupt_hint="Stopped.")

    space = subparsers.add_parser(
        "push-space", help="push the Gradio app to a Hugging Face Space",
        description="Upload space/ and the kit's packages to a Hub Space (sdk gradio) and point it at a Hub model.",
        epilog=SPACE_EXAMPLE, formatter_class=formatter,
    )
    space.add_argument("repo_id", metavar="REPO_ID", help="Hub Space, e.g. your-name/cifake-demo")
    space.add_argument("--model", help="Hub id of the model the Space runs (sets CIFAKE_MODEL)")
    space.add_argument("--dataset-id", help="Hub id of the dataset, for the Space card")
    space.add_argument("--private", action="store_true", help="create the Space as private")
    space.set_defaults(handler=run_push_space)


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the OS.

    Each training step allocates and frees the same large activation buffers. With glibc's
    defaults they are unmapped and faulted in again every step; with these settings the paper's
    CNN trains about 1.7x faster on the 2-core reference machine (bench/bench_train.py). Only the
    `cifake` process is affected, never a program that imports the kit. A no-op without glibc;
    CIFAKE_MALLOC_TUNING=0 turns it off.
    """
    if os.environ.get("CIFAKE_MALLOC_TUNING", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    trim_threshold, top_pad, mmap_threshold = -1, -2, -3  # glibc's M_* parameter numbers
    return all(mallopt(option, value) == 1 for option, value in (
        (mmap_threshold, 32 << 20),  # glibc's maximum: blocks up to 32 MiB come from the heap
        (top_pad, 256 << 20),  # grow the heap in large steps
        (trim_threshold, 1 << 30),  # return memory only when 1 GiB is free at the top
    ))


def run_train(args) -> None:
    if args.list_configs:
        from modeling.topologies import RECIPES

        print("\n".join(RECIPES))
        return
    from modeling.train import train

    keep_freed_memory()
    result = train(
        data=args.data, output_dir=args.output_dir, config=args.config, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed, resume=args.resume,
        overwrite=args.overwrite, validation_fraction=args.validation_fraction,
        early_stopping_patience=args.early_stopping_patience, augment=args.augment, eval_split=args.eval_split,
        streaming=args.streaming, max_steps=args.max_steps, num_workers=args.num_workers,
    )
    if result is not None:  # None on the non-main processes of a multi-GPU run
        print(f"saved the model to {result.output_dir}/ (load it with from_pretrained({str(result.output_dir)!r}))")
        print(f"  {result.eval_split} accuracy {result.metrics['accuracy']:.2%}; report: {result.report.parent}/")


def run_evaluate(args) -> None:
    from modeling.evaluation import evaluate_model

    keep_freed_memory()
    result = evaluate_model(args.model, data=args.data, split=args.split, output_dir=args.output_dir,
                            robustness=args.robustness, cross_data=args.cross_data, batch_size=args.batch_size)
    print(f"{args.split} accuracy {result.metrics['accuracy']:.2%}; report: {result.out_dir}/")
    if result.robustness:
        print(f"  robustness table: {result.out_dir / 'robustness.md'}")


def run_sweep(args) -> None:
    from modeling.sweep import sweep

    keep_freed_memory()
    options = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size,
                                 "early_stopping_patience": args.early_stopping_patience}.items() if v is not None}
    table = sweep(data=args.data, output_dir=args.output_dir, topologies=args.topologies, seed=args.seed, **options)
    print(f"wrote {table} and {table.with_suffix('.csv')}")


def run_push_model(args) -> None:
    from modeling.hub import push_model

    url = push_model(args.model, args.repo_id, private=args.private, dataset_id=args.dataset_id)
    print(f"pushed {args.model} to {url}")


def run_explain(args) -> None:
    from dataset_builder.errors import CifakeError

    if not args.images and not args.data:
        raise CifakeError("Nothing to explain: give IMAGE paths, or --data DIR for the border-vs-centre study.")
    from modeling.explain import cam_mass_study, explain

    if args.images:
        grid = explain(args.images, args.model, out_dir=args.out, all_classes=args.all_classes)
        print(f"wrote Grad-CAM overlays and {grid}")
    if args.data:
        keep_freed_memory()
        study = cam_mass_study(args.model, data=args.data, split=args.split, sample=args.sample, out_dir=args.out)
        print(f"share of Grad-CAM mass in the centre ({study['centre']}; a uniform map: {study['uniform_centre_share']:.0%}):")
        for group, numbers in study["groups"].items():
            if numbers["images"]:
                print(f"  {group:13s} {numbers['centre_share']:.1%} over {numbers['images']} images")
        print(f"wrote {args.out}/cam_mass.json and cam_mass.png")


def run_demo(args) -> None:
    from modeling.demo import launch_app

    launch_app(model=args.model, port=args.port, host=args.host)


def run_push_space(args) -> None:
    from modeling.hub import push_space

    url = push_space(args.repo_id, model=args.model, dataset_id=args.dataset_id, private=args.private)
    print(f"pushed the Space to {url}")
