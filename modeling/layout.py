"""A model folder's layout: every name the kit writes into it, in one place.

    MODEL/config.json, model.safetensors, preprocessor_config.json, *_cifake.py   the model (save_pretrained)
    MODEL/README.md                 the model card (the kit's when it carries the kit's tag)
    MODEL/cifake_run.json           how the run was trained: a rerun with other settings is refused
    MODEL/checkpoint-N/             Trainer's checkpoints, for --resume
    MODEL/report/                   the final scoring: report.json and its figures
    MODEL/eval/NAME/                `cifake evaluate`'s default output, the same files
    MODEL/onnx/                     `cifake export-onnx`'s default output
    MODEL/runs/                     TensorBoard's events, with --report_to tensorboard

`KIT_TREE` claims these for the kit (cifake_kit.outputs.KitTree); anything else in the folder is
the user's and survives `--overwrite`.
"""

from cifake_kit.outputs import SWITCH_FILE, is_kit_card

RUN_FILE = "cifake_run.json"
REPLACEMENT_FILE = ".cifake-replacement.json"  # in a run made to replace another (--overwrite): what it replaces
CARD = "README.md"
REPORT_DIR = "report"
EVAL_DIR = "eval"
ONNX_DIR = "onnx"

# A report folder (REPORT_DIR, or evaluate's output): the report and its figures, the robustness table, predictions.
REPORT_JSON = "report.json"
CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "training_curves.png"
ROC_PNG = "roc_curve.png"
PR_PNG = "pr_curve.png"
RELIABILITY_PNG = "reliability.png"
PREDICTIONS_CSV = "predictions.csv"
ROBUSTNESS_JSON, ROBUSTNESS_MD = "robustness.json", "robustness.md"
EVALUATION_FILES = (REPORT_JSON, CONFUSION_PNG, CURVES_PNG, ROC_PNG, PR_PNG, RELIABILITY_PNG, ROBUSTNESS_JSON,
                    ROBUSTNESS_MD, PREDICTIONS_CSV)
EVALUATION_STAGING = ".cifake-evaluate"  # + ".<pid>": a new evaluation, written whole before it replaces the old one

# An ONNX export folder.
ONNX_FILE = "model.onnx"
ONNX_RECORD = "export.json"  # the SHA-256 of the weights exported: push-model refuses an export of other weights
ONNX_FILES = (ONNX_FILE, "config.json", "preprocessor_config.json", ONNX_RECORD)
ONNX_STAGING = ".cifake-onnx"  # + ".<pid>": a new export, checked whole before it replaces the old one

_REPORT_TREE = {**dict.fromkeys(EVALUATION_FILES, True), "*.tmp": True}
KIT_TREE = {
    **dict.fromkeys(("config.json", "model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors",
                     "preprocessor_config.json", "*_cifake.py", "training_args.bin", "trainer_state.json",
                     "all_results.json", "train_results.json", "eval_results.json", RUN_FILE,
                     REPLACEMENT_FILE, SWITCH_FILE, ".*.tmp"), True),  # .*.tmp: a JSON file being written when a kill came
    CARD: is_kit_card,
    REPORT_DIR: _REPORT_TREE,
    EVAL_DIR: {"*": {**_REPORT_TREE, f"{EVALUATION_STAGING}.*": _REPORT_TREE}},
    ONNX_DIR: {**dict.fromkeys(ONNX_FILES, True), f"{ONNX_STAGING}.*": True},
    "runs": {"*": {"events.out.tfevents.*": True}},  # TensorBoard's, with --report_to tensorboard
    "checkpoint-*": True,  # Trainer's own: it deletes old ones whole as a run goes on
}
