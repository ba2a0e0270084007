"""The `cifake` command: one entry point, subcommands from a table, heavy imports deferred.

Each row names a module with a `register(subparsers)` function; those modules import nothing
heavy at the top, so `cifake --help` answers without loading torch, diffusers or gradio.
Errors of the kit (`CifakeError`) print as one line and exit 1; `CIFAKE_DEBUG=1` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import CifakeError

# (module, what it adds): later parts of the kit add their rows here.
COMMAND_MODULES = [
    ("dataset_builder.commands", "build, import-kaggle, push-dataset"),
    ("dataset_builder.model_commands", "train, evaluate, sweep, push-model, explain, demo, push-space"),
]

EXAMPLES = """\
examples:
  cifake build --demo                     # offline: a small CIFAKE in ./cifake in seconds
  cifake build --cifar10 cifar-10-python.tar.gz --per-class 5000
  cifake import-kaggle ~/Downloads/cifake --out ./cifake
  cifake push-dataset your-name/cifake --data ./cifake
  cifake train --data ./cifake --output-dir ./cifake-model
  cifake evaluate ./cifake-model --robustness
  cifake explain photo.jpg --model ./cifake-model
  cifake demo --model ./cifake-model

Set CIFAKE_DEBUG=1 to see tracebacks.
"""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cifake",
        description="CIFAKE, real vs AI-generated 32x32 images: build and publish the dataset, train and "
        "evaluate the paper's CNN family.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module, _ in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except CifakeError as err:
        if os.environ.get("CIFAKE_DEBUG"):
            raise
        print(f"cifake {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", "Run the same command again to resume.")
        print(f"\ncifake {args.command}: interrupted. {hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
