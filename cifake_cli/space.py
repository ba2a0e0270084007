"""`cifake demo` and `cifake push-space`: the Gradio Space (space/), locally and on the Hub; gradio and the
model are imported inside the handlers only."""

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
        DEMO_EXAMPLE, run_demo,
    )
    add_model(demo, help="model folder or Hub id (default: $CIFAKE_MODEL, else ./cifake-model)",
              default=os.environ.get("CIFAKE_MODEL", "cifake-model"))
    demo.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT, else the first free one from 7860 "
                                                 "on; the URL is printed)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    demo.set_defaults(interrupt_hint="Stopped.")

    space = command(
        subparsers, "push-space", "push the Gradio app to a Hugging Face Space",
        "Upload the Space (app, card, requirements, examples) with the kit modules the app imports to a Hub Space "
        "(sdk gradio), and point it at a Hub model.",
        SPACE_EXAMPLE, run_push_space,
    )
    space.add_argument("repo_id", metavar="REPO_ID", help="Hub Space, e.g. your-name/cifake-demo")
    add_model(space, help="Hub id of the model the Space runs (sets its CIFAKE_MODEL variable)", default=None)
    space.add_argument("--dataset-id", help="Hub id of the dataset, for the Space card")
    space.add_argument("--private", action="store_true", help="create the Space as private")


def run_demo(args: argparse.Namespace) -> None:
    port = args.port
    if port is None and os.environ.get("GRADIO_SERVER_PORT"):
        try:
            port = int(os.environ["GRADIO_SERVER_PORT"])
        except ValueError:
            raise CifakeError(f"GRADIO_SERVER_PORT={os.environ['GRADIO_SERVER_PORT']!r} is not a port number: unset it, "
                              f"or pass --port, e.g. --port 7860.") from None
    if port is not None:  # else gradio takes the first free port from 7860 on
        if not 0 < port < 65536:
            raise CifakeError(f"--port {port} is not a port number: give one between 1 and 65535, e.g. --port 7861.")
        _check_free(args.host, port)  # before the model loads: a busy port is the commonest failure
    from modeling.inference.core import load_model
    from space.app import Detector, build_demo, launch

    keep_freed_memory()
    # Loaded here, not by Detector.load, which logs why a Space has no model: here the one-line error says it.
    detector = Detector(str(args.model), *load_model(args.model, device="cpu"))
    print(f"CIFAKE demo running {args.model} (Ctrl+C to stop)", flush=True)
    try:
        launch(build_demo(detector), server_name=args.host, server_port=port)
    except OSError as err:  # taken between the check and the start, or every port gradio tried
        if port is not None:
            _check_free(args.host, port)
        raise CifakeError(f"The demo could not start on {args.host} ({err}). Pass --port with a free one.") from err


def _check_free(host: str, port: int) -> None:
    """CifakeError naming the reason unless this machine can listen on `host`:`port` now."""
    import errno
    import socket

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as err:
        raise CifakeError(f"--host {host!r} is not an address of this machine ({err.strerror}). Use 127.0.0.1, or "
                          f"0.0.0.0 to listen on every address.") from None
    try:
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            probe.bind(address)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise CifakeError(
                f"Cannot serve on {host}:{port}: another program (perhaps another `cifake demo`) uses that port. Pass "
                f"--port with a free one, e.g. --port {port + 1 if port < 65535 else 7861}."
            ) from None
        raise CifakeError(f"Cannot serve on {host}:{port} ({err.strerror or err}). Pass --host with an address of this "
                          f"machine, e.g. 127.0.0.1, and a --port you may use.") from None


def run_push_space(args: argparse.Namespace) -> None:
    from space.hub import push_space

    url = push_space(args.repo_id, model=args.model, dataset_id=args.dataset_id, private=args.private)
    print(f"pushed the Space to {url}")
