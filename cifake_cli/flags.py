"""One vocabulary for every subcommand: a dataset is always --data, a model --model, where output goes
--output-dir, which split --split; every command takes --verbose.

Flags are taken whole, never abbreviated (`--out` is not `--output-dir`). Every flag of several values has
`action="extend"`, so `--real A --real B` is `--real A B` (a test holds every subcommand to it)."""

from __future__ import annotations

import argparse

FORMATTER = argparse.RawDescriptionHelpFormatter


def command(subparsers, name: str, summary: str, description: str, example: str, handler) -> argparse.ArgumentParser:
    """A subcommand run by `handler(args)` whose --help ends with `example`, with the --verbose every command takes."""
    parser = subparsers.add_parser(name, help=summary, description=description, epilog=example, formatter_class=FORMATTER,
                                   allow_abbrev=False)
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' own progress bars and log lines (Trainer's included)")
    parser.set_defaults(handler=handler)
    return parser


def add_data(parser, help: str = "dataset folder or Hub id (default: ./cifake)", default: str | None = "cifake") -> None:
    parser.add_argument("--data", help=help, default=default)


def add_model(parser, help: str = "model folder written by `cifake train`, or a Hub id (default: ./cifake-model)",
              default: str | None = "cifake-model") -> None:
    parser.add_argument("--model", metavar="MODEL", help=help, default=default)


def add_output_dir(parser, default: str | None, help: str) -> None:
    parser.add_argument("--output-dir", metavar="DIR", default=default, help=help)


def add_columns(parser, unset: bool = False) -> None:
    """--image-column / --label-column: a dataset whose columns have other names (a Hub dataset's own). `unset`:
    None unless given (the command fills in the defaults), so that it can tell whether they were given."""
    parser.add_argument("--image-column", default=None if unset else "image", metavar="NAME",
                        help="the data's column of images (default: image)")
    parser.add_argument("--label-column", default=None if unset else "label", metavar="NAME",
                        help="the data's column of labels, a ClassLabel named FAKE and REAL in any case (default: label)")


def add_split(parser, help: str = "split to score (default: test)", default: str | None = "test") -> None:
    parser.add_argument("--split", default=default, help=help)
