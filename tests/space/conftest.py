"""The Space's app, built once around a model the tests trained, and served on 127.0.0.1."""

import json
import socket
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "space" / "examples"


@pytest.fixture(scope="session")
def detector(trained_model):
    from space.app import Detector

    loaded = Detector.load(trained_model)
    assert loaded.error is None, loaded.error
    return loaded


@pytest.fixture(scope="session")
def served_app(detector):
    """The app launched on a free loopback port; yields its URL."""
    demo, url = serve(detector)
    yield url
    demo.close()


@pytest.fixture(scope="session")
def contrary(detector):
    """(a copy of the model whose threshold lies between an example's P(FAKE) and 0.5, that example, the verdict
    it then gets): the less likely class, which is where a headline of the likelier class contradicts it."""
    import copy

    from space.app import Detector, explain_images, open_image

    example = EXAMPLES / "real-cifar10-cat-0000.jpg"
    p_fake = explain_images(detector.model, detector.processor, [open_image(example)[0]])[0].probabilities["FAKE"]
    model = copy.deepcopy(detector.model)
    model.config.fake_threshold = p_fake / 2 if p_fake < 0.5 else (1 + p_fake) / 2
    assert model.config is not detector.model.config
    return Detector(detector.model_id, model, detector.processor), example, "FAKE" if p_fake < 0.5 else "REAL"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(detector):
    """(the app, its URL), launched as `cifake demo` launches it, on a free loopback port."""
    from space.app import build_demo, launch

    demo = build_demo(detector)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def call_api(url: str, api_name: str, data: list, timeout: float = 60):
    """(event, data) that ends one call of Gradio's HTTP API, made as curl makes it: POST
    /gradio_api/call/<api_name>, then GET its event stream."""
    import httpx

    started = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": data}, timeout=timeout)
    assert started.status_code == 200, started.text
    stream = httpx.get(f"{url}gradio_api/call/{api_name}/{started.json()['event_id']}", timeout=timeout)
    events = [block.split("\n") for block in stream.text.strip().split("\n\n")]
    events = [(lines[0].removeprefix("event: "), json.loads(lines[1].removeprefix("data: "))) for lines in events]
    return [event for event in events if event[0] in ("complete", "error")][-1]


def upload(url: str, path: Path) -> str:
    """The server's path of `path` uploaded over HTTP, as the page uploads a file."""
    import httpx

    with open(path, "rb") as handle:
        answer = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, handle)}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()[0]
