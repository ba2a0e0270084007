"""The family head: one output per generator family, merged into REAL/FAKE; its training, scores and report."""

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.metrics import roc_auc_score

from cifake_kit.schema import FAKE, REAL
from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
from modeling.data import CifakeCollator, CifakePixels, CifakeTensorDataset, fake_families, family_targets, load_pixels
from modeling.inference.core import fake_probability, score_pixels
from modeling.recipes import resolve_recipe

FORENSIC = resolve_recipe("cifake-forensic")[1]


def _model(families, seed=0) -> CifakeForImageClassification:
    torch.manual_seed(seed)
    return CifakeForImageClassification(CifakeConfig(**FORENSIC, fake_families=families)).eval()


def _pixels(labels, generator_ids, seed=0) -> CifakePixels:
    images = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8))
    return CifakePixels(images, torch.tensor(labels), torch.full((len(labels),), -1), [], "test",
                        generator_ids=list(generator_ids))


@pytest.mark.parametrize("families", [["GAN"], ["GAN", "GAN"], ["GAN", ""]])
def test_a_family_head_needs_two_families_each_named_once(families):
    with pytest.raises(ValueError, match="two families or more"):
        CifakeConfig(fake_families=families)


def test_the_families_merge_into_real_and_fake_and_survive_saving(tmp_path):
    model = _model(["Stable Diffusion", "GAN", "DDPM"])
    x = torch.randn(6, 3, 32, 32)
    out = model(pixel_values=x)
    assert out.family_logits.shape == (6, 4) and out.logits.shape == (6, 2)
    by_family = out.family_logits.softmax(-1)
    # P(FAKE) is the families' P summed; P(REAL) is REAL's
    assert torch.allclose(fake_probability(out.logits, model.config), by_family[:, 1:].sum(-1), atol=1e-6)
    assert torch.allclose(out.logits.softmax(-1)[:, 1], by_family[:, 0], atol=1e-6)
    family = torch.tensor([0, 1, 2, 3, 1, 0])
    assert torch.isclose(model(pixel_values=x, family_targets=family).loss,
                         torch.nn.functional.cross_entropy(out.family_logits, family))
    labels = torch.tensor([1, 0, 0, 0, 0, 1])
    assert torch.isclose(model(pixel_values=x, labels=labels).loss, torch.nn.functional.cross_entropy(out.logits, labels))
    model.save_pretrained(tmp_path)
    again = CifakeForImageClassification.from_pretrained(tmp_path).eval()
    assert again.config.fake_families == ["Stable Diffusion", "GAN", "DDPM"]
    assert torch.allclose(again(pixel_values=x).family_logits, out.family_logits, atol=1e-6)
    assert _model(None)(pixel_values=x).family_logits is None  # the plain head has none


def test_each_fake_image_gets_its_generators_family_and_real_ones_zero():
    pixels = _pixels([REAL, FAKE, FAKE, FAKE, FAKE, FAKE],
                     [None, "pfnet-research/chainer-gan-lib:began", "CompVis/stable-diffusion-v1-4", "midjourney", None,
                      "w86763777/pytorch-ddpm"])
    families = fake_families(pixels)
    assert families == ["Stable Diffusion", "DDPM", "GAN", "other"]  # the kit's order, unknown ones last
    assert family_targets(pixels, families).tolist() == [0, 3, 1, 4, 4, 2]
    batch = CifakeTensorDataset(pixels, families=families).__getitems__([1, 2])
    assert batch["family_targets"].tolist() == [3, 1]
    assert "family_targets" not in CifakeTensorDataset(pixels).__getitems__([1, 2])


def test_family_scores_pit_each_family_against_real_alone():
    model = _model(["Stable Diffusion", "GAN"])
    collator = CifakeCollator(CifakeImageProcessor())
    pixels = _pixels([REAL] * 5, [None] * 5).pixels
    p_fake, scores = score_pixels(model, collator, pixels, batch_size=2)
    logits = model(pixel_values=collator.normalize(pixels)).family_logits
    for i, family in enumerate(["Stable Diffusion", "GAN"]):
        pair = logits[:, [i + 1, 0]].softmax(-1)[:, 0]  # P(family | family or REAL)
        assert np.allclose(scores[family], pair.detach().numpy(), atol=1e-6)
    assert np.allclose(p_fake, 1 - logits.softmax(-1)[:, 0].detach().numpy(), atol=1e-6)  # the same pass gives P(FAKE)
    assert score_pixels(_model(None), collator, pixels)[1] == {}


def test_the_trainer_learns_the_families_smoothed_as_the_run_asks(tmp_path):
    from transformers.utils import find_labels

    from modeling.training.train import make_trainer

    _, _, training = resolve_recipe("cifake-forensic")
    model = _model(["Stable Diffusion", "GAN"])
    pixels = _pixels([REAL, FAKE, FAKE, REAL], [None, "gan:a", "stable-diffusion:b", None])
    data = CifakeTensorDataset(pixels, families=model.config.fake_families)
    trainer = make_trainer(model, CifakeImageProcessor(), data, data, tmp_path, training)
    batch = trainer.data_collator(data.__getitems__([0, 1, 2, 3]))
    assert batch["family_targets"].tolist() == [0, 2, 1, 0]
    expected = torch.nn.functional.cross_entropy(model(pixel_values=batch["pixel_values"]).family_logits,
                                                 batch["family_targets"], label_smoothing=training["label_smoothing"])
    assert training["label_smoothing"] > 0 and torch.isclose(trainer.compute_loss(model, dict(batch)), expected)
    # within gradient accumulation: over the items of the whole accumulated batch, as Trainer's label smoother
    assert torch.isclose(trainer.compute_loss(model, dict(batch), num_items_in_batch=8), expected * 4 / 8)
    # a plain Trainer (a user fine-tuning the model) sees one label column: the REAL/FAKE labels
    assert find_labels(CifakeForImageClassification) == ["labels"]


def _with_generators(source, out, renamed: dict):
    """A copy of the dataset folder `source` with its generator_id values renamed."""
    out.mkdir()
    (out / "README.md").write_text((source / "README.md").read_text())
    for shard in sorted(source.rglob("*.parquet")):
        table = pq.read_table(shard)
        column = table.schema.get_field_index("generator_id")
        ids = pa.array([renamed.get(g, g) for g in table["generator_id"].to_pylist()], type=pa.string())
        target = out / shard.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.set_column(column, "generator_id", ids), target)
    return out


def test_a_family_recipe_names_the_families_it_trained_on_and_reports_each_ones_own_score(tmp_path, toy_dataset):
    from modeling.publishing.card import render_model_card
    from modeling.training.train import train

    data = _with_generators(toy_dataset, tmp_path / "data", {"toy-pattern:even": "toy-gan:even",
                                                            "toy-pattern:odd": "toy-ddpm:odd"})
    result = train(data=str(data), output_dir=tmp_path / "model", config="cifake-forensic", num_train_epochs=4, seed=0)
    model = CifakeForImageClassification.from_pretrained(result.output_dir).eval()
    assert model.config.fake_families == ["DDPM", "GAN"]
    report = json.loads(result.report.read_text())
    rows = {row["family"]: row for row in report["metrics"]["per_family"]}
    pixels = load_pixels(data, "test", CifakeImageProcessor())
    with torch.no_grad():
        logits = model(pixel_values=CifakeCollator(CifakeImageProcessor()).normalize(pixels.pixels)).family_logits
    real = pixels.labels.numpy() == REAL
    for column, (family, word) in enumerate((("DDPM", "ddpm"), ("GAN", "gan")), start=1):
        mine = np.array([bool(g) and word in g for g in pixels.generator_ids])
        pair = mine | real
        own = logits[:, [column, 0]].softmax(-1)[:, 0].numpy()  # P(family | family or REAL)
        assert rows[family]["roc_auc_vs_real_own_score"] == pytest.approx(roc_auc_score(mine[pair], own[pair]), abs=1e-6)
    card = render_model_card(result.output_dir, "me/cifake-cnn", dataset_id="me/toy")
    assert "ROC AUC, GAN images vs REAL, by the family's own score" in card and "roc_auc_vs_real_own_score" in card
    # one family (the toy data's made-up generators name none), or --family_head false: the plain REAL/FAKE head
    plain = train(data=str(toy_dataset), output_dir=tmp_path / "plain", config="cifake-forensic", num_train_epochs=1)
    assert CifakeForImageClassification.from_pretrained(plain.output_dir).config.fake_families is None
    off = train(data=str(data), output_dir=tmp_path / "off", config="cifake-forensic", num_train_epochs=1, family_head=False)
    assert CifakeForImageClassification.from_pretrained(off.output_dir).config.fake_families is None
    # a run records family_head only when on: runs of earlier kits, which knew none, still resume
    recorded = {name: json.loads((run.output_dir / "cifake_run.json").read_text())["training"] for name, run in
                (("on", result), ("off", off))}
    assert recorded["on"]["family_head"] is True and "family_head" not in recorded["off"]


def test_the_space_gives_each_familys_own_score_beside_the_verdict(tmp_path):
    from PIL import Image

    from modeling.inference.gradcam import explain_images
    from space.app import Detector

    processor = CifakeImageProcessor()
    picture = tmp_path / "picture.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(picture)
    model = _model(["Stable Diffusion", "GAN"])
    notes = Detector(str(tmp_path), model, processor).classify(str(picture))[3]
    with Image.open(picture) as image:
        result = explain_images(model, processor, [image.convert("RGB")])[0]
    with torch.no_grad():
        logits = model(pixel_values=processor(Image.open(picture), return_tensors="pt")["pixel_values"]).family_logits
    assert list(result.family_scores) == ["Stable Diffusion", "GAN"]
    assert result.family_scores["GAN"] == pytest.approx(float(logits[0, [2, 0]].softmax(-1)[0]), abs=1e-6)
    assert ("Its own score for each, P(that family | that family or REAL), ranks that family's fakes against "
            "real photos better than P(FAKE) does: " + ", ".join(f"{f} {p:.1%}" for f, p in result.family_scores.items())
            ) in notes
    plain = Detector(str(tmp_path), _model(None), processor).classify(str(picture))[3]
    assert "own score" not in plain
    # a reduced picture: what its verdict is worth comes first, right under the verdict
    large = tmp_path / "large.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(large)
    paragraphs = Detector(str(tmp_path), model, processor).classify(str(large))[3].split("\n\n")
    assert paragraphs[0].startswith("The model says") and paragraphs[1].startswith("This picture (96x96) was reduced")
    assert paragraphs[2].startswith("It also tells apart the generator families")


def test_predict_names_the_likeliest_family_of_a_fake_and_writes_each_familys_own_score(tmp_path):
    import csv

    from PIL import Image

    from modeling.inference.core import image_scores
    from modeling.inference.predict import predict_command

    model, processor = _model(["Stable Diffusion", "GAN"]), CifakeImageProcessor()
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / name)
    lines, notes = [], []
    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    predict_command(paths, str(tmp_path / "model"), csv_path=str(tmp_path / "out.csv"), threshold=1e-9, out=lines.append,
                    note=notes.append)  # a threshold that calls both FAKE
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "verdict", "p_fake", "threshold", "own_score_stable_diffusion", "own_score_gan"]
    for path, row, line in zip(paths, rows, lines):
        with Image.open(path) as image:
            p_fake, own = image_scores(model, processor, [image.convert("RGB")])
        scores = {"Stable Diffusion": float(own[0, 0]), "GAN": float(own[0, 1])}
        assert float(row["own_score_gan"]) == pytest.approx(scores["GAN"], abs=1e-5)
        assert float(row["own_score_stable_diffusion"]) == pytest.approx(scores["Stable Diffusion"], abs=1e-5)
        best = max(scores, key=scores.get)
        assert line.endswith(f"\tmost like {best} ({scores[best]:.4f})") and row["verdict"] == "FAKE"
    assert any("tells 2 generator families apart (Stable Diffusion, GAN)" in note for note in notes)
    # a REAL verdict names no family
    lines.clear()
    predict_command(paths, str(tmp_path / "model"), threshold=1 - 1e-9, out=lines.append, note=notes.append)
    assert all(line.split("\t")[1] == "REAL" and "most like" not in line for line in lines)


def test_explains_grid_names_the_likeliest_family_of_a_fake(tmp_path, monkeypatch):
    from PIL import Image

    from modeling.inference import explain
    from modeling.inference.gradcam import explain_images

    model, processor = _model(["Stable Diffusion", "GAN"]), CifakeImageProcessor()
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    result = explain_images(model, processor, [image])[0]
    titles = {}
    monkeypatch.setattr(explain, "save", lambda fig, path: titles.setdefault(path, fig.axes[0].get_title()))
    fake = replace(result, predicted="FAKE")
    explain.plot_grid(["x.png"], [fake], tmp_path / "fake.png")
    best = max(result.family_scores, key=result.family_scores.get)
    assert titles[tmp_path / "fake.png"].endswith(f"\nmost like {best} ({result.family_scores[best]:.4f})")
    explain.plot_grid(["x.png"], [replace(result, predicted="REAL")], tmp_path / "real.png")
    assert "most like" not in titles[tmp_path / "real.png"]
