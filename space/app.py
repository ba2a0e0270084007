"""CIFAKE: is this picture real or AI-generated? A Gradio app with Grad-CAM.

`build_demo(model)` makes the app for a model folder or Hub id; `cifake demo --model DIR` serves
it on this machine. Run as a Hugging Face Space (`python app.py`, which is how the gradio SDK
starts one) it serves the model named by the Space's CIFAKE_MODEL variable. It imports only the
kit's `modeling` and `cifake_kit` packages, which `cifake push-space` uploads beside it.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from cifake_kit.errors import CifakeError  # noqa: E402
from cifake_kit.schema import DEMO_GENERATOR_ID  # noqa: E402
from modeling.gradcam import enlarge, explain_images  # noqa: E402
from modeling.inference import load_model, open_image  # noqa: E402

logger = logging.getLogger("cifake.space")
HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = "cifake-model"  # what the README's main job trains
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # Gradio refuses bigger uploads while they stream in, and keeps nothing of them
# This process's own folder for the pictures it returns (mode 0700, made once): Gradio serves it as a
# static path, so no other local user may place files there, as one could in a fixed shared /tmp folder.
OUTPUTS = Path(tempfile.mkdtemp(prefix="cifake-space-outputs-"))
atexit.register(shutil.rmtree, OUTPUTS, ignore_errors=True)
OUTPUT_MAX_AGE_S = 3600
# Uploads (users' pictures) live in Gradio's cache: swept every 10 minutes once an hour old, and all
# of them when the server stops.
UPLOAD_SWEEP = (600, OUTPUT_MAX_AGE_S)

# Bundled examples: real CIFAR-10 test photos, and genuine samples of generators trained on
# CIFAR-10, each labelled with its generator and source (none is Stable Diffusion output); see
# examples/SOURCES.md.
EXAMPLES = [
    ("examples/real-cifar10-airplane-0000.jpg", "REAL · CIFAR-10 test photo (airplane)"),
    ("examples/real-cifar10-cat-0000.jpg", "REAL · CIFAR-10 test photo (cat)"),
    ("examples/real-cifar10-ship-0000.jpg", "REAL · CIFAR-10 test photo (ship)"),
    ("examples/real-cifar10-frog-0000.jpg", "REAL · CIFAR-10 test photo (frog)"),
    ("examples/fake-sndcgan-chainer-gan-lib.png", "FAKE · SN-DCGAN sample (pfnet-research/chainer-gan-lib)"),
    ("examples/fake-ddpm-w86763777.png", "FAKE · DDPM sample (w86763777/pytorch-ddpm)"),
    ("examples/fake-began-chainer-gan-lib.png", "FAKE · BEGAN sample (pfnet-research/chainer-gan-lib)"),
]


class Detector:
    """The model the app runs, or why it could not be loaded (a Space shows the reason on its page)."""

    def __init__(self, model_id: str, model=None, processor=None, error: str | None = None):
        self.model_id, self.model, self.processor, self.error = model_id, model, processor, error

    @classmethod
    def load(cls, model: str | Path) -> Detector:
        try:
            net, processor = load_model(model, device="cpu")
        except CifakeError as err:
            logger.error("Model not loaded: %s", err)
            return cls(str(model), error=str(err))
        return cls(str(model), net, processor)

    def summary(self) -> str:
        """One line naming the model, with what its own report says about it."""
        if self.error:
            return (f"**No model loaded.** {self.error} Set `CIFAKE_MODEL` to a model folder written by "
                    f"`cifake train` or a Hub model id, and restart.")
        config = self.model.config
        shape = (f"timm `{config.backbone}`" if config.backbone else
                 f"CNN: conv {'-'.join(map(str, config.conv_filters))}, dense {'-'.join(map(str, config.dense_units)) or 'none'}")
        line = f"Model: `{self.model_id}` ({shape}; {sum(p.numel() for p in self.model.parameters()):,} parameters)."
        facts = model_report(self.model_id)
        if facts:
            metrics = facts["metrics"]
            auroc = f"AUROC {metrics['roc_auc']:.3f}, " if metrics.get("roc_auc") is not None else ""
            line += (f" On {facts.get('images', 0):,} {facts['split']} images of `{facts['data']}`: {auroc}accuracy "
                     f"{metrics['accuracy']:.1%}.")
            if metrics.get("threshold", 0.5) != 0.5:
                line += f" It says FAKE from P(FAKE) {metrics['threshold']:.2f} (its threshold, chosen on validation images)."
            if DEMO_GENERATOR_ID in (facts.get("generators") or []):
                line += (" **Demonstration model:** its FAKE training images came from the kit's tiny random-weight "
                         "pipeline, not from Stable Diffusion, so its verdicts on real pictures mean nothing.")
        return line

    def classify_pasted(self, payload: dict | None):
        """`classify` for the paste box's raw payload (Gradio has checked that its path is an upload)."""
        if payload and not payload.get("path"):
            raise gr.Error("The pasted data is not an image file the CIFAKE kit can read. Paste or upload a picture.")
        return self.classify(payload and payload["path"])

    def classify(self, path: str | None):
        """(probabilities for gr.Label, Grad-CAM overlay, the 32x32 view, notes) for one image file."""
        if self.model is None:
            raise gr.Error(f"No model is loaded: {self.error}")
        if not path:
            raise gr.Error("Upload an image, paste one, or pick an example first.")
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        if size > MAX_UPLOAD_BYTES:
            raise gr.Error(f"This file is {size / 2**20:.0f} MB; the app takes images up to {MAX_UPLOAD_BYTES // 2**20} MB.")
        try:
            image, notes = open_image(path)
            result = explain_images(self.model, self.processor, [image])[0]
        except CifakeError as err:
            raise gr.Error(str(err)) from err
        except Exception as err:  # never a traceback in the page: a message, and the log keeps the details
            logger.exception("Classification failed for %s", path)
            raise gr.Error(f"This image could not be classified ({type(err).__name__}). Try another image.") from err
        notes.insert(0, f"The model says **{result.predicted}** ({result.probabilities[result.predicted]:.1%}). "
                        f"The heatmap shows where its evidence for {result.predicted} lies.")
        return result.probabilities, save_png(result.overlay()), save_png(enlarge(result.view)), "\n\n".join(notes)


def model_report(model_id: str) -> dict | None:
    """The model's own report (report/report.json, which `cifake train` writes and `push-model` uploads):
    from its folder, or from the Hub for a Hub id (how a Space runs it); None when there is none."""
    local = Path(model_id) / "report" / "report.json"
    try:
        if local.is_file():
            return json.loads(local.read_text())
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model_id, "report/report.json")).read_text())
    except Exception as err:  # no report, offline, or a repo the Hub does not serve: the page goes without it
        logger.info("No report for %s: %s", model_id, err)
        return None


def save_png(image) -> str:
    """Write `image` once under its content hash and return the path.

    Gradio rewrites a returned PIL image into its cache even when the same bytes are already
    there, so two users who get the same picture race: one is served a half-written file. A file
    written once, atomically, and then only read avoids that. Files older than an hour go.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # 1.8 ms instead of 5 for a 256x256 overlay; 28 KB, not 20
    data = buffer.getvalue()
    cutoff = time.time() - OUTPUT_MAX_AGE_S
    for old in OUTPUTS.glob("*.png"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:  # another process removed it first
            pass
    path = OUTPUTS / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    try:
        os.utime(path)  # reused: mark it fresh so no sweep removes it while it is served
    except FileNotFoundError:
        staging = path.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.tmp")
        staging.write_bytes(data)
        os.replace(staging, path)
    return str(path)


def build_demo(model: str | Path | Detector) -> gr.Blocks:
    """The app for `model`: a folder written by `cifake train`, a Hub model id, or a loaded Detector.

    A model that fails to load gives an app that says why on its page (what a Space shows);
    `cifake demo` checks `Detector.load(...).error` first and stops instead.
    """
    detector = model if isinstance(model, Detector) else Detector.load(model)
    # Served as they are, not hashed and copied into Gradio's cache on every request: the outputs are
    # written once under their content hash and only read after, and the examples never change.
    gr.set_static_paths([OUTPUTS, HERE / "examples"])
    with gr.Blocks(title="CIFAKE: real or AI-generated?", delete_cache=UPLOAD_SWEEP) as demo:
        gr.Markdown(
            "# CIFAKE: real or AI-generated?\n"
            "A small CNN from the CIFAKE benchmark (Bird & Lotfi, IEEE Access 2024) judges a picture at 32x32 "
            "pixels and Grad-CAM shows which pixels drove its verdict. The paper found such models read background "
            "artefacts, not the object: treat the verdict as a research probe, not as evidence.\n\n" + detector.summary()
        )
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Upload an image file", type="filepath", file_count="single")
                paste = gr.Image(label="…or paste one (Ctrl+V)", sources=["clipboard"], type="filepath", image_mode=None,
                                 height=160)
                gr.Examples(
                    examples=[[str(HERE / path)] for path, _ in EXAMPLES],
                    example_labels=[label for _, label in EXAMPLES],
                    inputs=[upload],
                    label="Examples: CIFAR-10 photos, and samples of GANs and a DDPM trained on CIFAR-10 "
                          "(none is Stable Diffusion output)",
                )
            with gr.Column():
                probabilities = gr.Label(label="REAL / FAKE", num_top_classes=2)
                with gr.Row():
                    heatmap = gr.Image(label="Grad-CAM for the predicted class", type="filepath", format="png", height=256)
                    view = gr.Image(label="What the model saw (32x32, enlarged)", type="filepath", format="png",
                                    height=256)
                notes = gr.Markdown()
        outputs = [probabilities, heatmap, view, notes]
        upload.change(detector.classify, inputs=upload, outputs=outputs, api_name="predict")
        # Unprocessed: gr.Image would open the file with PIL before classify runs, and a file that is no
        # image would fail there with no message on the page (`null`); classify's checks say what is wrong.
        paste.change(detector.classify_pasted, inputs=paste, outputs=outputs, api_name="predict_pasted", preprocess=False)
    # One request at a time: Grad-CAM hooks the shared model while it runs. Others wait in the queue.
    demo.queue(default_concurrency_limit=1, max_size=64)
    return demo


def launch(demo: gr.Blocks, **settings):
    """`demo.launch(**settings)` with the app's upload limit: what both a Space and `cifake demo` run."""
    return demo.launch(max_file_size=MAX_UPLOAD_BYTES, **settings)


if __name__ == "__main__":  # as a Space: the model comes from the Space's CIFAKE_MODEL variable
    launch(build_demo(os.environ.get("CIFAKE_MODEL", DEFAULT_MODEL)))
