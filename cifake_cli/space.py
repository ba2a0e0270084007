"""`cifake demo` and `cifake push-space`: the Gradio Space (space/), locally and on the Hub.

gradio and the model are imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import os

from cifake_kit.errors import CifakeError
from cifake_kit.runtime import keep_freed_memory

from .flags import add_model, command

DEMO_EXAMPLE = """\
example:
  cifake demo --model ./cifake-model --port 7860
      the Space's app on http://127.0.0.1:7860
"""

SPACE_EXAMPLE = """\
example:
  cifake push-space your-name/cifake-demo --model your-name/cifake-cnn --dataset-id your-name/cifake
      the app with the kit code it imports; the Space's CIFAKE_MODEL variable is set to the model id
"""


def register(subparsers) -> None:
    demo = command(
        subparsers, "demo", "run the Gradio Space locally",
        "Run the CIFAKE Space's app on this machine: prediction, Grad-CAM overlay and the 32x32 view.",
        DEMO_EXAMPLE,
    )
    add_model(demo, help="model folder or Hub id (default: $CIFAKE_MODEL, else ./cifake-model)",
              default=os.environ.get("CIFAKE_MODEL", "cifake-model"))
    demo.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    demo.set_defaults(handler=run_demo, interrupt_hint="Stopped.")

    space = command(
        subparsers, "push-space", "push the Gradio app to a Hugging Face Space",
        "Upload the Space (app, card, requirements, examples) with the kit modules the app imports to a Hub Space "
        "(sdk gradio), and point it at a Hub model.",
        SPACE_EXAMPLE,
    )
    space.add_argument("repo_id", metavar="REPO_ID", help="Hub Space, e.g. your-name/cifake-demo")
    add_model(space, help="Hub id of the model the Space runs (sets its CIFAKE_MODEL variable)", default=None)
    space.add_argument("--dataset-id", help="Hub id of the dataset, for the Space card")
    space.add_argument("--private", action="store_true", help="create the Space as private")
    space.set_defaults(handler=run_push_space)


def run_demo(args: argparse.Namespace) -> None:
    port = args.port or int(os.environ.get("GRADIO_SERVER_PORT", 7860))
    if not 0 < port < 65536:
        raise CifakeError(f"--port {port} is not a port number: give one between 1 and 65535, e.g. --port 7861.")
    _check_free(args.host, port)  # before the model loads: a busy port is the commonest failure
    from space.app import Detector, build_demo, launch

    keep_freed_memory()
    detector = Detector.load(args.model)
    if detector.error:
        raise CifakeError(detector.error)
    print(f"CIFAKE demo running {args.model} (Ctrl+C to stop)", flush=True)
    try:
        launch(build_demo(detector), server_name=args.host, server_port=port)
    except OSError as err:  # taken between the check and the start; gradio says so in a long line
        _check_free(args.host, port)
        raise CifakeError(f"The demo could not start on {args.host}:{port} ({err}).") from err


def _check_free(host: str, port: int) -> None:
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise CifakeError(
            f"Cannot serve on {host}:{port} ({os.strerror(err.errno) if err.errno else err}): another program (perhaps another `cifake demo`) "
            f"uses it. Pass --port with a free one, e.g. --port {port + 1 if port < 65535 else 7861}."
        ) from None


def run_push_space(args: argparse.Namespace) -> None:
    from space.hub import push_space

    url = push_space(args.repo_id, model=args.model, dataset_id=args.dataset_id, private=args.private)
    print(f"pushed the Space to {url}")
