"""CIFAKE: is this picture real or AI-generated? A Gradio app with Grad-CAM.

The model comes from `from_pretrained` on the Hub id or folder in $CIFAKE_MODEL (default:
./cifake-model, what the kit's README main job trains). Run it with `python space/app.py`
(port from $GRADIO_SERVER_PORT) or `cifake demo`; it deploys to a Hugging Face Space as this
folder plus the kit's `modeling` and `dataset_builder` packages (`cifake push-space`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

HERE = Path(__file__).resolve().parent
if (HERE.parent / "modeling").is_dir():  # a source checkout, or the Space repo with the kit beside it
    sys.path.insert(0, str(HERE.parent))

from dataset_builder.errors import CifakeError  # noqa: E402
from dataset_builder.tiny_generator import TINY_GENERATOR_ID  # noqa: E402
from modeling.evaluation import load_model  # noqa: E402
from modeling.explain import enlarge, explain_images, open_image  # noqa: E402

logger = logging.getLogger("cifake.space")
DEFAULT_MODEL = "cifake-model"
MODEL_ID = os.environ.get("CIFAKE_MODEL", DEFAULT_MODEL)
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
OUTPUTS = Path(tempfile.gettempdir()) / "cifake-space-outputs"
OUTPUT_MAX_AGE_S = 3600

# Bundled examples: real CIFAR-10 test photos, and images made by the kit's own tiny
# random-weight pipeline (not Stable Diffusion); see examples/SOURCES.md.
EXAMPLES = [
    ("examples/real-cifar10-airplane-0000.jpg", "REAL · CIFAR-10 test photo (airplane)"),
    ("examples/real-cifar10-cat-0000.jpg", "REAL · CIFAR-10 test photo (cat)"),
    ("examples/real-cifar10-ship-0000.jpg", "REAL · CIFAR-10 test photo (ship)"),
    ("examples/real-cifar10-frog-0000.jpg", "REAL · CIFAR-10 test photo (frog)"),
    ("examples/kit-tiny-random-pipeline-0.png", "Kit's random pipeline #1 (NOT Stable Diffusion)"),
    ("examples/kit-tiny-random-pipeline-1.png", "Kit's random pipeline #2 (NOT Stable Diffusion)"),
]

try:
    MODEL, PROCESSOR = load_model(MODEL_ID, device="cpu")
    LOAD_ERROR = None
except CifakeError as err:
    MODEL = PROCESSOR = None
    LOAD_ERROR = str(err)
    logger.error("Model not loaded: %s", err)


def model_summary() -> str:
    """One line naming the model the app runs, with what its own report says about it."""
    if LOAD_ERROR:
        return (f"**No model loaded.** {LOAD_ERROR} Set `CIFAKE_MODEL` to a model folder written by "
                f"`cifake train` or a Hub model id, and restart.")
    config = MODEL.config
    shape = (f"timm `{config.backbone}`" if config.backbone else
             f"CNN: conv {'-'.join(map(str, config.conv_filters))}, dense {'-'.join(map(str, config.dense_units)) or 'none'}")
    line = f"Model: `{MODEL_ID}` ({shape}; {sum(p.numel() for p in MODEL.parameters()):,} parameters)."
    report = Path(MODEL_ID) / "report" / "report.json"
    if report.is_file():
        facts = json.loads(report.read_text())
        line += f" Its {facts['split']} accuracy: {facts['metrics']['accuracy']:.1%} on `{facts['data']}`."
        if TINY_GENERATOR_ID in (facts.get("generators") or []):
            line += (" **Demonstration model:** its FAKE training images came from the kit's tiny random-weight "
                     "pipeline, not from Stable Diffusion, so its verdicts on real pictures mean nothing.")
    return line


def classify(path: str | None):
    """(probabilities for gr.Label, Grad-CAM overlay, the 32x32 view, notes) for one image file."""
    if MODEL is None:
        raise gr.Error(f"No model is loaded: {LOAD_ERROR}")
    if not path:
        raise gr.Error("Upload an image, paste one, or pick an example first.")
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    if size > MAX_UPLOAD_BYTES:
        raise gr.Error(f"This file is {size / 2**20:.0f} MB; the app takes images up to {MAX_UPLOAD_BYTES // 2**20} MB.")
    try:
        image, notes = open_image(path)
        result = explain_images(MODEL, PROCESSOR, [image])[0]
    except CifakeError as err:
        raise gr.Error(str(err)) from err
    except Exception as err:  # never a traceback in the page: a message, and the log keeps the details
        logger.exception("Classification failed for %s", path)
        raise gr.Error(f"This image could not be classified ({type(err).__name__}). Try another image.") from err
    notes.insert(0, f"The model says **{result.predicted}** ({result.probabilities[result.predicted]:.1%}). "
                    f"The heatmap shows where its evidence for {result.predicted} lies.")
    return result.probabilities, save_png(result.overlay()), save_png(enlarge(result.view)), "\n\n".join(notes)


def save_png(image) -> str:
    """Write `image` once under its content hash and return the path.

    Gradio rewrites a returned PIL image into its cache even when the same bytes are already
    there, so two users who get the same picture race: one is served a half-written file. A file
    written once, atomically, and then only read avoids that. Files older than an hour go.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    OUTPUTS.mkdir(parents=True, exist_ok=True)
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


with gr.Blocks(title="CIFAKE: real or AI-generated?") as demo:
    gr.Markdown(
        "# CIFAKE: real or AI-generated?\n"
        "A small CNN from the CIFAKE benchmark (Bird & Lotfi, IEEE Access 2024) judges a picture at 32x32 "
        "pixels and Grad-CAM shows which pixels drove its verdict. The paper found such models read background "
        "artefacts, not the object: treat the verdict as a research probe, not as evidence.\n\n" + model_summary()
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
                label="Examples: CIFAR-10 photos, and images from the kit's tiny random pipeline (not Stable Diffusion)",
            )
        with gr.Column():
            probabilities = gr.Label(label="REAL / FAKE", num_top_classes=2)
            with gr.Row():
                heatmap = gr.Image(label="Grad-CAM for the predicted class", type="filepath", format="png", height=256)
                view = gr.Image(label="What the model saw (32x32, enlarged)", type="filepath", format="png", height=256)
            notes = gr.Markdown()
    outputs = [probabilities, heatmap, view, notes]
    upload.change(classify, inputs=upload, outputs=outputs, api_name="predict")
    paste.change(classify, inputs=paste, outputs=outputs, api_name="predict_pasted")

# One request at a time: Grad-CAM hooks the shared model while it runs. Others wait in the queue.
demo.queue(default_concurrency_limit=1, max_size=64)

if __name__ == "__main__":
    demo.launch()
