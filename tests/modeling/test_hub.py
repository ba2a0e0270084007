import json

import pytest
import yaml

from cifake_kit.errors import CifakeError
from modeling.publishing.card import render_model_card
from modeling.publishing.hub import push_model


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def test_card_numbers_come_from_the_report(trained_model):
    card = render_model_card(trained_model, "me/cifake-cnn", dataset_id="me/cifake")
    report = json.loads((trained_model / "report" / "report.json").read_text())
    (result,) = front_matter(card)["model-index"][0]["results"]
    values = {m["name"]: m["value"] for m in result["metrics"]}
    assert values["Accuracy"] == round(report["metrics"]["accuracy"], 4)
    assert values["F1 (FAKE positive)"] == round(report["metrics"]["f1_fake"], 4)
    assert result["dataset"]["split"] == "test" and result["dataset"]["type"] == "me/cifake"
    assert "## This model" in card and card.index("## This model") < card.index("## Citation")
    assert "me/cifake-cnn" in card and "REPO_ID" not in card
    assert f"{report['parameters']:,} parameters" in card
    assert "Demonstration model" not in card  # the toy data records no generator


def test_the_model_index_carries_each_generator_familys_roc_auc_beside_the_whole_split(tmp_path, trained_model):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained_model, copy)
    report = json.loads((copy / "report" / "report.json").read_text())
    report["metrics"]["per_family"] = [
        {"family": "Stable Diffusion", "generators": 4, "images": 78, "roc_auc_vs_real": 0.95123, "recall_fake": 0.9},
        {"family": "GAN", "generators": 9, "images": 54, "roc_auc_vs_real": 0.55, "recall_fake": 0.2}]
    (copy / "report" / "report.json").write_text(json.dumps(report))
    card = render_model_card(copy, "me/cifake-cnn", dataset_id="me/cifake")
    (result,) = front_matter(card)["model-index"][0]["results"]
    values = {m["name"]: m["value"] for m in result["metrics"]}
    assert values["ROC AUC, Stable Diffusion images vs REAL (FAKE positive)"] == 0.9512
    assert values["ROC AUC, GAN images vs REAL (FAKE positive)"] == 0.55
    assert values["ROC AUC (FAKE positive)"] == round(report["metrics"]["roc_auc"], 4)
    # one result holds them all: each family's figure names the images it scored, the whole split's names none
    args = {m["name"]: m.get("args") for m in result["metrics"] if m["type"] == "roc_auc"}
    assert args == {"ROC AUC (FAKE positive)": None,
                    "ROC AUC, Stable Diffusion images vs REAL (FAKE positive)":
                        {"fake_family": "Stable Diffusion", "fake_images": 78, "against": "every REAL image of the split"},
                    "ROC AUC, GAN images vs REAL (FAKE positive)":
                        {"fake_family": "GAN", "fake_images": 54, "against": "every REAL image of the split"}}
    assert "### Per generator family" in card and "| Stable Diffusion | 4 | 78 |" in card


def test_demo_models_are_labelled_as_such(tmp_path, trained_model):
    import shutil

    copy = tmp_path / "demo-model"
    shutil.copytree(trained_model, copy)
    report = json.loads((copy / "report" / "report.json").read_text())
    report["generators"] = ["cifake-kit/tiny-random-sd"]
    (copy / "report" / "report.json").write_text(json.dumps(report))
    card = render_model_card(copy, "me/demo", dataset_id="me/demo-data")
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


def test_a_card_never_names_a_local_folder_as_its_dataset(trained_model, hub_calls):
    from huggingface_hub import ModelCard

    card = ModelCard(render_model_card(trained_model))  # trained on a local folder, no id given
    assert card.data.eval_results is None and card.data.datasets is None
    assert "model-index" not in front_matter(str(card))
    assert "## This model" in card.text and "https://arxiv.org/abs/2303.14126" in card.text
    with pytest.raises(CifakeError, match=r"scored on the local dataset .*which is no Hub id.*--dataset-id"):
        push_model(trained_model, "me/cifake-cnn")
    with pytest.raises(CifakeError, match=r"--dataset-id 'cifake' is not a Hub dataset id"):
        push_model(trained_model, "me/cifake-cnn", dataset_id="cifake")
    assert hub_calls == []


def test_a_relative_data_folder_is_never_read_as_a_hub_id_later(trained_model, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained_model, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    report = json.loads((folder / "report" / "report.json").read_text())
    assert report["data_hub_id"] is None  # trained on a folder
    report["data"] = "data/cifake"  # as given, relative: from elsewhere it looks like an id
    (folder / "report" / "report.json").write_text(json.dumps(report))
    monkeypatch.chdir(tmp_path)
    assert "model-index" not in front_matter(render_model_card(folder))


def test_training_writes_the_card_and_keeps_a_readme_of_the_users(trained_model, built_dataset, tmp_path, capsys):
    from huggingface_hub import ModelCard

    from modeling.training.train import train

    card = ModelCard.load(trained_model / "README.md")
    assert "cifake-kit" in card.data.tags and card.data.model_name == trained_model.name
    assert f'model="{trained_model}"' in card.text and "## This model" in card.text
    run = tmp_path / "run"
    train(data=str(built_dataset), output_dir=run, num_train_epochs=1, per_device_train_batch_size=16)
    (run / "README.md").write_text("my own notes")
    train(data=str(built_dataset), output_dir=run, num_train_epochs=2, per_device_train_batch_size=16, resume=True)
    assert (run / "README.md").read_text() == "my own notes"
    assert "kept your own README.md" in capsys.readouterr().err
    train(data=str(built_dataset), output_dir=run, num_train_epochs=1, per_device_train_batch_size=16, overwrite=True)
    assert (run / "README.user.md").read_text() == "my own notes"  # beside the new run's card
    assert "cifake-kit" in ModelCard.load(run / "README.md").data.tags
    assert "kept your README.md as README.user.md" in capsys.readouterr().err
    (run / "README.md").write_text("newer notes")
    train(data=str(built_dataset), output_dir=run, num_train_epochs=1, per_device_train_batch_size=16, overwrite=True)
    assert (run / "README.user.md").read_text() == "my own notes" and (run / "README.user-2.md").read_text() == "newer notes"


@pytest.mark.parametrize("source, base", [("timm", "timm/resnet18.a1_in1k"), ("hf-hub:me/resnet-weights", "me/resnet-weights"),
                                          ("./local-checkpoint", None)])
def test_a_fine_tuned_card_names_its_base_model(trained_model, tmp_path, source, base):
    import shutil

    from huggingface_hub import ModelCard

    folder = tmp_path / "model"
    shutil.copytree(trained_model, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    report = json.loads((folder / "report" / "report.json").read_text())
    report["pretrained_weights"] = {"source": source, "copied": 1, "kept_fresh": []}
    report["model_config"]["backbone"] = "resnet18"
    (folder / "report" / "report.json").write_text(json.dumps(report))
    assert ModelCard(render_model_card(folder)).data.base_model == base
