"""Trainer's own settings as `cifake train` takes them: checked before any work, in one place.

The kit sets most of `TrainingArguments` from its recipe and its flags (`make_trainer`). The
settings users of transformers' examples reach for have flags of their own (gradient
accumulation, precision, evaluation/save cadence, checkpoints kept, where to report, pushing to
the Hub); `--training-arg KEY=VALUE` passes any other field, converted to the field's type. A
field the kit sets from one of its flags is refused there with the flag's name, so that no
setting has two spellings that could disagree.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing

from cifake_kit.errors import CifakeError

# TrainingArguments fields the kit sets: the flag that sets each, or None where the kit needs it as it is.
KIT_FIELDS = {
    "output_dir": "--output-dir", "num_train_epochs": "--epochs", "max_steps": "--max-steps",
    "per_device_train_batch_size": "--batch-size", "learning_rate": "--learning-rate", "seed": "--seed",
    "data_seed": "--seed", "gradient_accumulation_steps": "--gradient-accumulation-steps", "bf16": "--precision",
    "fp16": "--precision", "eval_strategy": "--eval-strategy", "save_strategy": "--eval-strategy",
    "eval_steps": "--eval-steps", "save_steps": "--eval-steps", "save_total_limit": "--save-total-limit",
    "report_to": "--report-to", "push_to_hub": "--push-to-hub", "hub_model_id": "--hub-model-id",
    "dataloader_num_workers": "--num-workers", "disable_tqdm": "--verbose", "resume_from_checkpoint": "--resume",
    "load_best_model_at_end": None, "metric_for_best_model": None, "greater_is_better": None,
    "remove_unused_columns": None, "use_cpu": None,
    # What the kit's metrics, threshold choice and resume need as it is.
    "prediction_loss_only": None, "eval_do_concat_batches": None, "save_only_model": None,
    "include_for_metrics": None, "batch_eval_metrics": None,
}
# The kit pushes with `cifake push-model` (--push-to-hub runs it after training), not with Trainer.
_PUSH_FIELDS = ("hub_", "push_to_hub")


def trainer_overrides(opts, cuda: bool) -> dict:
    """The TrainingArguments fields that `opts` (TrainOptions) set, checked; CifakeError for bad ones."""
    overrides = {}  # the numbers were checked by TrainOptions
    overrides["gradient_accumulation_steps"] = opts.gradient_accumulation_steps
    overrides["save_total_limit"] = opts.save_total_limit
    overrides.update(_precision(opts.precision, cuda))
    if opts.eval_strategy == "steps":
        if opts.eval_steps is None:
            raise CifakeError("--eval-strategy steps needs --eval-steps N (N >= 1): how many steps between validations.")
        overrides.update(eval_strategy="steps", save_strategy="steps", eval_steps=opts.eval_steps, save_steps=opts.eval_steps)
    elif opts.eval_steps is not None:
        raise CifakeError("--eval-steps counts steps between validations: it needs --eval-strategy steps.")
    overrides["report_to"] = _report_to(opts.report_to)
    if opts.push_to_hub and not opts.hub_model_id:
        raise CifakeError("--push-to-hub needs --hub-model-id your-name/cifake-cnn: the Hub repo to push to.")
    if opts.hub_model_id and not opts.push_to_hub:
        raise CifakeError("--hub-model-id names where --push-to-hub pushes: pass --push-to-hub too (or `cifake push-model` "
                          "after training).")
    overrides.update(parse_training_args(opts.training_arg or []))
    return overrides


def parse_training_args(pairs: list[str]) -> dict:
    """{field: value} from "KEY=VALUE" strings, each value converted to its TrainingArguments field's type."""
    from transformers import TrainingArguments

    fields = {field.name: field for field in dataclasses.fields(TrainingArguments) if field.init}
    hints = typing.get_type_hints(TrainingArguments)
    parsed = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise CifakeError(f"--training-arg {pair!r} is not KEY=VALUE, e.g. --training-arg warmup_steps=100.")
        if key in KIT_FIELDS:
            how = f"use {KIT_FIELDS[key]}" if KIT_FIELDS[key] else "the kit sets it for its checkpoints and reports"
            raise CifakeError(f"--training-arg {key}: {how}.")
        if key.startswith(_PUSH_FIELDS):
            raise CifakeError(f"--training-arg {key}: the kit pushes with `cifake push-model` (--push-to-hub runs it "
                              f"after training; a private repo: `cifake push-model --private`).")
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, fields, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise CifakeError(f"--training-arg {key!r} is not a TrainingArguments field.{hint}")
        parsed[key] = _convert(key, text.strip(), hints.get(key, str))
    return parsed


def _convert(key: str, text: str, hint):
    kinds = [kind for kind in (typing.get_args(hint) if _is_union(hint) else (hint,)) if kind is not type(None)]
    if text.lower() in ("none", "null") and len(kinds) < len(typing.get_args(hint) or (hint,)):
        return None
    for kind in kinds:
        origin = typing.get_origin(kind) or kind
        try:
            if origin is bool:
                if text.lower() in ("true", "1", "yes"):
                    return True
                if text.lower() in ("false", "0", "no"):
                    return False
                raise ValueError
            if origin in (int, float):
                number = origin(text)
                if not math.isfinite(number):
                    raise CifakeError(f"--training-arg {key}={text!r}: {key} takes a finite number.")
                return number
            if origin in (dict, list):
                try:
                    value = json.loads(text)
                except ValueError:
                    value = [item.strip() for item in text.split(",")] if origin is list else None
                if isinstance(value, origin):
                    return value
                raise ValueError
        except ValueError:
            continue
        if origin is str or isinstance(origin, type) and issubclass(origin, str):  # str and str enums
            return text
    wanted = " or ".join(_kind_name(kind) for kind in kinds)
    raise CifakeError(f"--training-arg {key}={text!r}: {key} takes {wanted}.")


def _kind_name(kind) -> str:
    origin = typing.get_origin(kind) or kind
    if origin is dict:
        return 'a JSON object (e.g. {"power": 2})'
    if origin is list:
        return "a list (a,b or JSON)"
    return getattr(origin, "__name__", str(origin))


def _is_union(hint) -> bool:
    return isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union


def _precision(precision: str, cuda: bool) -> dict:
    import torch

    if precision == "auto":
        return {"bf16": cuda and torch.cuda.is_bf16_supported(), "fp16": False}
    if precision == "fp16" and not cuda:
        raise CifakeError("--precision fp16 needs a CUDA GPU; on the CPU use bf16 or fp32.")
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise CifakeError("--precision bf16: this GPU has no bf16; use fp16 or fp32.")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def _report_to(names: list[str] | None) -> str | list[str]:
    """`report_to` for TrainingArguments, each integration checked to be installed."""
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    if not names or names == ["none"]:
        return "none"
    if names == ["all"]:
        return "all"
    available = set(get_available_reporting_integrations())
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise CifakeError(f"--report-to {name!r} is not one of transformers' integrations: "
                              f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}, or none.")
        if name not in available:
            package = {"comet_ml": "comet-ml"}.get(name, name)
            raise CifakeError(f"--report-to {name} needs its package, which is not installed: pip install {package}.")
    return list(names)
