import pytest

from cifake_kit.errors import CifakeError
from dataset_builder.hub import push_dataset


@pytest.fixture
def built(built_dataset):
    return built_dataset  # pushing reads the folder, never changes it: the session's build will do


def test_push_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    with pytest.raises(CifakeError, match="not a dataset folder written by this kit"):
        push_dataset(tmp_path, "me/cifake")


def test_push_refuses_a_bad_repo_id(built):
    with pytest.raises(CifakeError, match="not a valid Hub repo id"):
        push_dataset(built, "me/ci fake")


def test_push_offline_says_so(built):
    with pytest.raises(CifakeError, match="offline"):
        push_dataset(built, "me/cifake")


def test_push_sends_the_card_then_the_data(built, monkeypatch):
    """The Hub is out of reach here: record the calls at the network boundary instead."""
    import datasets
    import huggingface_hub
    from huggingface_hub import constants

    calls = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, token=None, **kw: {"name": "me"})
    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo",
        lambda self, repo_id, **kw: calls.append(("create_repo", repo_id, kw)) or f"https://hub.example/{repo_id}",
    )
    monkeypatch.setattr(
        huggingface_hub.DatasetCard, "push_to_hub",
        lambda self, repo_id, **kw: calls.append(("card", repo_id, str(self), kw)),
    )
    monkeypatch.setattr(
        datasets.DatasetDict, "push_to_hub",
        lambda self, repo_id, **kw: calls.append(("data", repo_id, {k: len(v) for k, v in self.items()}, kw)),
    )
    url = push_dataset(built, "me/cifake", private=True)
    assert url == "https://hub.example/me/cifake"
    assert [c[0] for c in calls] == ["create_repo", "card", "data"]
    assert calls[0][2]["private"] is True and calls[0][2]["repo_type"] == "dataset"
    assert calls[1][2] == (built / "README.md").read_text()
    assert calls[1][3]["token"] == "hf_secret" and calls[2][3]["token"] == "hf_secret"
    assert calls[2][2] == {"train": 60, "test": 40} and calls[2][3]["private"] is True


def test_push_without_login_says_how(built, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(CifakeError, match="not logged in.*hf auth login"):
        push_dataset(built, "me/cifake")
