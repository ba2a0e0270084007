"""The Space's app, loaded once with a model the tests trained, and served on 127.0.0.1."""

import socket

import pytest


@pytest.fixture(scope="session")
def space_app(trained_model):
    from modeling.demo import load_app

    return load_app(trained_model)


@pytest.fixture(scope="session")
def served_app(space_app):
    """The app launched on a free loopback port; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    space_app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    space_app.demo.close()
