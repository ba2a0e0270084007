"""The parameters of a training run, declared once.

`modeling.train.train` takes a `TrainOptions`; `cifake train` makes its flags from the same
fields (`--batch-size` <-> `batch_size`), with the help text below, so the command and the
Python API cannot drift apart. It lives in the leaf package because the command must build its
`--help` without importing torch, which `modeling` does on import.

`None` means "the recipe's value": each recipe in `modeling.topologies` brings its own epochs,
batch size, learning rate, early stopping and augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _help(text: str, old: tuple[str, ...] = (), metavar: str | None = None, choices: tuple[str, ...] | None = None) -> dict:
    # `old`: earlier spellings of the flag, still accepted (with a note) for one release; `choices`: the values it
    # takes. A list field's flag takes several values, after one flag or repeated.
    return {"help": text, "old_flags": old, "metavar": metavar, "choices": choices}


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
STRATEGIES = ("epoch", "steps")


@dataclass
class TrainOptions:
    """What to train, on what, into where, and for how long."""

    data: str = field(default="cifake", metadata=_help("dataset folder or Hub id (default: ./cifake)"))
    image_column: str = field(default="image", metadata=_help("the data's column of images (default: image)",
                                                              metavar="NAME"))
    label_column: str = field(default="label", metadata=_help(
        "the data's column of labels, a ClassLabel named FAKE and REAL in any case (default: label)", metavar="NAME"))
    output_dir: str = field(
        default="cifake-model",
        metadata=_help("model folder; checkpoints go below it (default: ./cifake-model)", metavar="DIR"),
    )
    config: str | None = field(
        default=None,
        metadata=_help("recipe name (default: paper-best), JSON file or JSON string; --list-configs shows the names"),
    )
    pretrained: str | None = field(
        default=None,
        metadata=_help("start a timm backbone from pretrained weights: 'timm' (its default weights, from the Hub), "
                       "hf-hub:OWNER/NAME, or a local timm checkpoint folder", metavar="SOURCE"),
    )
    epochs: float | None = field(default=None, metadata=_help("epochs (default: the recipe's)"))
    batch_size: int | None = field(default=None, metadata=_help("images per step and device (default: the recipe's)"))
    learning_rate: float | None = field(default=None, metadata=_help("peak learning rate (default: the recipe's)"))
    early_stopping_patience: int | None = field(
        default=None, metadata=_help("epochs (validations, with --eval-strategy steps) without a better validation "
                                     "score (the recipe's: accuracy or AUROC) before stopping; 0 = off (default: the recipe's)")
    )
    augment: bool | None = field(default=None, metadata=_help("random flips and crops (default: the recipe's)"))
    max_steps: int | None = field(default=None, metadata=_help("stop after this many steps (overrides --epochs)"))
    seed: int = field(default=0, metadata=_help("seed for weights, data order and the validation split (default: 0)"))
    validation_fraction: float = field(default=0.1, metadata=_help("share of train held out for validation (default: 0.1)"))
    split: str = field(
        default="test", metadata=_help("split scored at the end (default: test)", old=("--eval-split",))
    )
    save_predictions: bool = field(
        default=False, metadata=_help("also write report/predictions.csv: P(FAKE) and the verdict of every scored image")
    )
    streaming: bool = field(default=False, metadata=_help("stream the data instead of decoding it all first"))
    num_workers: int = field(default=0, metadata=_help("data-loader worker processes (default: 0)"))
    resume: bool = field(default=False, metadata=_help(
        "continue the run in --output-dir from its newest whole checkpoint (with --overwrite: a cut replacement)"))
    overwrite: bool = field(default=False, metadata=_help(
        "replace a training run in --output-dir: the new one trains beside it and takes its place when complete"))
    # Trainer's own settings that users reach for; --training-arg passes any other TrainingArguments field.
    gradient_accumulation_steps: int = field(
        default=1, metadata=_help("steps whose gradients add up before each update (default: 1)", metavar="N"))
    precision: str = field(default="auto", metadata=_help(
        "auto (bf16 on a GPU that has it, else fp32), fp32, bf16 or fp16 (a CUDA GPU only)", choices=PRECISIONS))
    eval_strategy: str = field(default="epoch", metadata=_help(
        "validate (and save a checkpoint) every epoch or every --eval-steps steps (default: epoch)", choices=STRATEGIES))
    eval_steps: int | None = field(default=None, metadata=_help("steps between validations with --eval-strategy steps",
                                                                metavar="N"))
    save_total_limit: int = field(default=2, metadata=_help(
        "checkpoints kept (the best is always kept; default: 2)", metavar="N"))
    report_to: list[str] | None = field(default=None, metadata=_help(
        "where Trainer logs, e.g. tensorboard (into MODEL/runs/), wandb, mlflow; several may follow (default: none)",
        metavar="NAME"))
    push_to_hub: bool = field(default=False, metadata=_help(
        "push the finished model to the Hub as `cifake push-model` does (needs --hub-model-id)"))
    hub_model_id: str | None = field(default=None, metadata=_help("Hub model repo for --push-to-hub", metavar="ID"))
    dataset_id: str | None = field(default=None, metadata=_help(
        "Hub id of the data, for the card's model-index when --data is a local folder", metavar="ID"))
    training_arg: list[str] | None = field(default=None, metadata=_help(
        "any other transformers TrainingArguments field, e.g. --training-arg warmup_steps=100 (repeatable)",
        metavar="KEY=VALUE"))
