import numpy as np
import pytest
import torch
from PIL import Image

from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
from modeling.inference.core import load_model
from modeling.inference.gradcam import enlarge, explain_images, gradcam, target_layer
from modeling.recipes import resolve_recipe


@pytest.fixture(scope="module")
def photos(sample_photos):
    return [Image.fromarray(sample_photos[0][i]) for i in range(6)]


def test_heatmaps_have_the_input_shape_are_normalised_and_differ(trained_model, photos):
    model, processor = load_model(trained_model, device="cpu")
    pixel_values = processor(photos, return_tensors="pt")["pixel_values"]
    maps = gradcam(model, pixel_values, [1] * len(photos))
    assert maps.shape == (6, 32, 32) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert all(np.isclose(m.max(), 1.0, atol=1e-4) for m in maps if m.any())  # scaled per image
    flat = maps.reshape(6, -1)
    assert min(np.abs(flat[i] - flat[j]).mean() for i in range(6) for j in range(i + 1, 6)) > 1e-3
    with torch.inference_mode():  # callers inside inference mode still get the same maps
        assert np.allclose(gradcam(model, pixel_values[:2], [1, 1]), maps[:2], atol=1e-5)
    assert torch.is_grad_enabled()


def test_each_class_gets_its_own_map(trained_model, photos):
    model, processor = load_model(trained_model, device="cpu")
    results = explain_images(model, processor, photos[:2], all_classes=True)
    for result in results:
        assert set(result.heatmaps) == {"FAKE", "REAL"}
        assert not np.allclose(result.heatmaps["FAKE"], result.heatmaps["REAL"])
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert result.predicted == max(result.probabilities, key=result.probabilities.get)
        assert result.overlay("FAKE").size == (256, 256)
    view = results[0].view
    assert np.array_equal(np.asarray(photos[0]), view)  # a 32x32 photo is what the model saw
    assert np.array_equal(np.asarray(enlarge(view))[::8, ::8], view)  # enlarged without blur


@pytest.mark.parametrize("recipe, layer", [("paper-best", "Conv"), ("cifake-cnn-plus", "Conv"),
                                           ("resnet18-cifar", "layer4"), ("vit-tiny-32", "blocks.11")])
def test_the_target_layer_follows_the_config(recipe, layer):
    _, fields, _ = resolve_recipe(recipe)
    torch.manual_seed(0)
    model = CifakeForImageClassification(CifakeConfig(**fields)).eval()
    module, reshape = target_layer(model)
    if layer == "Conv":
        assert module is model.cifake.encoder.blocks[-1].layers[-1]  # the last conv layer, before pooling
    else:
        assert module is model.cifake.encoder.model.get_submodule(layer)
    assert (reshape is not None) == recipe.startswith("vit")
    pixel_values = CifakeImageProcessor()([Image.new("RGB", (32, 32), (i * 40, 90, 200 - i * 30)) for i in range(3)],
                                          return_tensors="pt")["pixel_values"]
    maps = gradcam(model, pixel_values, [0, 1, 0])
    assert maps.shape == (3, 32, 32) and np.isfinite(maps).all()
