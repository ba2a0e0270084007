"""The `cifake` command over the kit's areas: data.py (dataset_builder), model.py (modeling), space.py (space).

Each registers its subcommands and imports its library only inside the handlers, so `cifake --help` answers
without torch, transformers, datasets or gradio. A `CifakeError` prints as one line and exits 1
(`CIFAKE_DEBUG=1`: the traceback). Nothing imports this package.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from cifake_kit import __version__
from cifake_kit.errors import CifakeError
from cifake_kit.runtime import configure_console

COMMAND_MODULES = ["cifake_cli.data", "cifake_cli.model", "cifake_cli.space"]

EXAMPLES = """\
examples:
  cifake build --demo                     # offline: a small CIFAKE in ./cifake in seconds
  cifake build --cifar10 cifar-10-python.tar.gz --per-class 5000
  cifake import-kaggle ~/Downloads/cifake --output-dir ./cifake
  cifake import-folder --real ./photos --fake gan=./gan-samples
  cifake push-dataset your-name/cifake --data ./cifake
  cifake train --data ./cifake --output-dir ./cifake-model
  cifake evaluate --model ./cifake-model --robustness
  cifake predict photo.jpg ./folder --model ./cifake-model --csv verdicts.csv
  cifake sweep --data ./cifake --output-dir ./cifake-sweep
  cifake explain photo.jpg --model ./cifake-model
  cifake export-onnx --model ./cifake-model       # onnx/model.onnx, checked against PyTorch
  cifake push-model your-name/cifake-cnn --model ./cifake-model --dataset-id your-name/cifake
  cifake demo --model ./cifake-model
  cifake push-space your-name/cifake-demo --model your-name/cifake-cnn

Set CIFAKE_DEBUG=1 to see tracebacks.
"""


# Failures of the machine, not of the kit or its input: one line saying what to do, like a CifakeError.
# Every command writes its results whole and its long work resumably, so nothing finished is lost;
# a command whose way back differs (train: --resume) sets `resume_hint` on its arguments.
_RESUME = "Finished work is kept: run the same command again to go on."
_ENVIRONMENT_FAILURES = {
    errno.ENOSPC: "Free some disk space (or choose a folder on another disk). {resume}",
    errno.EDQUOT: "Your disk quota is used up: free some space. {resume}",
    errno.EROFS: "That file system is read-only: choose a folder you can write to.",
    **dict.fromkeys((errno.EACCES, errno.EPERM), "Check the permissions of that path, or choose another."),
    errno.EMFILE: "Too many open files: raise the limit (ulimit -n). {resume}",
    errno.EIO: "The disk failed to write: check it (dmesg says more), or choose a folder on another disk. {resume}",
}


def _uses_the_hub(args) -> bool:
    """Whether the command names something on the Hub (a model, dataset, generator, weights or repo id)."""
    from cifake_kit.hub import is_hub_id

    names = [getattr(args, name, None) for name in ("model", "data", "generator", "repo_id", "hub_model_id")]
    names += list(getattr(args, "cross_data", None) or [])
    if args.command == "build" and not getattr(args, "demo", False) and getattr(args, "cifar10", None) is None:
        return True  # CIFAR-10 from the Hub
    pretrained = getattr(args, "pretrained", None) or ""
    return pretrained == "timm" or pretrained.startswith("hf-hub:") or any(
        isinstance(name, str) and "/" in name and is_hub_id(name) for name in names)  # ids are owner/name


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cifake",
        description="CIFAKE, real vs AI-generated 32x32 images: build and publish the dataset, train, evaluate and "
        "explain the paper's CNN family, and run its Gradio Space.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # and every subcommand: flags are taken whole (flags.py)
    )
    parser.add_argument("--version", action="version", version=f"cifake {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def _asks_verbose(argv: list[str]) -> bool:
    """Whether train's command line turns --verbose on (`--verbose`, `--verbose true`, `--verbose=yes`)."""
    for i, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        if flag == "--verbose":
            value = value or (argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else "true")
            return value.lower() in ("true", "yes", "t", "y", "1")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    for stream in (sys.stdout, sys.stderr):  # a path in bytes that are not UTF-8 prints escaped, not as a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        if args.command == "train":  # its flags are TrainingArguments': parsed by HfArgumentParser, only now
            from .model import parse_train

            configure_console(verbose=_asks_verbose(rest))  # before transformers is imported: it reads this once
            args = parse_train(rest)
        configure_console(verbose=args.verbose)
        if _uses_the_hub(args):
            from cifake_kit.hub import offline_unless_reachable

            if reason := offline_unless_reachable():
                print(f"cifake: the Hub cannot be reached ({reason}): working offline, with cached copies only.",
                      file=sys.stderr)
        status = args.handler(args)  # a handler may return an exit status (predict: 1 when nothing was classified)
    except CifakeError as err:
        if os.environ.get("CIFAKE_DEBUG"):
            raise
        print(f"cifake {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        why = _ENVIRONMENT_FAILURES.get(err.errno)
        if why is None or os.environ.get("CIFAKE_DEBUG"):
            raise  # any other OSError is a bug of the kit: its traceback is what a report needs
        where = f" ({err.filename})" if err.filename else ""
        why = why.format(resume=getattr(args, "resume_hint", _RESUME))
        print(f"cifake {args.command}: error: {err.strerror}{where}. {why}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", "Run the same command again to resume.")
        print(f"\ncifake {args.command}: interrupted. {hint}", file=sys.stderr)
        return 130
    return status or 0
