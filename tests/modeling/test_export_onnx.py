"""`cifake export-onnx`: the ONNX graph gives PyTorch's logits on real photos, at any batch size."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cifake_kit.errors import CifakeError
from modeling.inference.export_onnx import export_onnx


def onnx_logits(folder, pixel_values):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"pixel_values": pixel_values.numpy()})[0]


def test_the_export_matches_pytorch_on_photos_at_any_batch_size(trained_model, sample_photos, tmp_path):
    from modeling.inference.core import load_model

    photos = [Image.fromarray(p) for p in sample_photos[0][:12]]
    result = export_onnx(trained_model, output_dir=tmp_path / "onnx", images=photos)
    assert sorted(p.name for p in result.folder.iterdir()) == ["config.json", "export.json", "model.onnx",
                                                               "preprocessor_config.json"]
    assert result.images == 12 and result.max_difference < 1e-4
    model, processor = load_model(trained_model, device="cpu")
    for batch in (1, 5):  # the batch is dynamic
        pixel_values = processor(photos[:batch], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            expected = model(pixel_values=pixel_values).logits.numpy()
        assert np.allclose(onnx_logits(result.folder, pixel_values), expected, atol=1e-4)
    config = json.loads((result.folder / "config.json").read_text())
    assert config["id2label"] == {"0": "FAKE", "1": "REAL"} and config["fake_threshold"] == model.config.fake_threshold
    with pytest.raises(CifakeError, match="already holds an ONNX export. Pass --overwrite"):
        export_onnx(trained_model, output_dir=tmp_path / "onnx")
    (tmp_path / "onnx" / ".cifake-onnx.999999999").mkdir()  # left by an export that was killed
    export_onnx(trained_model, output_dir=tmp_path / "onnx", overwrite=True)
    assert sorted(p.name for p in result.folder.iterdir()) == ["config.json", "export.json", "model.onnx",
                                                               "preprocessor_config.json"]


def test_the_forensic_recipe_exports_with_its_spectrum(tmp_path, sample_photos):
    from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
    from modeling.recipes import resolve_recipe

    _, fields, _ = resolve_recipe("cifake-forensic")
    torch.manual_seed(0)
    model = CifakeForImageClassification(CifakeConfig(**fields)).eval()
    model.save_pretrained(tmp_path / "forensic")
    CifakeImageProcessor().save_pretrained(tmp_path / "forensic")
    result = export_onnx(tmp_path / "forensic", images=[Image.fromarray(p) for p in sample_photos[0][:8]])
    assert result.folder == tmp_path / "forensic" / "onnx" and result.max_difference < 1e-4


def test_an_export_is_pushed_with_the_model(trained_model, tmp_path, hub_calls):
    import shutil

    from modeling.publishing.hub import push_model

    folder = tmp_path / "model"
    shutil.copytree(trained_model, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    export_onnx(folder)
    push_model(folder, "me/cifake-cnn", dataset_id="me/cifake")
    paths = {op.path_in_repo for op in hub_calls[1][2]}
    assert {"onnx/model.onnx", "onnx/config.json", "onnx/preprocessor_config.json"} <= paths
    # Weights that changed since (trained further) never go up beside an export of the old ones.
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    save_file({k: v + 1 if v.is_floating_point() else v for k, v in weights.items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(CifakeError, match="was exported from other weights .*export-onnx .* --overwrite"):
        push_model(folder, "me/cifake-cnn", dataset_id="me/cifake")


def test_without_the_onnx_extra_the_error_says_what_to_install(trained_model, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(CifakeError, match=r"needs onnxruntime: install the kit's ONNX extra, `pip install 'cifake-kit\[onnx\]'"):
        export_onnx(trained_model)
    with pytest.raises(CifakeError, match="--opset 3 is not an ONNX opset"):
        monkeypatch.delitem(sys.modules, "onnxruntime")
        export_onnx(trained_model, opset=3)
