"""The Space's app, built once around a model the tests trained, and served on 127.0.0.1."""

import socket

import pytest


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


def serve(detector):
    """(the app, its URL), launched as `cifake demo` launches it, on a free loopback port."""
    from space.app import build_demo, launch

    demo = build_demo(detector)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"
