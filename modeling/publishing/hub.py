"""`cifake push-model`: a trained model folder to the Hub in one commit, with its card (card.py);
checkpoints and pickled training state stay home.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from cifake_kit.errors import CifakeError, first_line
from cifake_kit.hub import push_token
from modeling.inference.core import check_model_folder
from modeling.inference.export_onnx import check_current
from modeling.publishing.card import render_model_card, report_of, scored_dataset_id

UPLOAD_PATTERNS = ["config.json", "preprocessor_config.json", "*.safetensors", "*.py", "cifake_run.json",
                   "onnx/model.onnx", "onnx/*.json",  # `cifake export-onnx`, when it was run
                   "report/*.json", "report/*.png", "eval/*/robustness.md", "eval/*/robustness.json"]


def push_model(model: str | Path, repo_id: str, private: bool = False, token: str | None = None,
               dataset_id: str | None = None) -> str:
    """Upload the model folder `model` to the Hub model repo `repo_id`; return the repo URL. The card's
    model-index names the data by Hub id: `dataset_id`, needed when the model was scored on a local folder."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise CifakeError(
            f"{str(folder)!r} is not a saved model (config.json and model.safetensors). Pass the folder "
            f"written by `cifake train`."
        )
    check_model_folder(folder)

    check_current(folder)  # an ONNX export of other weights would go up beside these
    token = push_token(repo_id, token, example="your-name/cifake-cnn")
    data = scored_dataset_id(folder, dataset_id)
    if data is None:
        raise CifakeError(
            f"{str(folder)!r} was scored on the local dataset {report_of(folder).get('data')!r}, which is no Hub id: the "
            f"card's model-index needs one. Push the data with `cifake push-dataset your-name/cifake --data ...` and "
            f"pass --dataset-id your-name/cifake."
        )
    card = render_model_card(folder, repo_id, data)
    files = sorted({p for pattern in UPLOAD_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    operations = [CommitOperationAdd(str(p.relative_to(folder)), str(p)) for p in files]
    operations.append(CommitOperationAdd("README.md", card.encode("utf-8")))
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.create_commit(repo_id, operations, commit_message="Upload CIFAKE model with the CIFAKE kit")
    except HfHubHTTPError as err:
        raise CifakeError(f"The Hub refused the push to {repo_id!r}: {err}. Check the repo name and your token's write access.") from err
    except Exception as err:  # the network: connection refused, reset, timed out (httpx raises its own types)
        raise CifakeError(f"Cannot reach the Hub to push {repo_id!r} ({first_line(err)}). Try again when it "
                          f"can be reached.") from err
    return str(url)
