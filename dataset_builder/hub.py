"""Publish a dataset folder to the Hub: its card first, then `push_to_hub` uploads the shards and refreshes the
card's `dataset_info`/`configs`, keeping its text. The token (`hf auth login` or `HF_TOKEN`) is never printed."""

from __future__ import annotations

from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.hub import push_token


def push_dataset(data: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Push the dataset folder `data` to the Hub dataset repo `repo_id`; return its URL."""
    from datasets import load_dataset
    from huggingface_hub import DatasetCard, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    data = Path(data).expanduser()
    readme = data / "README.md"
    if not readme.is_file() or not (data / "data").is_dir():
        raise CifakeError(f"{str(data)!r} is not a dataset folder written by this kit (no README.md and data/). Build "
                          "one with `cifake build` or `cifake import-kaggle`, or pass --data DIR.")
    token = push_token(repo_id, token, example="your-name/cifake")
    dataset_dict = load_dataset(str(data))
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        DatasetCard(readme.read_text(encoding="utf-8")).push_to_hub(repo_id, repo_type="dataset", token=token)
        dataset_dict.push_to_hub(repo_id, private=private, token=token)
    except HfHubHTTPError as err:
        raise CifakeError(f"The Hub refused the push to {repo_id!r}: {err}. Check the repo name and your token's "
                          f"write access.") from err
    return str(url)

