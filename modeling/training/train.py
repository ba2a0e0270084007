"""`cifake train`: a CIFAKE model trained with transformers' `Trainer` on decoded tensors.

Trainer brings checkpoints, resume, early stopping, logging and, through accelerate, multi-GPU and
multi-node runs (`accelerate launch` / `torchrun` run this unchanged). The data is decoded once
(`data.load_pixels`) and fed as whole uint8 batches. A validation split is carved from train (stratified
by label and CIFAR-10 class); the test split is only scored at the end, never used for choices. What
the output folder holds is layout.py; how it is resumed or replaced (`--overwrite`), runs.py.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from datasets import get_dataset_split_names
from tqdm.auto import tqdm
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback
from transformers.utils import logging as transformers_logging

from cifake_kit.errors import CifakeError, first_line
from cifake_kit.hub import is_hub_id, push_token
from cifake_kit.options import NONNEGATIVE_COUNT
from cifake_kit.outputs import FolderLock, is_kit_card
from cifake_kit.runtime import process_state, verbose
from cifake_kit.schema import FAKE, LABEL_NAMES
from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
from modeling.data import (
    CifakeCollator,
    CifakeTensorDataset,
    Columns,
    StreamingCifake,
    fake_families,
    load_pixels,
    open_split,
    stratified_split,
)
from modeling.inference.core import decision_threshold, fake_probability
from modeling.layout import CARD, PREDICTIONS_CSV, REPORT_DIR
from modeling.memory import check_fits
from modeling.publishing.card import render_model_card
from modeling.publishing.hub import push_model
from modeling.recipes import resolve_recipe
from modeling.scoring.detection import choose_threshold, one_label
from modeling.scoring.evaluation import report_head, save_split_predictions, score
from modeling.scoring.report import scored_metrics, write_report
from modeling.training.arguments import (
    DEFAULT_OUTPUT_DIR,
    RANGES,
    RECIPE_FIELDS,
    RESUMABLE_FIELDS,
    CifakeArguments,
    split_fields,
)
from modeling.training.pretrained import load_pretrained_backbone
from modeling.training.runs import RunFolder, check, finish, forget_unstarted, prepare, resume_checkpoint, run_folder

__all__ = ["TrainResult", "train", "make_trainer"]
# Settings a resumed run may change: how long it goes on, not what it trains.
_RESUMABLE_CHANGES = {"max_steps", "training.epochs", "training.early_stopping_patience"}
SELECTION_METRICS = ("accuracy", "roc_auc")  # both: higher is better
# What a recipe's training settings may be: those a flag overrides take the flag's range (arguments.py).
# warmup_ratio, as TrainingArguments' warmup_steps: below 1 a share of the steps, from 1 on a step count.
_TRAINING_RANGES = {**{name: RANGES[flag] for flag, name in RECIPE_FIELDS.items() if flag in RANGES},
                    "crop_padding": NONNEGATIVE_COUNT, "early_stopping_patience": NONNEGATIVE_COUNT}
_KIT_OVERRIDES = ("early_stopping_patience", "augment", "family_head")  # CifakeArguments fields that override the recipe


@dataclass
class TrainResult:
    output_dir: Path
    split: str  # the split the report scored: the one asked for, or "validation" when the data has none
    metrics: dict
    report: Path
    train_metrics: dict
    pushed_to: str | None = None  # the Hub repo's URL, with --push_to_hub


def train(arguments: CifakeArguments | None = None, /, **fields) -> TrainResult | None:
    """Train a CIFAKE model; `fields` are `cifake train`'s flags by their own names (CifakeArguments and
    TrainingArguments fields), e.g. `train(data="cifake", config="cifake-cnn-plus", num_train_epochs=40)`.
    A TrainingArguments field given overrides the recipe's. None on the non-main processes of a run."""
    opts, given = split_fields({**(asdict(arguments) if arguments else {}), **fields})
    lock = FolderLock()  # the folders this run writes, held until it ends: a second run on them is refused
    try:
        return _train(opts, given, lock)
    finally:
        lock.release()


def _train(opts: CifakeArguments, given: dict, lock) -> TrainResult | None:
    try:
        name, model_fields, training = resolve_recipe(opts.config)
    except ValueError as err:
        raise CifakeError(str(err)) from err
    asked = ", ".join(f"--{key}" for key in given if key not in RESUMABLE_FIELDS)  # flags that change what is trained
    undo = f" or undo the Trainer settings given ({asked})" if asked else ""
    training.update({key: getattr(opts, key) for key in _KIT_OVERRIDES if getattr(opts, key) is not None})
    training.update({RECIPE_FIELDS[key]: given.pop(key) for key in list(given) if key in RECIPE_FIELDS})
    _check_training(training)
    try:
        model_config = CifakeConfig(**model_fields)
    except Exception as err:  # ValueError from our checks; strict-dataclass and TypeErrors for wrong fields
        raise CifakeError(f"Bad model config {model_fields}: {err}") from err
    output_dir = Path(given.pop("output_dir", None) or DEFAULT_OUTPUT_DIR)
    seed, max_steps = given.pop("seed", 0), given.pop("max_steps", None)
    push_to, dataset_id = given.pop("hub_model_id", None) if given.pop("push_to_hub", False) else None, opts.dataset_id
    if given.get("eval_strategy") == "steps":  # a checkpoint at every validation, as load_best_model_at_end needs
        given = {"save_strategy": "steps", "save_steps": given["eval_steps"], **given}
    # family_head is recorded only when on, so that runs of earlier kits (which had none) still resume
    recorded = {key: value for key, value in training.items() if key != "family_head" or value}
    settings = {"recipe": name, "model": model_config.to_diff_dict(), "training": recorded, "data": str(opts.data),
                "pretrained": opts.pretrained, "seed": seed, "validation_fraction": opts.validation_fraction,
                "streaming": opts.streaming, "max_steps": max_steps}
    settings["model"].pop("transformers_version", None)
    columns = Columns(opts.image_column, opts.label_column)
    if columns != Columns():
        settings["columns"] = [columns.image, columns.label]
    if trainer_settings := {k: v for k, v in given.items() if k not in RESUMABLE_FIELDS}:
        settings["trainer"] = trainer_settings  # recorded only when given, so runs of earlier kits still resume
    # TrainingArguments made once, before the data is decoded: Trainer's own checks refuse bad settings here.
    try:
        args = training_arguments(output_dir, training, seed=seed, train_size=training["batch_size"],
                                  streaming=opts.streaming, max_steps=max_steps, **given)
    except (ValueError, TypeError) as err:
        raise CifakeError(f"Trainer refuses these settings: {first_line(err)}") from err

    if process_state().is_main_process:  # before the data is decoded or the model allocated
        check(output_dir, opts.resume, opts.overwrite, lock)
        if push_to:
            data = str(opts.data)  # --push_to_hub is checked before training, not after it: dataset id, then token
            if dataset_id is None and not ("/" in data and is_hub_id(data)):
                raise CifakeError(
                    f"--push_to_hub: --data {data!r} is a local folder, and the card's model-index names data by Hub "
                    f"id. Pass --dataset_id your-name/cifake (push the data with `cifake push-dataset`)."
                )
            push_token(push_to, example="your-name/cifake-cnn")  # the Hub asked whether it takes the token
    with _cannot_build():
        check_fits(model_config, training["batch_size"], training=True, what=f"the {name} model",
                   batch_flag=None if opts.resume else "--per_device_train_batch_size")
    processor = CifakeImageProcessor()
    val_pixels = None
    model_config.fake_families = None  # set below from the data, by the recipe's family_head; a stream: the plain head
    if opts.streaming:
        train_set, eval_set, sizes = _streaming_sets(opts.data, processor, training, opts.validation_fraction, seed,
                                                     columns)
    else:
        full = load_pixels(opts.data, "train", processor, columns=columns, split_flag=None)
        _check_scored_split(opts.data, opts.split)
        train_pixels, val_pixels = stratified_split(full, opts.validation_fraction, seed)
        model_config.input_encoding = full.encoding  # predict, explain and the Space store pictures the same way
        _require_both_labels(opts.data, {"train": full, "validation": val_pixels})
        families = fake_families(full) if training["family_head"] else []
        model_config.fake_families = families if len(families) > 1 else None  # one family: the plain head
        train_set = CifakeTensorDataset(train_pixels, augment=training["augment"], seed=seed,
                                        crop_padding=training["crop_padding"], families=model_config.fake_families)
        eval_set = CifakeTensorDataset(val_pixels, families=model_config.fake_families)
        sizes = {"train": len(train_pixels), "validation": len(val_pixels)}
    set_seed(seed)
    with _cannot_build():  # a bad backbone fails here, before any write
        model = CifakeForImageClassification(model_config)
    started_from = None
    if opts.pretrained and not opts.resume:  # a resumed run takes every weight from its checkpoint
        started_from = load_pretrained_backbone(model, opts.pretrained)
    run, checkpoint = _prepare_on_main_process(output_dir, settings, opts.resume, opts.overwrite, lock)
    # Where it trains, and the step counts that follow the train split's size, are known only now.
    args = replace(args, output_dir=str(run.work), **{**_sized(training, sizes["train"], opts.streaming, max_steps,
                                                                args.gradient_accumulation_steps), **given})
    trainer = make_trainer(model, processor, train_set, eval_set, run.work, training, args=args,
                           validations_by_steps=given.get("eval_strategy") == "steps")
    trainer.add_callback(DivergenceStop())
    with _guarded(trainer, run, opts.resume), _write_failures_as_os_errors(run.work):
        try:
            output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        except Diverged as err:
            raise CifakeError(
                f"Training diverged: {err}. Lower --learning_rate (this run's was {training['learning_rate']:g}; try "
                f"{training['learning_rate'] / 10:g}){undo}, and train again."
            ) from None
        except ValueError as err:
            if "checkpoint" in str(err):
                raise CifakeError(
                    f"Cannot resume in {run.work}: {err}. Run without --resume (and with --overwrite) to start again."
                ) from err
            raise
        threshold, validation_scores = choose_decision_threshold(trainer)
        trainer.save_model(str(run.work))
        trainer.save_state()
    if not trainer.is_world_process_zero():
        return None
    with _write_failures_as_os_errors(run.work):
        result = _final_report(trainer, run, opts, processor, settings, sizes, output.metrics, threshold, val_pixels,
                               validation_scores, started_from)
    finish(run)  # a replacement takes the old run's place only now, complete
    if push_to:
        try:
            result.pushed_to = push_model(run.final, push_to, dataset_id=dataset_id)
        except CifakeError as err:
            raise CifakeError(f"{err} The model is saved in {str(run.final)!r}: push it later with `cifake push-model "
                              f"{push_to} --model {run.final}`.") from err
    return result


def choose_decision_threshold(trainer) -> tuple[dict, tuple]:
    """Store as `config.fake_threshold` the P(FAKE) cut-off with the best balanced accuracy on the
    validation split, by the final (best) model; returns what was found, and the (labels, P(FAKE)) it used."""
    prediction = trainer.predict(trainer.eval_dataset, metric_key_prefix="validation")

    p_fake = fake_probability(torch.as_tensor(prediction.predictions), trainer.model.config).numpy()
    threshold = choose_threshold(prediction.label_ids, p_fake)
    trainer.model.config.fake_threshold = threshold
    return ({"fake_threshold": threshold, "chosen_on": "validation", "validation_images": int(len(p_fake)),
             "validation_roc_auc": prediction.metrics.get("validation_roc_auc")}, (prediction.label_ids, p_fake))


class CifakeTrainer(Trainer):
    """Trainer, except that no training batch holds a single image: batch norm cannot train on one, so a
    last batch of one (a training split of 1 more than a multiple of the batch) is left out of that epoch.
    Validation batches are never cut."""

    def get_train_dataloader(self):
        per_step = self.args.train_batch_size * max(1, self.args.world_size)
        lone = hasattr(self.train_dataset, "__len__") and len(self.train_dataset) % per_step == 1
        asked = self.args.dataloader_drop_last
        self.args.dataloader_drop_last = asked or lone
        try:
            return super().get_train_dataloader()
        finally:
            self.args.dataloader_drop_last = asked

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Trainer's, except for a family head (batches with `family_targets`): the families' cross-entropy, smoothed
        by the run's label_smoothing_factor and normalised as Trainer's own label smoother normalises."""
        if "family_targets" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(pixel_values=inputs["pixel_values"])
        logits, parallel = outputs.family_logits, self.args.n_gpu > 1
        loss = torch.nn.functional.cross_entropy(logits, inputs["family_targets"].to(logits.device),
                                                 label_smoothing=self.args.label_smoothing_factor,
                                                 reduction="mean" if num_items_in_batch is None or parallel else "sum")
        if num_items_in_batch is not None and parallel:  # DataParallel: one loss over every GPU's outputs
            loss = loss / self.current_gradient_accumulation_steps  # Trainer takes it as scaled for accumulation
        elif num_items_in_batch is not None:  # over the whole accumulated batch, on every process
            loss = loss / num_items_in_batch * (self.accelerator.num_processes
                                                if self.args.average_tokens_across_devices else 1)
        return (loss, outputs) if return_outputs else loss


def make_trainer(model, processor, train_set, eval_set, output_dir, training: dict, args=None,
                 validations_by_steps=False, **settings):
    """The `Trainer` that `cifake train` runs (benchmarks build theirs here too): with `args`, or the ones
    `training_arguments` makes of `settings`; its console is `CifakeConsole` unless `--verbose` (CIFAKE_VERBOSE=1)."""
    args = args or training_arguments(output_dir, training, **settings)
    patience = training["early_stopping_patience"]
    callbacks = [EarlyStoppingCallback(patience)] if patience else []
    trainer = CifakeTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=CifakeCollator(processor),
        compute_metrics=trainer_metrics,
        processing_class=processor,
        callbacks=callbacks,
    )
    if not verbose():
        trainer.remove_callback(PrinterCallback)  # a raw dict line per log
        unit = "validations" if validations_by_steps or settings.get("eval_strategy") == "steps" else "epochs"
        trainer.add_callback(CifakeConsole(patience, unit))
    return trainer


def training_arguments(output_dir, training: dict, seed: int = 0, train_size: int = 0, streaming: bool = False,
                       max_steps: int | None = None, **overrides):
    """The `TrainingArguments` of a run: the kit's from the recipe, then `overrides` (fields the user gave)."""
    cuda = torch.cuda.is_available()
    arguments = {
        "output_dir": str(output_dir),
        "num_train_epochs": training["epochs"],
        "per_device_train_batch_size": training["batch_size"],
        "per_device_eval_batch_size": max(training["batch_size"], 512),
        "learning_rate": training["learning_rate"],
        "weight_decay": training["weight_decay"],
        "lr_scheduler_type": training["lr_scheduler_type"],
        "warmup_steps": training["warmup_ratio"],
        "optim": training["optim"],
        "max_grad_norm": training["max_grad_norm"],
        "label_smoothing_factor": training["label_smoothing"],
        "eval_strategy": "steps" if streaming else "epoch",
        "save_strategy": "steps" if streaming else "epoch",
        "save_total_limit": 2,
        # Early stopping keeps the best checkpoint by the selection metric; without it (0) every epoch runs, the
        # final model is kept and no checkpoint is held back as "best".
        "load_best_model_at_end": training["early_stopping_patience"] > 0,
        "metric_for_best_model": training["selection_metric"] if training["early_stopping_patience"] > 0 else None,
        "greater_is_better": True,
        "logging_strategy": "steps",
        "logging_first_step": True,
        "seed": seed,
        "data_seed": seed,
        "bf16": cuda and torch.cuda.is_bf16_supported() and not overrides.get("fp16"),
        "use_cpu": not cuda,  # without it, torchrun / accelerate launch on CPU would not form a DDP group
        "ddp_find_unused_parameters": False,  # every parameter takes part in every step
        "dataloader_pin_memory": cuda,
        "report_to": "none",
        "remove_unused_columns": False,  # batches arrive whole from CifakeTensorDataset.__getitems__
        "disable_tqdm": not verbose(),
    }
    sized = _sized(training, train_size, streaming, max_steps, overrides.get("gradient_accumulation_steps", 1))
    return TrainingArguments(**{**arguments, **sized, **overrides})


def _sized(training: dict, train_size: int, streaming: bool, max_steps: int | None, accumulation: int) -> dict:
    """The TrainingArguments that follow the train split's size: steps count optimiser updates (batches /
    gradient accumulation); a stream has no epochs, so validations and the end are set in steps."""
    steps_per_epoch = max(1, math.ceil(train_size / (training["batch_size"] * accumulation)))
    sized = {"max_steps": max_steps or (-1 if not streaming else math.ceil(training["epochs"] * steps_per_epoch)),
             "logging_steps": max(1, steps_per_epoch // 10)}
    if streaming:
        sized.update(eval_steps=steps_per_epoch, save_steps=steps_per_epoch)
    return sized


class Diverged(Exception):
    """The model's numbers became NaN or infinite: no later step can bring it back."""


class DivergenceStop(TrainerCallback):
    """Stop at the first logged training loss that is not finite, instead of training on NaN weights
    until the metrics fail on them."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise Diverged(f"the training loss became {loss} by step {state.global_step} (epoch {state.epoch or 0:.2g})")


# How torch and safetensors say that a file could not be written (they raise RuntimeError and
# SafetensorError, not OSError): a full disk, a quota, a failing device.
_WRITE_FAILURES = ("PytorchStreamWriter failed", "unexpected pos", "iostream error", "file write failed",
                   "Error while serializing", "No space left on device", "os error 28", "os error 122")


@contextmanager
def _write_failures_as_os_errors(folder: Path):
    """A checkpoint or model that cannot be written ends as the OSError it is (ENOSPC where the disk is
    full), which the command reports in one line with the way to go on, instead of torch's traceback."""
    try:
        yield
    except OSError:
        raise
    except Exception as err:
        if not any(sign in str(err) for sign in _WRITE_FAILURES):
            raise
        try:
            usage = shutil.disk_usage(folder)
            full = usage.free < max(64 << 20, usage.total // 100)
        except OSError:
            full = "28" in str(err) or "space" in str(err)
        code = errno.ENOSPC if full else errno.EIO
        raise OSError(code, os.strerror(code), str(folder)) from err


@contextmanager
def _guarded(trainer, run: RunFolder, resuming: bool):
    """No "Writing model shards" / "Loading weights" bars at every checkpoint, nor Trainer's notice about
    checkpoint times, unless verbose. A run that fails ends its progress bar's line, so the error is a line of
    its own; a new run that ends before its first checkpoint (a bad setting found by Trainer, a divergence,
    Ctrl+C) leaves nothing behind, so the same command can simply run again."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    rotation_log = transformers_logging.get_logger("transformers.trainer_utils")
    if not verbose():
        transformers_logging.disable_progress_bar()
        rotation_log.addFilter(_no_mtime_notice)
    try:
        yield
    except BaseException:
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, CifakeConsole) and callback.bar is not None:
                callback.bar.close()
                callback.bar = None
        if not resuming and process_state().is_main_process:
            forget_unstarted(run)
        raise
    finally:
        rotation_log.removeFilter(_no_mtime_notice)
        if was_enabled:
            transformers_logging.enable_progress_bar()


def _no_mtime_notice(record) -> bool:
    """Drop Trainer's "mtime may not be reliable" notice: checkpoints written within a second of each other (a
    short epoch) make it sort them by step, which is right, and the notice would cut through the progress bar."""
    return "mtime may not be reliable" not in record.getMessage()


@contextmanager
def _cannot_build():
    """A config that cannot be built at all (ValueError) as one line."""
    try:
        yield
    except ValueError as err:
        raise CifakeError(f"Cannot build the model: {err}") from err


def trainer_metrics(eval_prediction) -> dict:
    """Trainer's `compute_metrics`: the kit's scalar metrics (ROC AUC included) from logits and labels."""
    logits = torch.as_tensor(eval_prediction.predictions).float()
    if not torch.isfinite(logits).all():
        raise Diverged("the model's outputs on the validation images became NaN or infinite")
    metrics = scored_metrics(eval_prediction.label_ids, logits.softmax(-1)[:, FAKE].numpy())
    return {k: v for k, v in metrics.items() if isinstance(v, float) and k != "threshold"}


class CifakeConsole(TrainerCallback):
    """What `cifake train` shows: one progress bar (stderr) for the whole run, ending where training ended,
    and above it one line per validation (stdout). Only the main process of a multi-process run shows it."""

    def __init__(self, patience: int = 0, unit: str = "epochs"):
        self.patience, self.unit = patience, unit  # early stopping counts validations: epochs, unless by steps
        self.bar = None
        self.losses: list[float] = []
        self.started = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="Training", unit="step")
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.bar is None or not metrics:
            return
        loss = f"{sum(self.losses) / len(self.losses):.4f}" if self.losses else "-"
        auroc = "-" if metrics.get("eval_roc_auc") is None else f"{metrics['eval_roc_auc']:.3f}"
        self.bar.write(
            f"epoch {state.epoch:g}/{args.num_train_epochs:g}: training loss {loss}, "
            f"validation loss {metrics.get('eval_loss', float('nan')):.4f}, "
            f"validation accuracy {metrics.get('eval_accuracy', float('nan')):.2%}, "
            f"AUROC {auroc} "
            f"({time.monotonic() - self.started:.1f} s)"
        )
        self.losses = []
        self.started = time.monotonic()

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is None:
            return
        stopped_early = state.global_step < state.max_steps
        if stopped_early:
            self.bar.total = self.bar.n  # the run is complete, not abandoned at a fraction of the plan
            self.bar.refresh()
        self.bar.close()
        self.bar = None
        if not args.load_best_model_at_end:
            print(f"the final model (epoch {state.epoch:g}) is kept; early stopping was off")
            return
        metric = args.metric_for_best_model.removeprefix("eval_").replace("roc_auc", "AUROC")
        best = "unknown" if state.best_metric is None else (
            f"{state.best_metric:.3f}" if metric == "AUROC" else f"{state.best_metric:.2%}")
        kept = f"the best model (validation {metric} {best}) is kept"
        print(f"early stopping after epoch {state.epoch:g}: no better validation {metric} for {self.patience} "
              f"{self.unit}; {kept}" if stopped_early else kept)


def _prepare_on_main_process(output_dir, settings: dict, resume: bool, overwrite: bool,
                             lock) -> tuple[RunFolder, object]:
    """(the run's folder, the checkpoint to resume from or None). Under `accelerate launch` / `torchrun`
    only the main process checks and prepares the folder (and sets broken checkpoints aside)."""
    state = process_state()
    if state.is_main_process:
        run = prepare(output_dir, settings, resume, overwrite, may_change=_RESUMABLE_CHANGES, lock=lock)
        checkpoint = resume_checkpoint(run.work) if resume else None
    state.wait_for_everyone()
    if not state.is_main_process:
        run = run_folder(output_dir)
        checkpoint = resume_checkpoint(run.work, clean=False) if resume else None
    return run, checkpoint


def _check_scored_split(data, split: str) -> None:
    """Refuse, before training, a --split the data does not have: only the default, test, falls back to the
    validation images carved from train (a dataset of one split), and that split is never scored by name. A source
    whose split names cannot be read is left to the final report, which then scores the validation images."""
    try:
        splits = get_dataset_split_names(str(data))
    except Exception:  # as in _final_report: sources that cannot say fall back, they are not refused
        return
    if split == "validation" and split not in splits:
        raise CifakeError("--split validation: the validation images are carved from train to choose the kept model "
                          "and its threshold, so scores on them flatter it. Score the test split (the default), or "
                          "another split of the data.")
    if split != "test" and split not in splits:
        raise CifakeError(f"--split {split!r}: the dataset has no such split (it has {', '.join(splits)}). Give one of "
                          f"those, or leave --split out to score test.")


def _final_report(trainer, run: RunFolder, opts: CifakeArguments, processor, settings, sizes, train_metrics,
                  threshold: dict, validation, validation_scores: tuple, started_from: dict | None) -> TrainResult:
    """Score the final model on `opts.split` (the validation images when the data has no such split) and
    write report/ where the run trained, naming the folder the model ends up in."""
    data, split = opts.data, opts.split
    model = trainer.model.eval()
    try:
        has_split = split in get_dataset_split_names(str(data))
    except Exception:  # streaming-only or unusual sources: score the validation set instead
        has_split = False
    if has_split and not settings["streaming"]:
        pixels = load_pixels(data, split, processor, columns=Columns(opts.image_column, opts.label_column))
        scored = split
    else:  # no such split (or streaming): the held-out validation set, clearly named as such
        pixels, scored = validation, "validation"
    if pixels is not None:
        metrics, p_fake = score(model, processor, pixels)
        images, generators, scores = len(pixels), pixels.generators, (pixels.labels.numpy(), p_fake)
    else:  # streamed validation examples: the scores the threshold was chosen from, by the same model
        scores = validation_scores
        metrics = one_label(scored_metrics(*scores, decision_threshold(model.config)))
        images, generators = len(scores[1]), []
    output_dir = run.final
    best = trainer.state.best_model_checkpoint
    summary = {
        **report_head(output_dir, data, scored, images, generators,
                      name=f"{output_dir.resolve().name}: {settings['recipe']}"),
        "recipe": settings["recipe"],
        "model_config": model.config.architecture(),
        "training": settings["training"],
        "sizes": sizes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_checkpoint": Path(best).name if best else None,  # in the model folder; None: the final model is kept
        "epochs_run": trainer.state.epoch,
        "decision_threshold": threshold,
        "pretrained_weights": started_from,
        "train_metrics": train_metrics,
    }
    report = write_report(run.work / REPORT_DIR, summary, metrics, trainer.state.log_history, scores=scores)
    if opts.save_predictions and pixels is not None:
        save_split_predictions(report.parent / PREDICTIONS_CSV, pixels, scores[1], metrics["threshold"])
    card = run.work / CARD  # the model card; push-model writes it again with the Hub ids. A user's own stays.
    if card.exists() and not is_kit_card(card):
        print(f"cifake train: kept your own {card.name} in {str(run.final)!r}; the model card is written by push-model",
              file=sys.stderr)
    else:
        card.write_text(render_model_card(run.work, str(run.final), opts.dataset_id), encoding="utf-8")
    return TrainResult(output_dir, scored, metrics, output_dir / REPORT_DIR / report.name, train_metrics)


def _streaming_sets(data, processor, training, validation_fraction, seed, columns):
    stream = open_split(data, "train", streaming=True, columns=columns, split_flag=None)
    info = stream.info.splits.get("train") if stream.info and stream.info.splits else None
    total = info.num_examples if info else None
    if not total:
        raise CifakeError(f"Streaming {data!r}: its card does not give the train split's size; pass --max_steps.")
    held = max(1, int(total * validation_fraction))
    shuffled = stream.shuffle(seed=seed, buffer_size=10_000)
    train_set = StreamingCifake(shuffled.skip(held), processor, augment=training["augment"], seed=seed, where=str(data),
                                crop_padding=training["crop_padding"])
    eval_set = StreamingCifake(shuffled.take(held), processor, where=str(data))
    return train_set, eval_set, {"train": total - held, "validation": held}


def _require_both_labels(data, splits: dict) -> None:
    """CifakeError unless every split a run learns or chooses from holds REAL and FAKE images."""
    for split, pixels in splits.items():
        counts = pixels.labels.bincount(minlength=len(LABEL_NAMES)).tolist()
        missing = [name for name, n in zip(LABEL_NAMES, counts) if n == 0]
        if missing:
            where = ("the train split" if split == "train" else
                     "the validation images held out from train (--validation_fraction)")
            have = ", ".join(f"{n:,} {name}" for name, n in zip(LABEL_NAMES, counts) if n)
            fix = ("Add " + " and ".join(missing) + " images to its train split" if split == "train" else
                   "Add images of that label, or hold out more with --validation_fraction")
            raise CifakeError(f"{str(data)!r}: {where} holds no {' or '.join(missing)} images ({have}); a detector "
                              f"learns from both labels. {fix}.")


def _check_training(training: dict) -> None:
    """The recipe's training settings, after the flags' overrides (checked already in arguments.py): a
    config's JSON may hold anything, NaN included."""
    for key, bounds in _TRAINING_RANGES.items():
        training[key] = bounds.check(f"The config's training setting {key!r}", training[key])
    if not isinstance(training["family_head"], bool):
        raise CifakeError(f"family_head {training['family_head']!r} is not true or false. Fix the recipe's training settings.")
    if training["selection_metric"] not in SELECTION_METRICS:
        raise CifakeError(f"selection_metric {training['selection_metric']!r} is not one of {', '.join(SELECTION_METRICS)} "
                          f"(the validation score that picks the best epoch). Fix the recipe's training settings.")
