import io
import json
import math
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "space" / "examples"


def save(tmp_path, name, image, **params):
    path = tmp_path / name
    image.save(path, **params)
    return str(path)


def scores(verdict):
    return {c["label"]: c["confidence"] for c in json.loads(Path(verdict).read_text())["confidences"]}


def headline(verdict):
    """What gr.Label heads the page's verdict with."""
    return gr.Label(num_top_classes=2).postprocess(verdict).label


def check_prediction(result):
    verdict, overlay, view, notes = result
    probabilities = scores(verdict)
    assert set(probabilities) == {"FAKE", "REAL"} and math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-6)
    assert headline(verdict) in probabilities and f"The model says **{headline(verdict)}**" in notes
    assert Image.open(overlay).size == (256, 256) and Image.open(view).size == (256, 256)
    assert "The model says" in notes
    return notes


def test_the_page_names_its_model_and_labels_examples(detector, trained_model):
    from space import app

    summary = detector.summary()
    report = __import__("json").loads((trained_model / "report" / "report.json").read_text())["metrics"]
    assert f"`{trained_model}`" in summary and f"AUROC {report['roc_auc']:.3f}" in summary
    assert f"accuracy {report['accuracy']:.1%}" in summary and "200 test images" in summary
    assert all((EXAMPLES / Path(path).name).is_file() for path, _ in app.EXAMPLES)
    generated = [label for path, label in app.EXAMPLES if "/fake-" in path]
    assert len(generated) == 6 and all(label.startswith("FAKE · ") and "(" in label for label in generated)
    assert all(label.startswith("REAL") for path, label in app.EXAMPLES if "real-cifar10" in path)
    # genuine Stable Diffusion images, each named with its model version and the repository it comes from
    sd = [label for path, label in app.EXAMPLES if "/fake-sd" in path]
    assert len(sd) == 3 and all(label.startswith("FAKE · Stable Diffusion v1.") and "/stable" in label for label in sd)
    sources = (EXAMPLES / "SOURCES.md").read_text()
    assert all(Path(path).name in sources for path, _ in app.EXAMPLES)  # every example's source is written down


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.*g")))
def test_examples_are_classified(detector, example):
    check_prediction(detector.classify(str(EXAMPLES / example)))


def test_the_32x32_view_is_what_the_model_saw(detector):
    _, _, view, _ = detector.classify(str(EXAMPLES / "real-cifar10-cat-0000.jpg"))
    photo = np.asarray(Image.open(EXAMPLES / "real-cifar10-cat-0000.jpg").convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(view).convert("RGB"))[::8, ::8], photo)  # enlarged without blur


def test_output_files_are_written_once_and_reused(detector):
    first = detector.classify(str(EXAMPLES / "real-cifar10-frog-0000.jpg"))
    inode, data = Path(first[1]).stat().st_ino, Path(first[1]).read_bytes()
    again = detector.classify(str(EXAMPLES / "real-cifar10-frog-0000.jpg"))
    assert again[1] == first[1]
    assert Path(again[1]).stat().st_ino == inode and Path(again[1]).read_bytes() == data  # the same file, never rewritten


def test_an_old_output_that_is_reused_is_not_swept_away(detector):
    import os
    import time

    first = detector.classify(str(EXAMPLES / "real-cifar10-ship-0000.jpg"))
    two_hours_ago = time.time() - 2 * 3600
    for path in first[1:3]:
        os.utime(path, (two_hours_ago, two_hours_ago))  # as if written by a run long ago
    again = detector.classify(str(EXAMPLES / "real-cifar10-ship-0000.jpg"))
    assert again[1:3] == first[1:3]
    assert all(Path(path).is_file() and Path(path).stat().st_mtime > two_hours_ago + 3000 for path in again[1:3])


def odd_but_valid(tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    sixteen = Image.fromarray(np.full((50, 60), 30000, dtype=np.uint16))
    return {
        "RGBA": save(tmp_path, "a.png", rgb.convert("RGBA")),
        "greyscale": save(tmp_path, "g.png", rgb.convert("L")),
        "CMYK": save(tmp_path, "c.jpg", rgb.convert("CMYK")),
        "16-bit": save(tmp_path, "s.png", sixteen),
        "palette": save(tmp_path, "p.png", rgb.convert("P")),
        "webp": save(tmp_path, "w.webp", rgb),
    }


@pytest.mark.parametrize("kind", ["RGBA", "greyscale", "CMYK", "16-bit", "palette", "webp"])
def test_odd_but_valid_images_get_a_prediction(detector, tmp_path, kind):
    check_prediction(detector.classify(odd_but_valid(tmp_path)[kind]))


def test_one_pixel_image_is_predicted_with_a_warning(detector, tmp_path):
    notes = check_prediction(detector.classify(save(tmp_path, "dot.png", Image.new("RGB", (1, 1), (9, 9, 9)))))
    assert "only 1x1 pixels" in notes


def test_a_one_kilobyte_panorama_is_classified_from_its_centre(detector, tmp_path):
    path = save(tmp_path, "strip.png", Image.new("RGB", (300_000, 1), (9, 9, 9)))
    notes = check_prediction(detector.classify(path))
    assert "300000x1 pixels: only its central square was classified" in notes


def test_a_picture_larger_than_the_models_input_is_said_to_be_reduced_and_a_native_one_is_not(detector, tmp_path):
    photo = Image.open(sorted(EXAMPLES.glob("real-*.jpg"))[0]).convert("RGB")
    notes = check_prediction(detector.classify(save(tmp_path, "large.png", photo.resize((120, 90)))))
    assert "This picture (120x90) was reduced to 32x32 before the model saw it. A model trained on CIFAKE-style" in notes
    assert "reduced to" not in check_prediction(detector.classify(save(tmp_path, "native.png", photo)))
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone photo stored on its side: shown, and reduced, upright
    notes = check_prediction(detector.classify(save(tmp_path, "turned.jpg", photo.resize((120, 90)), exif=exif)))
    assert "This picture (90x120) was reduced" in notes


def test_animated_gif_uses_its_first_frame(detector, tmp_path):
    frames = [Image.new("RGB", (40, 40), color) for color in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    notes = check_prediction(detector.classify(str(path)))
    assert "first of its 3 frames" in notes
    first = detector.classify(save(tmp_path, "first.png", frames[0]))
    again = detector.classify(str(path))[0]
    assert headline(again) == headline(first[0]) and scores(again) == pytest.approx(scores(first[0]), abs=1e-4)


def bad_inputs(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    disguised = tmp_path / "photo.png"
    disguised.write_bytes(b"%PDF-1.4 pretending to be a PNG")
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 megapixels in a few kB
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as handle:
        handle.truncate(30 * 1024 * 1024)
    return {
        "text file": (text, "is not an image the CIFAKE kit can read"),
        "PDF named .png": (disguised, "is not an image the CIFAKE kit can read"),
        "truncated JPEG": (truncated, "is damaged or truncated"),
        "decompression bomb": (bomb, "is too large to open safely"),
        "30 MB file": (huge, "the app takes images up to 25 MB"),
    }


@pytest.mark.parametrize("kind", ["text file", "PDF named .png", "truncated JPEG", "decompression bomb", "30 MB file"])
def test_bad_input_gets_a_clear_message(detector, tmp_path, kind):
    path, message = bad_inputs(tmp_path)[kind]
    with pytest.raises(gr.Error, match=message):
        detector.classify(str(path))


def test_nothing_uploaded(detector):
    with pytest.raises(gr.Error, match="Upload an image, paste one, or pick an example first"):
        detector.classify(None)


def test_an_app_without_a_model_says_so_on_its_page(tmp_path):
    from space.app import Detector, build_demo

    detector = Detector.load(tmp_path)  # what `cifake demo` refuses to serve, and a Space shows
    assert "has no config.json" in detector.error
    assert detector.summary().startswith("**No model loaded.**") and "Set `CIFAKE_MODEL`" in detector.summary()
    with pytest.raises(gr.Error, match="No model is loaded"):
        detector.classify(str(EXAMPLES / "real-cifar10-cat-0000.jpg"))
    demo = build_demo(detector)
    page = demo.config["components"]
    assert any("No model loaded" in str(component.get("props", {}).get("value", "")) for component in page)


def test_the_factory_takes_a_path_and_reads_no_environment(trained_model, monkeypatch):
    from space.app import build_demo

    monkeypatch.setenv("CIFAKE_MODEL", "someone/else")  # only `python app.py` (a Space) reads it
    demo = build_demo(trained_model)
    texts = " ".join(str(c.get("props", {}).get("value", "")) for c in demo.config["components"])
    assert f"`{trained_model}`" in texts and "someone/else" not in texts
    assert {"predict", "predict_pasted"} <= {fn.get("api_name") for fn in demo.config["dependencies"]}


def test_a_model_given_by_hub_id_shows_its_report_from_the_hub(detector, trained_model, monkeypatch):
    import huggingface_hub

    from space.app import Detector

    asked = []

    def download(repo_id, filename, **kwargs):  # the Hub's answer: the file as push-model uploaded it
        asked.append((repo_id, filename))
        return str(trained_model / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    on_the_hub = Detector("me/cifake-cnn", detector.model, detector.processor)
    report = json.loads((trained_model / "report" / "report.json").read_text())
    summary = on_the_hub.summary()
    assert asked == [("me/cifake-cnn", "report/report.json")]
    assert f"On {report['images']:,} test images" in summary and f"accuracy {report['metrics']['accuracy']:.1%}" in summary

    def missing(repo_id, filename, **kwargs):
        from huggingface_hub.errors import EntryNotFoundError

        raise EntryNotFoundError("404")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", missing)
    assert "test images" not in Detector("me/no-report", detector.model, detector.processor).summary()


def test_the_pictures_returned_live_in_a_folder_of_this_process_only():
    import os
    import stat

    from space import app

    outputs = app.outputs_folder()
    assert stat.S_IMODE(os.stat(outputs).st_mode) == 0o700  # served as a static path: nobody else writes there
    assert outputs.name.startswith("cifake-space-outputs-") and outputs.name != "cifake-space-outputs-"
    assert app.outputs_folder() == outputs  # one per process


def test_the_headline_is_the_verdict_at_the_models_threshold(contrary):
    detector, example, verdict = contrary
    value, _, _, notes = detector.classify(str(example))
    shown = gr.Label(num_top_classes=2).postprocess(value)  # what the page's label is sent
    assert shown.label == verdict and scores(value)[verdict] < 0.5  # the less likely class: its threshold says so
    assert {c.label: c.confidence for c in shown.confidences} == scores(value)  # and both probabilities
    assert notes.startswith(f"The model says **{verdict}**") and "Its threshold, chosen on validation images" in notes


def malformed_report(report: dict, kind: str) -> bytes:
    metrics = report["metrics"]
    if kind == "no metrics":
        del report["metrics"]
    elif kind == "no accuracy":
        del metrics["accuracy"]
    elif kind == "no split":
        del report["split"]
    elif kind == "accuracy as text":
        metrics["accuracy"] = "93%"
    elif kind == "metrics as a list":
        report["metrics"] = [metrics["accuracy"]]
    elif kind == "images as text":
        report["images"] = "200"
    elif kind == "generators as a number":
        report["generators"] = 2
    elif kind == "NaN AUROC":
        metrics["roc_auc"] = float("nan")  # json writes NaN, and reads it back
    elif kind == "accuracy above 1":
        metrics["accuracy"] = 93.0
    elif kind == "family figure above 1":
        metrics["per_family"] = [{"family": "Stable Diffusion", "images": 78, "roc_auc_vs_real": 95.1}]
    elif kind == "families as text":
        metrics["per_family"] = "Stable Diffusion 0.95"
    elif kind == "a list":
        return json.dumps([report]).encode()
    elif kind == "null":
        return b"null"
    elif kind == "invalid JSON":
        return json.dumps(report).encode()[:-40]
    elif kind == "not UTF-8":
        return json.dumps(report).encode().replace(b'"test"', b'"t\xe9st"')  # Latin-1 bytes
    return json.dumps(report).encode()


MALFORMED = ["no metrics", "no accuracy", "no split", "accuracy as text", "metrics as a list", "images as text",
             "generators as a number", "NaN AUROC", "accuracy above 1", "family figure above 1", "families as text",
             "a list", "null", "invalid JSON", "not UTF-8"]


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_report_gives_a_page_without_its_figures_and_a_log_line(detector, trained_model, tmp_path, caplog,
                                                                            kind):
    import logging

    from space.app import Detector, build_demo

    (tmp_path / "report").mkdir()
    good = json.loads((trained_model / "report" / "report.json").read_text())
    (tmp_path / "report" / "report.json").write_bytes(malformed_report(good, kind))
    shown = Detector(str(tmp_path), detector.model, detector.processor)  # as a folder's model would be
    with caplog.at_level(logging.WARNING, logger="cifake.space"):
        summary = shown.summary()
        page = build_demo(shown).config["components"]
    assert summary.startswith(f"Model: `{tmp_path}` (CNN: ") and summary.endswith("parameters).")  # no report line
    assert not any(word in summary for word in ("images of", "accuracy", "AUROC", "threshold"))
    assert any(summary in str(component.get("props", {}).get("value", "")) for component in page)
    warnings = [r.getMessage() for r in caplog.records if r.name == "cifake.space" and r.levelno == logging.WARNING]
    assert warnings and all(f"The report of {tmp_path} is not as `cifake train` writes it" in w for w in warnings)


def test_a_malformed_report_on_the_hub_is_left_out_too(detector, tmp_path, monkeypatch, caplog):
    import logging

    import huggingface_hub

    from space.app import Detector

    served = tmp_path / "report.json"
    served.write_text(json.dumps({"metrics": {"accuracy": 0.9}, "images": 200}))  # no split, no data
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo_id, filename, **kwargs: str(served))
    with caplog.at_level(logging.WARNING, logger="cifake.space"):
        summary = Detector("me/odd-report", detector.model, detector.processor).summary()
    assert summary.startswith("Model: `me/odd-report`") and "accuracy" not in summary
    assert any("The report of me/odd-report is not as" in r.getMessage() for r in caplog.records)


def test_a_report_on_a_split_of_one_label_shows_what_was_called_right_and_no_accuracy(detector, trained_model, tmp_path):
    from modeling.scoring.detection import one_label
    from space.app import Detector

    report = json.loads((trained_model / "report" / "report.json").read_text())
    report["metrics"] = one_label({**report["metrics"], "support_fake": 0, "recall_real": 0.75})
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text(json.dumps(report))
    summary = Detector(str(tmp_path), detector.model, detector.processor).summary()
    assert "all REAL: 75.0% called REAL (no accuracy or AUROC without both labels)" in summary
    assert "accuracy 1" not in summary and "AUROC 0" not in summary


def test_the_page_gives_each_generator_familys_figure_from_the_report(detector, trained_model, tmp_path):
    from space.app import Detector

    report = json.loads((trained_model / "report" / "report.json").read_text())
    report["metrics"]["per_family"] = [
        {"family": "Stable Diffusion", "generators": 4, "images": 78, "roc_auc_vs_real": 0.9512},
        {"family": "GAN", "generators": 9, "images": 54, "roc_auc_vs_real": 0.5488},
        {"family": "DDPM", "generators": 5, "images": 30, "roc_auc_vs_real": None}]  # no figure: left out
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text(json.dumps(report))
    summary = Detector(str(tmp_path), detector.model, detector.processor).summary()
    assert ("AUROC of each generator family against the REAL images: Stable Diffusion 0.951 (78 images), "
            "GAN 0.549 (54 images).") in summary and "DDPM" not in summary and "own score" not in summary
    # a model with a family head: each family's own score beside it, and what that score is
    report["metrics"]["per_family"][0]["roc_auc_vs_real_own_score"] = 0.9791
    (tmp_path / "report" / "report.json").write_text(json.dumps(report))
    summary = Detector(str(tmp_path), detector.model, detector.processor).summary()
    assert ("Stable Diffusion 0.951 (0.979 by its own score) (78 images), GAN 0.549 (54 images). Its own score: the "
            "model names each family") in summary


def test_importing_the_app_makes_no_folder_and_sets_nothing(tmp_path):
    """The app in the shape of gradio's demos: `build_demo` is the factory; importing the module only defines."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "GRADIO_ANALYTICS_ENABLED"}
    code = ("import os, pathlib, tempfile, space.app as app\n"
            "made = lambda: len(list(pathlib.Path(tempfile.gettempdir()).glob('cifake-space-outputs-*')))\n"
            "print(os.environ.get('GRADIO_ANALYTICS_ENABLED'), made())\n"
            "app.outputs_folder()\n"
            "print(made())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**env, "TMPDIR": str(tmp_path)}, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["None", "0", "1"]  # nothing set or made at import; the folder on first use
    assert not list(tmp_path.glob("cifake-space-outputs-*"))  # and removed at exit
