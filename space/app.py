"""CIFAKE: is this picture real or AI-generated? A Gradio app with Grad-CAM.

`build_demo(model)` makes the app for a model folder or Hub id, which `cifake demo` serves; as a Space
(`python app.py`) it serves the Space's CIFAKE_MODEL. It imports only `modeling` and `cifake_kit`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import huggingface_hub
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import ImageOps

from cifake_kit.errors import CifakeError
from cifake_kit.schema import DEMO_GENERATOR_ID
from modeling.inference.core import (
    REDUCTION_CAVEAT,
    as_stored_for,
    decision_threshold,
    is_reduced,
    load_model,
    open_image,
)
from modeling.inference.gradcam import enlarge, explain_images

logger = logging.getLogger("cifake.space")
HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = "cifake-model"  # what the README's main job trains
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # Gradio refuses bigger uploads while they stream in, and keeps nothing of them
OUTPUT_MAX_AGE_S = 3600
# Uploads (users' pictures) live in Gradio's cache: swept every 10 minutes once an hour old, and all
# of them when the server stops.
UPLOAD_SWEEP = (600, OUTPUT_MAX_AGE_S)
# The one answer for a path that is neither an upload nor an example: it says nothing of what is there.
NOT_AN_UPLOAD = ("The app reads only pictures uploaded to it and its own examples. Upload or paste the picture, "
                 "then try again.")

# Bundled examples: real CIFAR-10 test photos, genuine Stable Diffusion v1.x images (CIFAKE's own
# generator family) and samples of generators trained on CIFAR-10, each labelled with its generator
# and source; see examples/SOURCES.md.
EXAMPLES = [
    *[(f"examples/real-cifar10-{name}-0000.jpg", f"REAL · CIFAR-10 test photo ({name})")
      for name in ("airplane", "cat", "ship", "frog")],
    ("examples/fake-sd14-vincegmz-dog.png", "FAKE · Stable Diffusion v1.4, \"a photo of a dog\" (vincegmz/stable-diffusion)"),
    ("examples/fake-sd11-bento170502-cat.png", "FAKE · Stable Diffusion v1.1, \"a photo of a cat on a leash\" (bento170502/stable-diffusion)"),
    ("examples/fake-sd1x-JoshCLWren-illustration.png", "FAKE · Stable Diffusion v1.x illustration (JoshCLWren/stable-diffusion)"),
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
        report = model_report(self.model_id)
        if report is not None:
            try:
                line += report_line(json.loads(report))
            except (KeyError, TypeError, ValueError, RecursionError) as err:  # edited, or another tool's: shown without
                logger.warning("The report of %s is not as `cifake train` writes it (%s: %s); the page shows no "
                               "figures from it. Train again, or restore its report/report.json.",
                               self.model_id, type(err).__name__, err)
        return line

    def classify_upload(self, path: str | None):
        """`classify` for a path a client sent: only a file uploaded to this app, or a bundled example, is read.

        Gradio checks an upload's path only when its payload carries FileData `meta` (and not at all on an
        unprocessed route), so a client could otherwise name any file on the server and get it classified
        and shown. Everything else gets one answer, which tells nothing of what the path is.
        """
        if path and not client_may_read(path):
            logger.warning("Refused to read %r: it is neither an upload nor one of the app's examples.", path)
            raise user_error(NOT_AN_UPLOAD)
        return self.classify(path)

    def classify_pasted(self, payload: dict | None):
        """`classify_upload` for the paste box's raw payload, which Gradio hands over unprocessed."""
        path = payload.get("path") if isinstance(payload, dict) else payload
        if payload and (not isinstance(path, str) or not path):
            raise user_error("The pasted data is not an image file the CIFAKE kit can read. Paste or upload a picture.")
        return self.classify_upload(path)

    def classify(self, path: str | None):
        """(verdict for gr.Label, Grad-CAM overlay, 32x32 view: files; notes) for whatever local file `path` names:
        the app's events go through `classify_upload`."""
        if self.model is None:
            raise user_error(f"No model is loaded: {self.error}")
        if not path:
            raise user_error("Upload an image, paste one, or pick an example first.")
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        if size > MAX_UPLOAD_BYTES:
            raise user_error(f"This file is {size / 2**20:.0f} MB; the app takes images up to "
                             f"{MAX_UPLOAD_BYTES // 2**20} MB.")
        try:
            image, notes = open_image(path)
            if is_reduced(self.model, image):
                side = self.model.config.image_size
                width, height = ImageOps.exif_transpose(image).size  # as the processor turns it upright
                notes.append(f"This picture ({width}x{height}) was reduced to {side}x{side} before the model saw it. "
                             f"{REDUCTION_CAVEAT}")
            image = as_stored_for(self.model, self.processor, image)  # one codec for every picture, as in training
            result = explain_images(self.model, self.processor, [image])[0]
        except CifakeError as err:
            raise user_error(str(err)) from err
        except Exception as err:  # never a traceback in the page: a message, and the log keeps the details, once
            logger.exception("Classification failed for %s", path)
            raise user_error(f"This image could not be classified ({type(err).__name__}). Try another image.") from err
        notes.insert(0, f"The model says **{result.predicted}** ({result.probabilities[result.predicted]:.1%}). "
                        f"The heatmap shows where its evidence for {result.predicted} lies.")
        if result.family_scores:
            notes.append("It also tells apart the generator families it learnt. Its own score for each, P(that "
                         "family | that family or REAL), ranks that family's fakes against real photos better than "
                         "P(FAKE) does: " + ", ".join(f"{family} {p:.1%}" for family, p in result.family_scores.items())
                         + ".")
        if result.probabilities[result.predicted] < 0.5:
            threshold = decision_threshold(self.model.config)
            notes[0] += (f" Its threshold, chosen on validation images, is P(FAKE) {threshold:.1%}: from there on it "
                         f"says FAKE, so its verdict need not be the likelier class.")
        verdict = save_verdict(result.predicted, result.probabilities)
        return verdict, save_png(result.overlay()), save_png(enlarge(result.view)), "\n\n".join(notes)


def user_error(message: str) -> gr.Error:
    """The page's message for a user's mistake. Gradio prints the traceback of every gr.Error (with the chain
    it was raised from) unless told not to: a bad upload is no bug, and real failures are logged where caught."""
    return gr.Error(message, print_exception=False)


def client_may_read(path: str) -> bool:
    """Whether `path`, links resolved, lies in Gradio's upload folder (GRADIO_TEMP_DIR honoured) or the examples."""
    try:
        real = Path(path).resolve()
        return any(is_in_or_equal(real, root) for root in (get_upload_folder(), HERE / "examples"))
    except (OSError, RuntimeError, TypeError, ValueError):  # a NUL byte, a link loop, no path at all
        return False


def report_line(facts) -> str:
    """The page's line of figures from a model's report; KeyError, TypeError or ValueError for a report that is
    not as `cifake train` writes it (it may be edited by hand, or come from the Hub), never a wrong figure."""

    def fraction(value, name):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:  # NaN too
            raise ValueError(f"{name} is {value!r}, not a number from 0 to 1")
        return value

    def text(value, name):
        if not isinstance(value, str):
            raise TypeError(f"{name} is {value!r}, not text")
        return value

    def count(value, name):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} is {value!r}, not a count")
        return value

    if not isinstance(facts, dict) or not isinstance(facts.get("metrics"), dict):
        raise TypeError("it is not an object with a `metrics` object")
    metrics = facts["metrics"]
    images = count(facts.get("images", 0), "images")
    generators = facts.get("generators") or []
    if not isinstance(generators, list):
        raise TypeError(f"generators is {generators!r}, not a list")
    where = f"{images:,} {text(facts['split'], 'split')} images of `{text(facts['data'], 'data')}`"
    label = metrics.get("only_label")
    if label is not None:  # a split of one label: no accuracy or AUROC to show
        label = text(label, "only_label")
        called = fraction(metrics[f"called_{label.lower()}"], f"called_{label.lower()}")
        line = f" On {where}, all {label}: {called:.1%} called {label} (no accuracy or AUROC without both labels)."
    else:
        auroc = metrics.get("roc_auc")
        auroc = f"AUROC {fraction(auroc, 'roc_auc'):.3f}, " if auroc is not None else ""
        line = f" On {where}: {auroc}accuracy {fraction(metrics['accuracy'], 'accuracy'):.1%}."
    families = metrics.get("per_family") or []
    if not isinstance(families, list) or not all(isinstance(row, dict) for row in families):
        raise TypeError(f"per_family is {families!r}, not a list of objects")
    shown = [f"{text(row['family'], 'family')} {fraction(row['roc_auc_vs_real'], 'roc_auc_vs_real'):.3f}"
             + (f" ({fraction(own, 'roc_auc_vs_real_own_score'):.3f} by its own score)"
                if (own := row.get("roc_auc_vs_real_own_score")) is not None else "")
             + f" ({count(row['images'], 'images')} images)" for row in families if row.get("roc_auc_vs_real") is not None]
    if shown:
        line += f" AUROC of each generator family against the REAL images: {', '.join(shown)}."
        if any(row.get("roc_auc_vs_real_own_score") is not None for row in families):
            line += (" Its own score: the model names each family, and P(that family | that family or REAL) ranks "
                     "its fakes against the photos without the other families' doubts.")
    threshold = fraction(metrics.get("threshold", 0.5), "threshold")
    if threshold != 0.5:
        line += f" It says FAKE from P(FAKE) {threshold:.2f} (its threshold, chosen on validation images)."
    if DEMO_GENERATOR_ID in generators:
        line += (" **Demonstration model:** its FAKE training images came from the kit's tiny random-weight "
                 "pipeline, not from Stable Diffusion, so its verdicts on real pictures mean nothing.")
    return line


def model_report(model_id: str) -> bytes | None:
    """The bytes of the model's own report (report/report.json, which `cifake train` writes and `push-model` uploads):
    from its folder, or from the Hub for a Hub id (how a Space runs it); None when there is none."""
    local = Path(model_id) / "report" / "report.json"
    try:
        if local.is_file():
            return local.read_bytes()
        return Path(huggingface_hub.hf_hub_download(model_id, "report/report.json")).read_bytes()
    except Exception as err:  # no report, offline, or a repo the Hub does not serve: the page goes without it
        logger.info("No report for %s: %s", model_id, err)
        return None


def save_verdict(verdict: str, probabilities: dict[str, float]) -> str:
    """gr.Label's value headed by `verdict`, every class's probability below it, as a .json file: given a dict,
    gr.Label heads it with the likelier class, which contradicts a verdict between the threshold and 0.5, and
    the {"label", "confidences"} form as a dict fails in its postprocess (gradio 6.31)."""
    confidences = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
    value = {"label": verdict, "confidences": [{"label": label, "confidence": p} for label, p in confidences]}
    return save_output(json.dumps(value).encode(), ".json")


def save_png(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # 1.8 ms instead of 5 for a 256x256 overlay; 28 KB, not 20
    return save_output(buffer.getvalue(), ".png")


def save_output(data: bytes, suffix: str) -> str:
    """Write `data` once, atomically, under its content hash and return the path; files older than an hour go.
    (Gradio rewrites a returned PIL image into its cache even when the same bytes are there, so two users who
    get the same picture race, and one is served a half-written file.)"""
    cutoff = time.time() - OUTPUT_MAX_AGE_S
    for old in outputs_folder().iterdir():
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            if old.suffix in (".png", ".json") and old.stat().st_mtime < cutoff:
                old.unlink()
    path = outputs_folder() / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    try:
        os.utime(path)  # reused: mark it fresh so no sweep removes it while it is served
    except FileNotFoundError:
        staging = path.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.tmp")
        staging.write_bytes(data)
        os.replace(staging, path)
    return str(path)


@functools.cache
def outputs_folder() -> Path:
    """This process's own folder for the pictures it returns (mode 0700, made on first use, removed at exit):
    Gradio serves it as a static path, so no other local user may place files there, as one could in a fixed
    shared /tmp folder. Nothing is made when the module is imported."""
    folder = Path(tempfile.mkdtemp(prefix="cifake-space-outputs-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def build_demo(model: str | Path | Detector) -> gr.Blocks:
    """The app for `model`: a folder written by `cifake train`, a Hub model id, or a loaded Detector. A model
    that fails to load gives an app that says why on its page (`cifake demo` checks first and stops)."""
    detector = model if isinstance(model, Detector) else Detector.load(model)
    # Served as they are, not hashed and copied into Gradio's cache on every request: the outputs are
    # written once under their content hash and only read after, and the examples never change.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # gradio's own telemetry calls read it when they run
    gr.set_static_paths([outputs_folder(), HERE / "examples"])
    with gr.Blocks(title="CIFAKE: real or AI-generated?", delete_cache=UPLOAD_SWEEP, analytics_enabled=False) as demo:
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
                    label="Examples: CIFAR-10 photos, genuine Stable Diffusion images, and samples of GANs and "
                          "a DDPM trained on CIFAR-10",
                )
            with gr.Column():
                probabilities = gr.Label(label="REAL / FAKE", num_top_classes=2)
                with gr.Row():
                    heatmap = gr.Image(label="Grad-CAM for the predicted class", type="filepath", format="png", height=256)
                    view = gr.Image(label="What the model saw (32x32, enlarged)", type="filepath", format="png",
                                    height=256)
                notes = gr.Markdown()
        outputs = [probabilities, heatmap, view, notes]
        upload.change(detector.classify_upload, inputs=upload, outputs=outputs, api_name="predict")
        # Unprocessed: gr.Image would open the file with PIL before classify runs, and a file that is no
        # image would fail there with no message on the page (`null`); classify_pasted's checks say what is wrong.
        paste.change(detector.classify_pasted, inputs=paste, outputs=outputs, api_name="predict_pasted", preprocess=False)
    # One request at a time: Grad-CAM hooks the shared model while it runs. Others wait in the queue.
    demo.queue(default_concurrency_limit=1, max_size=64)
    return demo


def launch(demo: gr.Blocks, **settings):
    """`demo.launch(**settings)` with the app's upload limit, as a Space and `cifake demo` run it. In the
    foreground, SIGTERM (`kill`, systemd, docker, a Space's restart) stops it as Ctrl+C does, so Gradio removes
    the users' uploads (delete_cache) and the process its outputs, instead of ending on the spot."""
    blocking = not settings.get("prevent_thread_lock") and threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if blocking:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises KeyboardInterrupt, as Ctrl+C does
    try:
        return demo.launch(max_file_size=MAX_UPLOAD_BYTES, **settings)
    finally:
        if blocking:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":  # as a Space: the model comes from the Space's CIFAKE_MODEL variable
    launch(build_demo(os.environ.get("CIFAKE_MODEL", DEFAULT_MODEL)))
