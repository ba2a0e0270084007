"""`cifake train`'s arguments: `HfArgumentParser((CifakeArguments, TrainingArguments))`, as in
transformers' example scripts, so every TrainingArguments field is a flag under its own name; `train(...)`
takes the same names as keywords. A recipe (`--config`) sets its own Trainer fields (`RECIPE_FIELDS`); one
the user gives overrides it, one left alone keeps the recipe's value, so the parser records which were
given. The fields the kit sets itself are refused by name, with the flag that sets them (`KIT_SET`).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from dataclasses import dataclass, field

import torch

from cifake_kit.errors import CifakeError
from cifake_kit.options import COUNT, LEARNING_RATES, NONNEGATIVE_COUNT, POSITIVE, SEEDS, SHARE, Range

# TrainingArguments fields a recipe sets -> the recipe's own name for them (modeling/recipes.py).
RECIPE_FIELDS = {
    "num_train_epochs": "epochs", "per_device_train_batch_size": "batch_size", "learning_rate": "learning_rate",
    "weight_decay": "weight_decay", "lr_scheduler_type": "lr_scheduler_type", "warmup_steps": "warmup_ratio",
    "optim": "optim", "max_grad_norm": "max_grad_norm", "label_smoothing_factor": "label_smoothing",
}
# TrainingArguments fields the kit sets itself: the kit's flag that sets each, or why it must stay as it is.
KIT_SET = {
    "resume_from_checkpoint": "use --resume (the kit picks the newest whole checkpoint)",
    "disable_tqdm": "use --verbose for Trainer's own bars",
    "load_best_model_at_end": "--early_stopping_patience above 0 keeps the best checkpoint, 0 the final model",
    "metric_for_best_model": "the recipe's selection_metric chooses it (--config), for early stopping",
    "greater_is_better": "the kit's selection metrics are higher-is-better",
    "remove_unused_columns": "the kit's batches arrive whole", "use_cpu": "the kit uses a GPU when there is one",
    "prediction_loss_only": "the kit's metrics need the predictions", "eval_do_concat_batches": "the kit's metrics need it",
    "save_only_model": "--resume needs the optimiser state", "include_for_metrics": "the kit's metrics need it as it is",
    "batch_eval_metrics": "the kit's metrics need every prediction at once",
    "hub_token": "the kit pushes with `cifake push-model` (--push_to_hub runs it); log in with `hf auth login`",
    "hub_strategy": "the kit pushes the finished model once, with `cifake push-model`",
    "hub_private_repo": "push with `cifake push-model --private` after training",
    "hub_always_push": "the kit pushes the finished model once", "hub_revision": "the kit pushes to the main branch",
}
# Trainer fields that leave what is trained as it is (where it reports and what it keeps, how long it goes
# on): a resumed run may change them, and a diverged run's message does not suggest undoing them.
RESUMABLE_FIELDS = {"output_dir", "report_to", "save_total_limit", "dataloader_num_workers", "push_to_hub",
                    "hub_model_id", "logging_steps", "logging_strategy", "max_steps", "num_train_epochs"}
# The numbers users give most, checked before any work with a one-line error (TrainingArguments checks its own).
RANGES = {
    "num_train_epochs": POSITIVE, "per_device_train_batch_size": COUNT, "learning_rate": LEARNING_RATES,
    "seed": SEEDS, "data_seed": SEEDS, "max_steps": COUNT, "gradient_accumulation_steps": COUNT,
    "save_total_limit": COUNT, "dataloader_num_workers": NONNEGATIVE_COUNT, "eval_steps": COUNT,
    "weight_decay": Range(0), "warmup_steps": Range(0), "max_grad_norm": Range(0),
    "label_smoothing_factor": Range(0, 1, open_high=True),
}
DEFAULT_OUTPUT_DIR = "cifake-model"
# Trainer fields whose default is the kit's own: their help says so.
_KIT_HELP = {
    "output_dir": f"the model folder: final model, checkpoints, report/ (default: ./{DEFAULT_OUTPUT_DIR})",
    "seed": "seed of the weights, the data order and the validation split carved from train (default: 0)",
}


def _help(text: str, metavar: str | None = None) -> dict:
    return {"help": text, "metavar": metavar}  # HfArgumentParser hands a field's metadata to add_argument


@dataclass
class CifakeArguments:
    """What to train, on what, and how the run's folder is treated; Trainer's own settings are TrainingArguments'."""

    data: str = field(default="cifake", metadata=_help("dataset folder or Hub id (default: ./cifake)"))
    image_column: str = field(default="image", metadata=_help("the data's column of images (default: image)",
                                                              metavar="NAME"))
    label_column: str = field(default="label", metadata=_help(
        "the data's column of labels, a ClassLabel named FAKE and REAL in any case (default: label)", metavar="NAME"))
    config: str | None = field(default=None, metadata=_help(
        "recipe name (default: paper-best), JSON file or JSON string; --list_configs shows the names"))
    list_configs: bool = field(default=False, metadata=_help("print the recipe names and exit"))
    pretrained: str | None = field(default=None, metadata=_help(
        "start a timm backbone from pretrained weights: 'timm' (its default weights, from the Hub), hf-hub:OWNER/NAME, "
        "or a local timm checkpoint folder", metavar="SOURCE"))
    early_stopping_patience: int | None = field(default=None, metadata=_help(
        "validations without a better score (the recipe's: accuracy or AUROC) before stopping, keeping the best model; "
        "0 = off: every epoch runs and the final model is kept (default: the recipe's)"))
    augment: bool | None = field(default=None, metadata=_help(
        "true or false: random flips and crops (default: the recipe's)", metavar="BOOL"))
    family_head: bool | None = field(default=None, metadata=_help(
        "true or false: one output per generator family of the training fakes, beside REAL, where they come from two "
        "families or more (default: the recipe's; cifake-forensic's is true)", metavar="BOOL"))
    validation_fraction: float = field(default=0.1, metadata=_help(
        "share of train held out for validation (default: 0.1)"))
    split: str = field(default="test", metadata=_help("split scored at the end (default: test)"))
    save_predictions: bool = field(default=False, metadata=_help(
        "also write report/predictions.csv: P(FAKE) and the verdict of every scored image"))
    streaming: bool = field(default=False, metadata=_help("stream the data instead of decoding it all first"))
    resume: bool = field(default=False, metadata=_help(
        "continue the run in --output_dir from its newest whole checkpoint (with --overwrite: a cut replacement)"))
    overwrite: bool = field(default=False, metadata=_help(
        "replace a training run in --output_dir: the new one trains beside it and takes its place when complete"))
    dataset_id: str | None = field(default=None, metadata=_help(
        "Hub id of the data, for the card's model-index when --data is a local folder", metavar="ID"))
    verbose: bool = field(default=False, metadata=_help("show Trainer's own progress bars and log lines"))

    def __post_init__(self):
        for name, bounds in (("early_stopping_patience", NONNEGATIVE_COUNT), ("validation_fraction", SHARE)):
            if getattr(self, name) is not None:
                setattr(self, name, bounds.check(f"--{name}", getattr(self, name)))


def split_fields(fields: dict) -> tuple[CifakeArguments, dict]:
    """Keyword arguments of `train(...)`: the kit's into CifakeArguments, the Trainer fields checked (`check_trainer`)."""
    from transformers import TrainingArguments

    kit_names = {f.name for f in dataclasses.fields(CifakeArguments)}
    trainer_names = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    unknown = sorted(set(fields) - kit_names - trainer_names)
    if unknown:
        close = difflib.get_close_matches(unknown[0], kit_names | trainer_names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise CifakeError(f"{unknown[0]!r} is neither a setting of the kit nor a TrainingArguments field.{hint}")
    kit = CifakeArguments(**{k: v for k, v in fields.items() if k in kit_names})
    # None is "not given", as an absent flag is: a recipe's value, or Trainer's default, stays.
    return kit, check_trainer({k: v for k, v in fields.items() if k in trainer_names and v is not None})


def check_trainer(given: dict) -> dict:
    """The Trainer fields a user gave, checked: none the kit sets itself, numbers in range, pushes complete."""
    for name, value in given.items():
        if name in KIT_SET:
            raise CifakeError(f"--{name}: {KIT_SET[name]}.")
        if name in RANGES:
            given[name] = RANGES[name].check(f"--{name}", value)
    if given.get("push_to_hub") and not given.get("hub_model_id"):
        raise CifakeError("--push_to_hub needs --hub_model_id your-name/cifake-cnn: the Hub repo to push to.")
    if given.get("hub_model_id") and not given.get("push_to_hub"):
        raise CifakeError("--hub_model_id names where --push_to_hub pushes: pass --push_to_hub too (or `cifake "
                          "push-model` after training).")
    if given.get("eval_strategy") == "steps" and given.get("eval_steps") is None:
        raise CifakeError("--eval_strategy steps needs --eval_steps N (N >= 1): how many steps between validations.")
    if given.get("eval_steps") is not None and given.get("eval_strategy") != "steps":
        raise CifakeError(f"--eval_steps {given['eval_steps']} needs --eval_strategy steps (the kit validates once an "
                          f"epoch otherwise).")
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    report_to = given.get("report_to") or []
    for name in [report_to] if isinstance(report_to, str) else report_to:  # one not installed fails now, not later
        if name not in ("all", "none") and name not in INTEGRATION_TO_CALLBACK:
            raise CifakeError(f"--report_to {name!r} is not one of transformers' integrations: "
                              f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}, or none.")
        if name not in ("all", "none") and name not in get_available_reporting_integrations():
            package = {"comet_ml": "comet-ml"}.get(name, name)
            raise CifakeError(f"--report_to {name} needs its package, which is not installed: pip install {package}.")
    if given.get("fp16"):
        if not torch.cuda.is_available():
            raise CifakeError("--fp16 needs a CUDA GPU; on the CPU train in fp32 (the default) or with --bf16.")
    return given


def make_parser(prog: str = "cifake train", **kwargs):
    """The `cifake train` parser: the kit's fields and every TrainingArguments field, each under its own name."""
    from transformers import HfArgumentParser, TrainingArguments

    # Over a hundred flags: the usage line names the main ones, so that an error is read at once, not after 100 lines.
    kwargs.setdefault("usage", f"{prog} [--data DATA] [--config CONFIG] [--output_dir DIR] [options] (each option: "
                               f"{prog} --help)")
    parser = HfArgumentParser((CifakeArguments, TrainingArguments), prog=prog, allow_abbrev=False, **kwargs)
    trainer_names = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    for action in parser._actions:
        if action.dest in trainer_names:
            action.default = _UNSET  # given or not: a field left alone keeps the recipe's value
        if action.dest == "report_to":  # TrainingArguments takes a list of integrations; its parser types it str
            action.nargs = "+"
        if action.nargs == "+":  # a repeated list flag adds up, as every list flag of the kit does
            action.__class__ = argparse._ExtendAction
            action.default = None if action.dest in trainer_names else action.default
        if action.dest in _KIT_HELP:
            action.help = _KIT_HELP[action.dest]
    return parser


def parse(argv: list[str], **kwargs) -> tuple[CifakeArguments, dict]:
    """`cifake train`'s command line: the kit's arguments, and the TrainingArguments fields it gives."""
    namespace = make_parser(**kwargs).parse_args(argv)
    return split_fields({name: value for name, value in vars(namespace).items() if value is not _UNSET})


_UNSET = type("Unset", (), {"__repr__": lambda self: "the recipe's, else Trainer's"})()
