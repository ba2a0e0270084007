"""The parameters of a training run, declared once.

`modeling.training.train.train` takes a `TrainOptions`; `cifake train` makes its flags from the same
fields (`--batch-size` <-> `batch_size`), with the help text below, so the command and the
Python API cannot drift apart. It lives in the leaf package because the command must build its
`--help` without importing torch, which `modeling` does on import.

`None` means "the recipe's value": each recipe in `modeling.recipes` brings its own epochs,
batch size, learning rate, early stopping and augmentation.

Every number a user gives the kit (here, and the dataset commands' seeds and shares) is checked by
a `Range` before any work: NaN, infinities, negative counts and seeds out of numpy's range are one
line naming the flag and what it takes, never a traceback from deep in a library.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import CifakeError


@dataclass(frozen=True)
class Range:
    """The numbers a setting takes: finite, within [low, high] (an `open` end excluded), whole if `whole`."""

    low: float | None = None
    high: float | None = None
    whole: bool = False
    open_low: bool = False
    open_high: bool = False

    def check(self, name: str, value):
        """`value` if it is in range, else CifakeError naming `name` (a flag or a setting) and the range."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if (not number or not math.isfinite(value) or (self.whole and not whole)
                or (self.low is not None and (value < self.low or (self.open_low and value == self.low)))
                or (self.high is not None and (value > self.high or (self.open_high and value == self.high)))):
            raise CifakeError(f"{name} must be {self.describe()}, got {value!r}.")
        return int(value) if self.whole else value

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        low, high = _plain(self.low), _plain(self.high)
        if self.low is not None and self.high is not None:
            if self.open_low and self.open_high:
                return f"{kind} between {low} and {high} (exclusive)"
            return (f"{kind} {f'above {low}' if self.open_low else f'from {low}'} "
                    f"{f'and below {high}' if self.open_high else ('and at most ' if self.open_low else 'to ') + high}")
        if self.low is not None:
            return f"{kind} {'above' if self.open_low else 'of at least'} {low}"
        return f"a finite {kind[2:]}" if self.high is None else f"{kind} of at most {high}"


def _plain(number) -> str:
    return "" if number is None else f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


SEEDS = Range(0, 2**32 - 1, whole=True)  # what numpy's and torch's generators take
COUNT = Range(1, whole=True)  # images, steps, layers: at least one
NONNEGATIVE_COUNT = Range(0, whole=True)
SHARE = Range(0, 1, open_low=True, open_high=True)  # a fraction of a split, both ends excluded
POSITIVE = Range(0, open_low=True)


def check_numbers(options) -> None:
    """Check every field of the dataclass `options` whose metadata has a `range` (None: left to the recipe)."""
    for item in dataclasses.fields(options):
        bounds = item.metadata.get("range")
        value = getattr(options, item.name)
        if bounds is not None and value is not None:
            setattr(options, item.name, bounds.check("--" + item.name.replace("_", "-"), value))


def _help(text: str, metavar: str | None = None, choices: tuple[str, ...] | None = None,
          bounds: Range | None = None) -> dict:
    # `choices`: the values the flag takes; `bounds`: the numbers it takes. A list field's flag takes several
    # values, after one flag or repeated.
    return {"help": text, "metavar": metavar, "choices": choices, "range": bounds}


LEARNING_RATES = Range(0, 1, open_low=True)  # above 1, Adam's steps throw the weights out of any useful range
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
    epochs: float | None = field(default=None, metadata=_help("epochs (default: the recipe's)", bounds=POSITIVE))
    batch_size: int | None = field(default=None, metadata=_help("images per step and device (default: the recipe's)",
                                                                bounds=COUNT))
    learning_rate: float | None = field(default=None, metadata=_help("peak learning rate (default: the recipe's)",
                                                                    bounds=LEARNING_RATES))
    early_stopping_patience: int | None = field(
        default=None, metadata=_help("epochs (validations, with --eval-strategy steps) without a better validation "
                                     "score (the recipe's: accuracy or AUROC) before stopping; 0 = off (default: the recipe's)",
                               bounds=NONNEGATIVE_COUNT)
    )
    augment: bool | None = field(default=None, metadata=_help("random flips and crops (default: the recipe's)"))
    max_steps: int | None = field(default=None, metadata=_help("stop after this many steps (overrides --epochs)",
                                                              bounds=COUNT))
    seed: int = field(default=0, metadata=_help("seed for weights, data order and the validation split (default: 0)",
                                               bounds=SEEDS))
    validation_fraction: float = field(default=0.1, metadata=_help("share of train held out for validation (default: 0.1)",
                                                                  bounds=SHARE))
    split: str = field(
        default="test", metadata=_help("split scored at the end (default: test)")
    )
    save_predictions: bool = field(
        default=False, metadata=_help("also write report/predictions.csv: P(FAKE) and the verdict of every scored image")
    )
    streaming: bool = field(default=False, metadata=_help("stream the data instead of decoding it all first"))
    num_workers: int = field(default=0, metadata=_help("data-loader worker processes (default: 0)",
                                                      bounds=NONNEGATIVE_COUNT))
    resume: bool = field(default=False, metadata=_help(
        "continue the run in --output-dir from its newest whole checkpoint (with --overwrite: a cut replacement)"))
    overwrite: bool = field(default=False, metadata=_help(
        "replace a training run in --output-dir: the new one trains beside it and takes its place when complete"))
    # Trainer's own settings that users reach for; --training-arg passes any other TrainingArguments field.
    gradient_accumulation_steps: int = field(
        default=1, metadata=_help("steps whose gradients add up before each update (default: 1)", metavar="N",
                                   bounds=COUNT))
    precision: str = field(default="auto", metadata=_help(
        "auto (bf16 on a GPU that has it, else fp32), fp32, bf16 or fp16 (a CUDA GPU only)", choices=PRECISIONS))
    eval_strategy: str = field(default="epoch", metadata=_help(
        "validate (and save a checkpoint) every epoch or every --eval-steps steps (default: epoch)", choices=STRATEGIES))
    eval_steps: int | None = field(default=None, metadata=_help("steps between validations with --eval-strategy steps",
                                                                metavar="N", bounds=COUNT))
    save_total_limit: int = field(default=2, metadata=_help(
        "checkpoints kept (the best is always kept; default: 2)", metavar="N", bounds=COUNT))
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

    def __post_init__(self):
        check_numbers(self)
