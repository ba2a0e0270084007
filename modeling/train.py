"""`cifake train`: a CIFAKE model trained with transformers' `Trainer` on decoded tensors.

Trainer brings checkpoints, resume, evaluation, early stopping, logging and, through accelerate,
multi-GPU and multi-node runs (`accelerate launch` / `torchrun` run this unchanged). The input
pipeline decodes the dataset once (`data.load_pixels`) and feeds whole uint8 batches, so the
steps do model work, not JPEG decoding. A validation split is carved from train (stratified by
label and CIFAR-10 class); the test split is only scored at the end, never used for choices.

Output folder: the final model at its root (`save_pretrained`: config, safetensors weights,
image processor and the code files behind `auto_map`), `checkpoint-*` below it, `report/` with
the metrics JSON and figures, and `cifake_run.json` with the settings of the run.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from dataset_builder.errors import CifakeError

from .topologies import resolve_recipe

RUN_FILE = "cifake_run.json"
REPORT_DIR = "report"
# Settings a resumed run may change: how long it goes on, not what it trains.
_RESUMABLE_CHANGES = {"epochs", "max_steps", "early_stopping_patience"}


@dataclass
class TrainResult:
    output_dir: Path
    eval_split: str
    metrics: dict
    report: Path
    train_metrics: dict


def train(
    data: str = "cifake",
    output_dir: str | Path = "cifake-model",
    config: str | dict | None = None,
    epochs: float | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    validation_fraction: float = 0.1,
    early_stopping_patience: int | None = None,
    augment: bool | None = None,
    eval_split: str = "test",
    streaming: bool = False,
    max_steps: int | None = None,
    num_workers: int = 0,
) -> TrainResult:
    """Train a CIFAKE model on `data` (dataset folder or Hub id) into `output_dir`.

    `config` is a recipe name from `modeling.topologies` (default: the paper's best CNN), a JSON
    file or a JSON string. The other arguments override the recipe's training settings.
    """
    from transformers import set_seed

    from . import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
    from .data import CifakeTensorDataset, load_pixels, stratified_split

    name, model_fields, training = _recipe(config)
    for key, value in {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                       "early_stopping_patience": early_stopping_patience, "augment": augment}.items():
        if value is not None:
            training[key] = value
    _check_training(training, max_steps)
    model_config = _model_config(CifakeConfig, model_fields)
    settings = {"recipe": name, "model": model_config.to_diff_dict(), "training": training, "data": str(data),
                "seed": seed, "validation_fraction": validation_fraction, "streaming": streaming, "max_steps": max_steps}
    settings["model"].pop("transformers_version", None)
    settings = json.loads(json.dumps(settings))  # as stored, so a resumed run compares like with like

    processor = CifakeImageProcessor()
    if streaming:
        train_set, eval_set, sizes = _streaming_sets(data, processor, training, validation_fraction, seed)
    else:
        full = load_pixels(data, "train", processor)
        train_pixels, val_pixels = stratified_split(full, validation_fraction, seed)
        train_set = CifakeTensorDataset(train_pixels, augment=training["augment"], seed=seed)
        eval_set = CifakeTensorDataset(val_pixels)
        sizes = {"train": len(train_pixels), "validation": len(val_pixels)}
    set_seed(seed)
    model = _build(CifakeForImageClassification, model_config)  # a bad backbone fails here, before any write
    output_dir = _prepare_on_main_process(output_dir, settings, resume, overwrite)
    trainer = make_trainer(model, processor, train_set, eval_set, output_dir, training, seed=seed,
                           train_size=sizes["train"], streaming=streaming, max_steps=max_steps, num_workers=num_workers)
    try:
        output = trainer.train(resume_from_checkpoint=True if resume else None)
    except ValueError as err:
        if "checkpoint" in str(err):
            raise CifakeError(f"Cannot resume in {output_dir}: {err}. Run without --resume (and with --overwrite) to start again.") from err
        raise
    trainer.save_model(str(output_dir))
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return None
    return _final_report(trainer, output_dir, data, eval_split, processor, settings, sizes, output.metrics)


def make_trainer(model, processor, train_set, eval_set, output_dir, training: dict, seed: int = 0, train_size: int = 0,
                 streaming: bool = False, max_steps: int | None = None, num_workers: int = 0, **overrides):
    """The `Trainer` that `cifake train` runs (benchmarks build theirs here too). `overrides` go to TrainingArguments."""
    import torch
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    from .data import CifakeCollator

    cuda = torch.cuda.is_available()
    steps_per_epoch = max(1, math.ceil(train_size / training["batch_size"]))
    arguments = {
        "output_dir": str(output_dir),
        "num_train_epochs": training["epochs"],
        "max_steps": max_steps or (-1 if not streaming else math.ceil(training["epochs"] * steps_per_epoch)),
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
        "eval_steps": steps_per_epoch if streaming else None,
        "save_steps": steps_per_epoch if streaming else None,
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": "accuracy",
        "greater_is_better": True,
        "logging_strategy": "steps",
        "logging_steps": max(1, steps_per_epoch // 10),
        "logging_first_step": True,
        "seed": seed,
        "data_seed": seed,
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "use_cpu": not cuda,  # without it, torchrun / accelerate launch on CPU would not form a DDP group
        "ddp_find_unused_parameters": False,  # every parameter takes part in every step
        "dataloader_num_workers": num_workers,
        "dataloader_pin_memory": cuda,
        "report_to": "none",
        "remove_unused_columns": False,  # batches arrive whole from CifakeTensorDataset.__getitems__
    }
    args = TrainingArguments(**{**arguments, **overrides})
    callbacks = [EarlyStoppingCallback(training["early_stopping_patience"])] if training["early_stopping_patience"] else []
    return Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=CifakeCollator(processor),
        compute_metrics=trainer_metrics,
        processing_class=processor,
        callbacks=callbacks,
    )


def trainer_metrics(eval_prediction) -> dict:
    """Trainer's `compute_metrics`: the kit's scalar metrics from logits and labels."""
    from .report import compute_metrics

    predictions = eval_prediction.predictions.argmax(-1)
    metrics = compute_metrics(predictions, eval_prediction.label_ids)
    return {k: v for k, v in metrics.items() if isinstance(v, float)}


def _prepare_on_main_process(output_dir, settings: dict, resume: bool, overwrite: bool) -> Path:
    """Under `accelerate launch` / `torchrun` only the main process checks and prepares the folder."""
    from dataset_builder.generate import process_state

    state = process_state()
    if state.is_main_process:
        prepare_run_dir(output_dir, settings, resume, overwrite)
    state.wait_for_everyone()
    return Path(output_dir).expanduser()


def prepare_run_dir(output_dir: str | Path, settings: dict, resume: bool, overwrite: bool) -> Path:
    """Check `output_dir` before anything is written: new, resumed, or replaced on request only."""
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise CifakeError(f"--output-dir {str(out)!r} is a file, not a folder. Choose another --output-dir.")
    entries = sorted(p.name for p in out.iterdir()) if out.exists() else []
    run_file = out / RUN_FILE
    if entries and not run_file.is_file():
        raise CifakeError(
            f"--output-dir {str(out)!r} already holds other files ({', '.join(entries[:5])}); nothing was written. "
            f"Choose a new or empty folder."
        )
    if run_file.is_file():
        if overwrite:
            shutil.rmtree(out)
        elif resume:
            previous = json.loads(run_file.read_text())
            changed = sorted(k for k in settings.keys() | previous.keys()
                             if k not in _RESUMABLE_CHANGES and previous.get(k) != settings.get(k))
            changed += sorted(k for k in set(settings["training"]) - _RESUMABLE_CHANGES
                              if previous.get("training", {}).get(k) != settings["training"].get(k))
            changed = [k for k in changed if k != "training"]
            if changed:
                raise CifakeError(
                    f"{str(out)!r} holds a run with other settings ({', '.join(changed)}); it cannot be resumed with "
                    f"these. Use the same settings, or --overwrite to start again."
                )
            if not any(out.glob("checkpoint-*")):
                raise CifakeError(f"{str(out)!r} has no checkpoint to resume from. Run without --resume and with --overwrite.")
        else:
            raise CifakeError(
                f"--output-dir {str(out)!r} already holds a training run. Pass --resume to continue it, "
                f"--overwrite to replace it, or choose another folder."
            )
    elif resume:
        raise CifakeError(f"Nothing to resume: {str(out)!r} holds no training run. Run without --resume.")
    out.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    return out


def _final_report(trainer, output_dir: Path, data, eval_split: str, processor, settings, sizes, train_metrics) -> TrainResult:
    from datasets import get_dataset_split_names

    from .data import load_pixels
    from .evaluation import score
    from .report import compute_metrics, write_report

    model = trainer.model.eval()
    try:
        has_split = eval_split in get_dataset_split_names(str(data))
    except Exception:  # streaming-only or unusual sources: score the validation set instead
        has_split = False
    if has_split and not settings["streaming"]:
        pixels = load_pixels(data, eval_split, processor)
        metrics, _ = score(model, processor, pixels)
        scored, images, generators = eval_split, len(pixels), pixels.generators
    else:  # no such split (or streaming): the held-out validation set, clearly named as such
        prediction = trainer.predict(trainer.eval_dataset)
        metrics = compute_metrics(prediction.predictions.argmax(-1), prediction.label_ids)
        scored, images, generators = "validation", len(prediction.label_ids), []
    summary = {
        "title": f"{output_dir.name}: {settings['recipe']} on {Path(str(data)).name} [{scored}]",
        "model": str(output_dir),
        "data": str(data),
        "split": scored,
        "images": images,
        "generators": generators,
        "recipe": settings["recipe"],
        "model_config": model.config.architecture(),
        "training": settings["training"],
        "sizes": sizes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "epochs_run": trainer.state.epoch,
        "train_metrics": train_metrics,
    }
    report = write_report(output_dir / REPORT_DIR, summary, metrics, trainer.state.log_history)
    return TrainResult(output_dir, scored, metrics, report, train_metrics)


def _streaming_sets(data, processor, training, validation_fraction, seed):
    from .data import StreamingCifake, open_split

    stream = open_split(data, "train", streaming=True)
    info = stream.info.splits.get("train") if stream.info and stream.info.splits else None
    total = info.num_examples if info else None
    if not total:
        raise CifakeError(f"Streaming {data!r}: its card does not give the train split's size; pass --max-steps.")
    held = max(1, int(total * validation_fraction))
    shuffled = stream.shuffle(seed=seed, buffer_size=10_000)
    train_set = StreamingCifake(shuffled.skip(held), processor, augment=training["augment"], seed=seed, where=str(data))
    eval_set = StreamingCifake(shuffled.take(held), processor, where=str(data))
    return train_set, eval_set, {"train": total - held, "validation": held}


def _recipe(config):
    try:
        return resolve_recipe(config)
    except ValueError as err:
        raise CifakeError(str(err)) from err


def _model_config(config_class, fields: dict):
    try:
        return config_class(**fields)
    except Exception as err:  # ValueError from our checks; strict-dataclass and TypeErrors for wrong fields
        raise CifakeError(f"Bad model config {fields}: {err}") from err


def _build(model_class, config):
    try:
        return model_class(config)
    except ValueError as err:
        raise CifakeError(f"Cannot build the model: {err}") from err


def _check_training(training: dict, max_steps) -> None:
    for key in ("epochs", "batch_size", "learning_rate"):
        if not training[key] or training[key] <= 0:
            flag = "--" + key.replace("_", "-")
            raise CifakeError(f"{flag} must be positive, got {training[key]}.")
    if max_steps is not None and max_steps < 1:
        raise CifakeError(f"--max-steps must be at least 1, got {max_steps}.")
