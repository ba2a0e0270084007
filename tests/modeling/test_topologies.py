import json

import pytest
import torch

from modeling import CifakeConfig, CifakeForImageClassification
from modeling.recipes import PAPER_BEST, RECIPES, paper_topologies, resolve_recipe


def test_the_grid_has_the_papers_36_topologies():
    grid = paper_topologies()
    assert len(grid) == 36 and len(set(grid)) == 36
    conv = [g for g in grid.values() if not g["model"]["dense_units"]]
    dense = [g for g in grid.values() if g["model"]["dense_units"]]
    assert len(conv) == 18 and len(dense) == 18
    assert {tuple(g["model"]["conv_filters"]) for g in dense} == {(32, 32)}
    assert PAPER_BEST in grid and RECIPES["paper-best"] == grid[PAPER_BEST]
    assert grid[PAPER_BEST]["model"] == {"conv_filters": [32, 32], "dense_units": [64]}


@pytest.mark.parametrize("name", list(paper_topologies()))
def test_every_topology_builds_and_runs(name):
    _, fields, _ = resolve_recipe(name)
    model = CifakeForImageClassification(CifakeConfig(**fields)).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, 32, 32), labels=torch.tensor([0, 1, 0]))
    assert out.logits.shape == (3, 2) and torch.isfinite(out.logits).all()
    assert out.loss.ndim == 0 and out.loss > 0
    expected_convs = int(name[4])
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == expected_convs
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == len(fields["dense_units"]) + 1


@pytest.mark.parametrize("name", ["cifake-cnn-plus", "resnet18-cifar", "vit-tiny-32", "vit-tiny-224"])
def test_stronger_recipes_build_and_run(name):
    _, fields, training = resolve_recipe(name)
    model = CifakeForImageClassification(CifakeConfig(**fields)).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32)).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    assert training["augment"] is True


def test_resnet_stem_is_adapted_to_32x32():
    _, fields, _ = resolve_recipe("resnet18-cifar")
    model = CifakeForImageClassification(CifakeConfig(**fields))
    stem = model.cifake.encoder.model.conv1
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert isinstance(model.cifake.encoder.model.maxpool, torch.nn.Identity)


def test_recipes_from_json(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"model": {"conv_filters": [8]}, "training": {"epochs": 2}}))
    name, model, training = resolve_recipe(str(path))
    assert name == "mine" and model == {"conv_filters": [8]} and training["epochs"] == 2
    assert training["learning_rate"] == 1e-3  # the paper recipe fills in what the file leaves out
    assert resolve_recipe('{"conv_filters": [4, 4], "dense_units": []}')[1] == {"conv_filters": [4, 4], "dense_units": []}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("conv9x9", "Unknown config 'conv9x9'. Use a recipe name"),
        ("missing.json", "Config file 'missing.json' does not exist"),
        ("{not json", "is not valid JSON"),
        ('{"training": "fastest"}', "Unknown training recipe 'fastest'"),
        ('{"training": {"epoch": 3}}', r"Unknown training setting 'epoch' in the config: did you mean 'epochs'\?"),
        ('{"conv_filter": [8]}', r"Unknown model field 'conv_filter' in the config: did you mean 'conv_filters'\?"),
        ('{"model": {"dense_unit": [8]}}', r"Unknown model field 'dense_unit' in the config: did you mean 'dense_units'\?"),
        ('{"model": {"conv_filters": [8]}, "trainig": "paper"}', r"Unknown config key 'trainig' .* did you mean 'training'"),
        ('{"model": [8]}', "A config's model must be a JSON object"),
        ('{"training": 3}', "A config's training must be a recipe name"),
    ],
)
def test_bad_recipes(spec, message):
    with pytest.raises(ValueError, match=message):
        resolve_recipe(spec)


def test_a_config_file_far_larger_than_a_config_is_refused_unread(tmp_path):
    import resource

    from modeling.recipes import MAX_CONFIG_BYTES

    path = tmp_path / "huge.json"
    with open(path, "wb") as handle:
        handle.truncate(1 << 30)  # 1 GB, sparse: reading it would take GBs of memory
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=f"is 1,073,741,824 bytes; a config is a few lines of JSON \\(at most "
                                         f"{MAX_CONFIG_BYTES // 1024} KB\\)"):
        resolve_recipe(str(path))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        resolve_recipe(str(path))
