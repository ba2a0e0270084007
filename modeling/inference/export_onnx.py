"""`cifake export-onnx`: a saved model as ONNX (torch's dynamo exporter, onnxscript), `pixel_values`
(batch dynamic, 3, 32, 32) to `logits`. The folder (default `MODEL/onnx/`, as transformers.js and Optimum
lay a Hub repo out) holds `model.onnx` with the `config.json` and `preprocessor_config.json` that say how
to prepare images and read the logits. onnxruntime and PyTorch score the same images as a check.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cifake_kit.errors import CifakeError, first_line
from cifake_kit.outputs import check_output_dir, staged_files, write_json
from modeling.inference.core import LogitsOnly, load_model
from modeling.layout import ONNX_DIR, ONNX_FILE, ONNX_FILES, ONNX_RECORD, ONNX_STAGING

DEFAULT_OPSET = 18
# onnxruntime and PyTorch compute in different orders; past this the export is wrong, not rounded.
TOLERANCE = 1e-4


def weights_digest(folder: Path) -> str:
    """SHA-256 over a model folder's safetensors files, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_current(folder: Path) -> None:
    """CifakeError when `folder`/onnx holds an export of other weights than the folder's (it was
    trained further, or the export is from before the record existed)."""
    onnx = Path(folder) / ONNX_DIR
    if not (onnx / ONNX_FILE).is_file():
        return
    try:
        recorded = json.loads((onnx / ONNX_RECORD).read_text()).get("weights_sha256")
    except (OSError, ValueError):
        recorded = None
    if recorded != weights_digest(folder):
        raise CifakeError(
            f"{str(onnx)!r} was exported from other weights than {str(folder)!r} holds now (trained further since?). "
            f"Run `cifake export-onnx --model {folder} --overwrite`, or delete {str(onnx)!r}."
        )


@dataclass
class OnnxExport:
    folder: Path
    max_difference: float  # largest |onnxruntime - PyTorch| over the checked logits
    images: int  # how many images the check scored


def export_onnx(model: str | Path, output_dir: str | Path | None = None, images: list | None = None,
                opset: int = DEFAULT_OPSET, overwrite: bool = False) -> OnnxExport:
    """Export `model` (a folder or Hub id) to `output_dir` (default: MODEL/onnx) and check it on `images`
    (PIL images, through the model's processor; default: 8 random inputs)."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's exporter needs it; say so before the work starts)
    except ImportError as err:
        raise CifakeError(
            f"export-onnx needs {err.name}: install the kit's ONNX extra, `pip install 'cifake-kit[onnx]'` (onnx, "
            f"onnxscript, onnxruntime)."
        ) from None
    if not 7 <= opset <= 25:
        raise CifakeError(f"--opset {opset} is not an ONNX opset torch exports to: use 18 (the default) or another "
                          f"between 7 and 25.")
    source = Path(str(model)).expanduser()
    out = Path(output_dir).expanduser() if output_dir else (source / ONNX_DIR if source.is_dir() else Path(ONNX_DIR))
    holds = check_output_dir(out, kit_names=ONNX_FILES, ours=lambda folder: all(  # an export, and cut ones' staging
        name in ONNX_FILES or name.startswith(ONNX_STAGING + ".") for name in os.listdir(folder)))
    if holds and not overwrite:
        raise CifakeError(f"--output-dir {str(out)!r} already holds an ONNX export. Pass --overwrite to replace it, or "
                          f"choose another --output-dir.")
    net, processor = load_model(model, device="cpu")
    wrapper = LogitsOnly(net).eval()
    example = torch.zeros(2, net.config.num_channels, 32, 32)
    with staged_files(out, ONNX_STAGING, ONNX_FILES, last=ONNX_RECORD) as staging:
        try:
            torch.onnx.export(wrapper, (example,), str(staging / ONNX_FILE), input_names=["pixel_values"],
                              output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                              opset_version=opset, dynamo=True, external_data=False, verbose=False, report=False)
        except Exception as err:  # the exporter's errors are long; the first line says which operator
            raise CifakeError(f"torch could not export {str(model)!r} to ONNX ({first_line(err)}).") from err
        pixel_values = (processor(images, return_tensors="pt")["pixel_values"] if images else
                        torch.randn(8, net.config.num_channels, 32, 32, generator=torch.Generator().manual_seed(0)))
        session = onnxruntime.InferenceSession(str(staging / ONNX_FILE), providers=["CPUExecutionProvider"])
        ours = session.run(["logits"], {"pixel_values": pixel_values.numpy().astype(np.float32)})[0]
        with torch.inference_mode():
            theirs = wrapper(pixel_values).numpy()
        difference = float(np.abs(ours - theirs).max())
        if not difference <= TOLERANCE:
            raise CifakeError(f"The ONNX export of {str(model)!r} disagrees with PyTorch (largest logit difference "
                              f"{difference:.2g}); nothing was written. Report it with the model's config.json.")
        net.config.to_json_file(staging / "config.json")
        processor.to_json_file(staging / "preprocessor_config.json")
        write_json(staging / ONNX_RECORD, {"weights_sha256": weights_digest(source) if source.is_dir() else None,
                                      "opset": opset, "max_logit_difference": difference})
    return OnnxExport(out, difference, len(pixel_values))
