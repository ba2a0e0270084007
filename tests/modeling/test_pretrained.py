"""`--pretrained`: a timm backbone starts from a timm checkpoint's weights (offline: a local folder)."""

import json

import pytest
import timm
import torch

from cifake_kit.errors import CifakeError
from modeling import CifakeConfig, CifakeForImageClassification
from modeling.recipes import resolve_recipe
from modeling.training.pretrained import load_pretrained_backbone


def checkpoint(tmp_path, name, **kwargs):
    """A timm checkpoint folder as `save_for_hf` writes it (random weights standing in for ImageNet's)."""
    torch.manual_seed(1)
    donor = timm.create_model(name, pretrained=False, **kwargs)
    folder = tmp_path / name
    timm.models.save_for_hf(donor, folder, safe_serialization=True)
    return folder, donor.state_dict()


def recipe_model(recipe):
    return CifakeForImageClassification(CifakeConfig(**resolve_recipe(recipe)[1]))


def test_resnet_backbone_takes_every_fitting_tensor_and_keeps_its_32x32_stem(tmp_path):
    folder, weights = checkpoint(tmp_path, "resnet18")
    model = recipe_model("resnet18-cifar")
    stem_before = model.cifake.encoder.model.conv1.weight.clone()
    result = load_pretrained_backbone(model, str(folder))
    backbone = model.cifake.encoder.model.state_dict()
    assert result["kept_fresh"] == ["conv1.weight"]  # 3x3 stride-1 stem vs ImageNet's 7x7
    assert result["copied"] == len(backbone) - 1
    for key, value in backbone.items():
        if key != "conv1.weight":
            assert torch.equal(value, weights[key]), key
    assert torch.equal(model.cifake.encoder.model.conv1.weight, stem_before)


def test_vit_at_32x32_gets_its_patch_and_position_embeddings_resampled_by_timm(tmp_path):
    folder, weights = checkpoint(tmp_path, "vit_tiny_patch16_224")
    model = recipe_model("vit-tiny-32")
    result = load_pretrained_backbone(model, str(folder))
    backbone = model.cifake.encoder.model.state_dict()
    assert result["kept_fresh"] == []
    assert backbone["patch_embed.proj.weight"].shape[-1] == 4 and weights["patch_embed.proj.weight"].shape[-1] == 16
    assert torch.equal(backbone["blocks.0.attn.qkv.weight"], weights["blocks.0.attn.qkv.weight"])


def test_bad_pretrained_sources_are_refused_with_the_fix(tmp_path):
    with pytest.raises(CifakeError, match="needs a timm backbone"):
        load_pretrained_backbone(recipe_model("paper-best"), "timm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CifakeError, match="no config.json"):
        load_pretrained_backbone(recipe_model("resnet18-cifar"), str(tmp_path / "empty"))
    with pytest.raises(CifakeError, match="neither"):
        load_pretrained_backbone(recipe_model("resnet18-cifar"), str(tmp_path / "missing"))
    folder, _ = checkpoint(tmp_path, "resnet18")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CifakeError, match="no model.safetensors"):
        load_pretrained_backbone(recipe_model("resnet18-cifar"), str(folder))
    other, _ = checkpoint(tmp_path, "vit_tiny_patch16_224")
    with pytest.raises(CifakeError, match="same architecture"):
        load_pretrained_backbone(recipe_model("resnet18-cifar"), str(other))
    with pytest.raises(CifakeError, match="Cannot load pretrained weights 'timm'"):  # offline: timm's Hub download fails
        load_pretrained_backbone(recipe_model("resnet18-cifar"), "timm")


@pytest.mark.slow
def test_train_starts_from_the_checkpoint_and_says_so(tmp_path, toy_dataset):
    from modeling.training.train import train

    folder, weights = checkpoint(tmp_path, "resnet18")
    result = train(data=str(toy_dataset), output_dir=tmp_path / "model", config="resnet18-cifar", pretrained=str(folder),
                   max_steps=1, per_device_train_batch_size=8, learning_rate=1e-9)
    report = json.loads(result.report.read_text())
    assert report["pretrained_weights"]["source"] == str(folder) and report["pretrained_weights"]["kept_fresh"] == ["conv1.weight"]
    trained = CifakeForImageClassification.from_pretrained(tmp_path / "model").cifake.encoder.model.state_dict()
    assert torch.allclose(trained["layer4.1.conv2.weight"], weights["layer4.1.conv2.weight"], atol=1e-6)  # lr ~ 0
