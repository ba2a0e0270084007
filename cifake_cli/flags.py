"""One vocabulary for every subcommand: --data, --model, --output-dir, --split, --verbose.

A dataset is always `--data`, a model always `--model`, where output goes always `--output-dir`,
which split always `--split`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing

FORMATTER = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """The kit's parser: flags are taken whole, never abbreviated (`--out` is not `--output-dir`): one
    vocabulary, with no hidden one. Every flag that takes several values is declared with
    `action="extend"`, so that `--real A B` and `--real A --real B` agree (argparse's `nargs="+"` alone
    keeps only the last of a repeated flag); a test holds every subcommand to it.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def command(subparsers, name: str, summary: str, description: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with `example`, with the --verbose every command takes."""
    parser = subparsers.add_parser(name, help=summary, description=description, epilog=example, formatter_class=FORMATTER)
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' own progress bars and log lines (Trainer's included)")
    return parser


def add_data(parser, help: str = "dataset folder or Hub id (default: ./cifake)", **kwargs) -> None:
    kwargs.setdefault("default", "cifake")
    parser.add_argument("--data", help=help, **kwargs)


def add_model(parser, help: str = "model folder written by `cifake train`, or a Hub id (default: ./cifake-model)",
              **kwargs) -> None:
    kwargs.setdefault("default", "cifake-model")
    parser.add_argument("--model", metavar="MODEL", help=help, **kwargs)


def add_output_dir(parser, default: str | None, help: str) -> None:
    parser.add_argument("--output-dir", metavar="DIR", default=default, help=help)


def add_columns(parser) -> None:
    """--image-column / --label-column: a dataset whose columns have other names (a Hub dataset's own)."""
    parser.add_argument("--image-column", default="image", metavar="NAME", help="the data's column of images (default: image)")
    parser.add_argument("--label-column", default="label", metavar="NAME",
                        help="the data's column of labels, a ClassLabel named FAKE and REAL in any case (default: label)")


def add_split(parser, help: str = "split to score (default: test)", default: str = "test") -> None:
    parser.add_argument("--split", default=default, help=help)


def add_options(parser, options_class, names: list[str] | None = None) -> None:
    """A flag for each field of the dataclass `options_class` (or those in `names`), with its help text.

    `batch_size` becomes `--batch-size`; a bool defaulting to False is a switch, a bool defaulting
    to None gets `--x/--no-x`. (transformers' HfArgumentParser does the same, but importing it
    costs the command's --help a second; this stays free.)
    """
    hints = typing.get_type_hints(options_class)
    for field in dataclasses.fields(options_class):
        if names is not None and field.name not in names:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = _plain_type(hints[field.name])
        text = field.metadata.get("help")
        if kind is bool:
            action = argparse.BooleanOptionalAction if field.default is None else "store_true"
            parser.add_argument(flag, action=action, default=field.default, help=text)
            continue
        if typing.get_origin(kind) is list:  # several values: after one flag, or the flag repeated (Parser)
            parser.add_argument(flag, type=typing.get_args(kind)[0], default=field.default, help=text,
                                metavar=field.metadata.get("metavar"), nargs="+", action="extend")
            continue
        parser.add_argument(flag, type=kind, default=field.default, help=text, metavar=field.metadata.get("metavar"),
                            choices=field.metadata.get("choices"))


def options_from(args, options_class):
    """The dataclass `options_class` filled from parsed arguments of the same names."""
    return options_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(options_class) if hasattr(args, f.name)})


def _plain_type(hint):
    """int for `int` or `int | None`."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (kind,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return kind
    return hint
