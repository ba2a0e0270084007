import json

import pytest
import yaml

from dataset_builder.errors import CifakeError
from modeling.hub import push_model, render_model_card


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


@pytest.fixture
def hub_calls(monkeypatch):
    """The Hub is out of reach here: record the calls at the HfApi boundary instead."""
    import huggingface_hub
    from huggingface_hub import constants

    calls = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.append(("repo", repo_id, kw)) or f"https://hub.example/{repo_id}")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit",
                        lambda self, repo_id, operations, **kw: calls.append(("commit", repo_id, operations, kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "add_space_variable",
                        lambda self, repo_id, key, value, **kw: calls.append(("variable", repo_id, key, value)))
    return calls


def test_card_numbers_come_from_the_report(trained_model):
    card = render_model_card(trained_model, "me/cifake-cnn")
    report = json.loads((trained_model / "report" / "report.json").read_text())
    (result,) = front_matter(card)["model-index"][0]["results"]
    values = {m["name"]: m["value"] for m in result["metrics"]}
    assert values["Accuracy"] == round(report["metrics"]["accuracy"], 4)
    assert values["F1 (FAKE positive)"] == round(report["metrics"]["f1_fake"], 4)
    assert result["dataset"]["split"] == "test"
    assert "## This model" in card and card.index("## This model") < card.index("## Citation")
    assert "me/cifake-cnn" in card and "REPO_ID" not in card
    assert f"{report['parameters']:,} parameters" in card
    assert "Demonstration model" not in card  # the toy data records no generator


def test_demo_models_are_labelled_as_such(tmp_path, trained_model):
    import shutil

    copy = tmp_path / "demo-model"
    shutil.copytree(trained_model, copy)
    report = json.loads((copy / "report" / "report.json").read_text())
    report["generators"] = ["cifake-kit/tiny-random-sd"]
    (copy / "report" / "report.json").write_text(json.dumps(report))
    card = render_model_card(copy, "me/demo")
    assert "**Demonstration model.**" in card and "not Stable Diffusion" in card
    assert "cifake-kit/tiny-random-sd" in front_matter(card)["model-index"][0]["results"][0]["dataset"]["name"]


def test_push_uploads_one_commit_without_checkpoints(trained_model, hub_calls):
    calls = hub_calls
    url = push_model(trained_model, "me/cifake-cnn", private=True, dataset_id="me/cifake")
    assert url == "https://hub.example/me/cifake-cnn"
    assert [c[0] for c in calls] == ["repo", "commit"] and calls[0][2]["private"] is True
    paths = {op.path_in_repo for op in calls[1][2]}
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json", "configuration_cifake.py",
            "modeling_cifake.py", "image_processing_cifake.py", "report/report.json",
            "report/confusion_matrix.png"} <= paths
    assert not any(p.startswith("checkpoint-") or p.endswith((".bin", ".pt", ".pth")) for p in paths)
    readme = next(op for op in calls[1][2] if op.path_in_repo == "README.md").path_or_fileobj
    assert front_matter(readme.decode())["datasets"] == ["me/cifake"]


def test_push_errors(tmp_path, trained_model, monkeypatch):
    with pytest.raises(CifakeError, match="is not a saved model"):
        push_model(tmp_path, "me/cifake-cnn")
    with pytest.raises(CifakeError, match="not a valid Hub repo id"):
        push_model(trained_model, "me/ci fake")
    with pytest.raises(CifakeError, match="offline"):
        push_model(trained_model, "me/cifake-cnn")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(CifakeError, match="not logged in.*hf auth login"):
        push_model(trained_model, "me/cifake-cnn")


def test_push_space_uploads_the_app_and_the_kit(hub_calls):
    from modeling.hub import push_space

    calls = hub_calls
    url = push_space("me/cifake-demo", model="me/cifake-cnn", dataset_id="me/cifake")
    assert url == "https://hub.example/me/cifake-demo"
    assert calls[0][2]["repo_type"] == "space" and calls[0][2]["space_sdk"] == "gradio"
    operations = calls[1][2]
    paths = {op.path_in_repo for op in operations}
    assert {"app.py", "requirements.txt", "README.md", "examples/SOURCES.md", "examples/real-cifar10-cat-0000.jpg",
            "modeling/__init__.py", "modeling/explain.py", "dataset_builder/errors.py"} <= paths
    assert not any(p.endswith((".tar.gz", ".safetensors")) or "__pycache__" in p for p in paths)
    card = front_matter(next(op for op in operations if op.path_in_repo == "README.md").path_or_fileobj.decode())
    assert card["app_file"] == "app.py" and card["sdk"] == "gradio" and card["models"] == ["me/cifake-cnn"]
    assert card["datasets"] == ["me/cifake"]
    assert calls[2] == ("variable", "me/cifake-demo", "CIFAKE_MODEL", "me/cifake-cnn")


def test_push_space_wants_a_hub_model_id(tmp_path):
    from modeling.hub import push_space

    with pytest.raises(CifakeError, match="is not a Hub model id. Push the model first"):
        push_space("me/cifake-demo", model=str(tmp_path))
