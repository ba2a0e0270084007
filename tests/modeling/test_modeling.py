import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cifake_kit.errors import CifakeError
from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
from modeling.inference.core import load_model
from modeling.recipes import resolve_recipe


def test_forward_takes_pixel_values_first():
    parameters = list(inspect.signature(CifakeForImageClassification.forward).parameters)
    assert parameters[1] == "pixel_values"
    assert CifakeForImageClassification.main_input_name == "pixel_values"


def test_init_follows_keras_defaults_and_norm_identity():
    _, fields, _ = resolve_recipe("cifake-cnn-plus")
    model = CifakeForImageClassification(CifakeConfig(**fields))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
        if isinstance(module, torch.nn.Linear):
            assert torch.all(module.bias == 0)
            bound = (6 / (module.in_features + module.out_features)) ** 0.5  # Glorot uniform
            assert module.weight.abs().max() <= bound


def test_hidden_states_and_tuple_output():
    model = CifakeForImageClassification(CifakeConfig()).eval()
    pixels = torch.randn(2, 3, 32, 32)
    out = model(pixels, output_hidden_states=True)
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 32, 15, 15), (2, 32, 6, 6)]
    as_tuple = model(pixels, labels=torch.tensor([0, 1]), return_dict=False)
    assert torch.equal(as_tuple[1], out.logits) and as_tuple[0].ndim == 0


@pytest.mark.parametrize("recipe", ["paper-best", "cifake-cnn-plus", "resnet18-cifar"])
def test_save_and_reload_give_identical_logits(tmp_path, recipe):
    _, fields, _ = resolve_recipe(recipe)
    torch.manual_seed(0)
    model = CifakeForImageClassification(CifakeConfig(**fields))
    model.train()
    model(torch.randn(8, 3, 32, 32))  # move batch-norm running statistics away from their init
    model.eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    assert {"configuration_cifake.py", "modeling_cifake.py"} <= {p.name for p in tmp_path.iterdir()}
    reloaded = CifakeForImageClassification.from_pretrained(tmp_path).eval()
    pixels = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(pixels).logits, reloaded(pixels).logits)


_BLOCKED_LOAD = """
import json, sys
class Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("modeling", "dataset_builder", "cifake_kit", "cifake_cli", "space"):
            raise ImportError("this project's packages are blocked here: " + name)
sys.meta_path.insert(0, Block())
try:
    import modeling
    raise SystemExit("the block did not work")
except ImportError:
    pass
import numpy as np, torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel, AutoModelForImageClassification, pipeline
folder, image_path = sys.argv[1], sys.argv[2]
model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
image = Image.open(image_path)
with torch.no_grad():
    logits = model(**processor(image, return_tensors="pt")).logits[0].tolist()
scores = pipeline("image-classification", model=folder, trust_remote_code=True)(image)
base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    pooled = base(**processor(image, return_tensors="pt")).pooler_output[0].tolist()
features = pipeline("image-feature-extraction", model=folder, trust_remote_code=True, pool=True)(image)
print(json.dumps({"model": type(model).__module__, "processor": type(processor).__module__, "logits": logits,
                  "scores": scores, "base": type(base).__name__, "pooled": pooled,
                  "features": np.asarray(features).reshape(-1).tolist()}))
"""


def _photo(tmp_path, sample_photos, size=(96, 64)):
    path = tmp_path / "photo.png"
    Image.fromarray(sample_photos[0][5]).resize(size, Image.Resampling.NEAREST).save(path)
    return path


def _fresh_python(code, *args, **env):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, env={**os.environ, **env})


@pytest.mark.slow
def test_remote_code_loads_where_the_kit_cannot_be_imported(tmp_path, trained_model, sample_photos):
    image_path = _photo(tmp_path, sample_photos)
    result = _fresh_python(_BLOCKED_LOAD, trained_model, image_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["model"].startswith("transformers_modules.") and out["processor"].startswith("transformers_modules.")
    model, processor = load_model(trained_model, device="cpu")
    with torch.no_grad():
        expected = model(**processor(Image.open(image_path), return_tensors="pt")).logits[0]
    assert np.allclose(out["logits"], expected.numpy(), atol=1e-5)
    scores = {s["label"]: s["score"] for s in out["scores"]}
    assert set(scores) == {"FAKE", "REAL"} and sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert scores["REAL"] == pytest.approx(float(expected.softmax(-1)[1]), abs=1e-5)
    # The feature extractor under the head, by AutoModel and the image-feature-extraction pipeline.
    assert out["base"] == "CifakeModel"
    with torch.no_grad():
        pooled = model.cifake(**processor(Image.open(image_path), return_tensors="pt")).pooler_output[0]
    assert np.allclose(out["pooled"], pooled.numpy(), atol=1e-5) and np.allclose(out["features"], out["pooled"], atol=1e-5)


@pytest.mark.slow
def test_installed_kit_needs_no_remote_code(trained_model):
    # Any "run the custom code? [y/N]" prompt would end this process with an error.
    code = (
        "import builtins, sys, modeling\n"
        "def no_prompt(text=''):\n"
        "    raise SystemExit('prompted: ' + text[:80])\n"
        "builtins.input = no_prompt\n"
        "from PIL import Image\n"
        "from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline\n"
        "m = AutoModelForImageClassification.from_pretrained(sys.argv[1])\n"
        "p = AutoImageProcessor.from_pretrained(sys.argv[1])\n"
        "classify = pipeline('image-classification', model=sys.argv[1], trust_remote_code=False)\n"
        "scores = classify(Image.new('RGB', (64, 48)))\n"
        "print(type(m).__module__, type(p).__module__, type(classify.model).__module__, len(scores))\n"
    )
    result = _fresh_python(code, trained_model)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["modeling.modeling_cifake", "modeling.image_processing_cifake",
                                     "modeling.modeling_cifake", "2"]


@pytest.mark.slow
def test_checkpoints_carry_the_code(trained_model, tmp_path, sample_photos):
    checkpoints = sorted(trained_model.glob("checkpoint-*"))
    assert checkpoints
    for checkpoint in checkpoints:
        names = {p.name for p in checkpoint.iterdir()}
        assert {"configuration_cifake.py", "modeling_cifake.py", "image_processing_cifake.py",
                "model.safetensors", "preprocessor_config.json"} <= names
    result = _fresh_python(_BLOCKED_LOAD, checkpoints[-1], _photo(tmp_path, sample_photos))
    assert result.returncode == 0, result.stderr[-3000:]


def test_model_folder_without_weights(tmp_path, trained_model):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (broken / name).write_bytes((trained_model / name).read_bytes())
    with pytest.raises(CifakeError, match="has no model.safetensors: the weights are missing"):
        load_model(broken)


def test_model_folder_with_corrupt_weights(tmp_path, trained_model):
    broken = tmp_path / "corrupt"
    broken.mkdir()
    for path in trained_model.iterdir():
        if path.is_file():
            (broken / path.name).write_bytes(path.read_bytes())
    (broken / "model.safetensors").write_bytes((trained_model / "model.safetensors").read_bytes()[:200])
    with pytest.raises(CifakeError, match=r"Cannot load the model .*corrupt.*Pass a folder written by `cifake train`"):
        load_model(broken)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(CifakeError, match="has no config.json: it is not a saved model"):
        load_model(tmp_path)
    with pytest.raises(CifakeError, match="offline"):
        load_model("someone/cifake-cnn")


def test_processor_is_saved_beside_the_model(trained_model):
    from transformers.image_utils import PILImageResampling

    processor = CifakeImageProcessor.from_pretrained(trained_model)
    assert (processor.crop_size.height, processor.crop_size.width, processor.size.shortest_edge) == (32, 32, 32)
    assert list(processor.image_mean) == [0.5] * 3 and list(processor.image_std) == [0.5] * 3
    assert processor.resample == PILImageResampling.BICUBIC
