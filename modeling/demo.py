"""`cifake demo`: run the Space's Gradio app (space/app.py) on this machine."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from dataset_builder.errors import CifakeError

APP = Path(__file__).resolve().parents[1] / "space" / "app.py"


def load_app(model: str | Path | None = None, require_model: bool = True):
    """A fresh copy of the app module running `model` (default: $CIFAKE_MODEL).

    With `require_model`, a model that fails to load is a CifakeError; otherwise the app is
    returned as a Space would show it, with the reason on its page.
    """
    if not APP.is_file():
        raise CifakeError(f"No Space app at {APP}: `cifake demo` runs from the kit's source checkout (pip install -e).")
    previous = os.environ.get("CIFAKE_MODEL")
    if model is not None:
        os.environ["CIFAKE_MODEL"] = str(model)
    try:
        spec = importlib.util.spec_from_file_location("cifake_space_app", APP)
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
    finally:
        if previous is None:
            os.environ.pop("CIFAKE_MODEL", None)
        else:
            os.environ["CIFAKE_MODEL"] = previous
    if require_model and app.LOAD_ERROR:
        raise CifakeError(app.LOAD_ERROR)
    return app


def launch_app(model: str | Path | None = None, port: int | None = None, host: str = "127.0.0.1") -> None:
    """Serve the app until interrupted; `port` None means $GRADIO_SERVER_PORT, else 7860."""
    app = load_app(model)
    print(f"CIFAKE demo running {app.MODEL_ID} (Ctrl+C to stop)", flush=True)
    app.demo.launch(server_name=host, server_port=port)
