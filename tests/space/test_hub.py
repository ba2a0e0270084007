import json
import os
import subprocess
import sys

import pytest
import yaml

from cifake_kit.errors import CifakeError
from space.hub import kit_modules, push_space, space_files


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def test_push_space_uploads_the_app_and_only_the_code_it_imports(hub_calls):
    calls = hub_calls
    url = push_space("me/cifake-demo", model="me/cifake-cnn", dataset_id="me/cifake")
    assert url == "https://hub.example/me/cifake-demo"
    assert calls[0][2]["repo_type"] == "space" and calls[0][2]["space_sdk"] == "gradio"
    operations = calls[1][2]
    paths = {op.path_in_repo for op in operations}
    assert {"app.py", "requirements.txt", "README.md", "examples/SOURCES.md", "examples/real-cifar10-cat-0000.jpg",
            "modeling/__init__.py", "modeling/inference/gradcam.py", "modeling/inference/core.py", "modeling/modeling_cifake.py",
            "cifake_kit/__init__.py", "cifake_kit/errors.py", "cifake_kit/schema.py"} <= paths
    assert not any(p.startswith(("dataset_builder/", "cifake_cli/", "space/")) for p in paths)  # never the builder or CLI
    # Nor the training, evaluation and report code: only what the app runs.
    assert {p for p in paths if p.startswith("modeling/")} == {
        "modeling/__init__.py", "modeling/configuration_cifake.py", "modeling/modeling_cifake.py",
        "modeling/image_processing_cifake.py", "modeling/inference/__init__.py", "modeling/inference/gradcam.py",
        "modeling/inference/core.py", "modeling/memory.py"}
    assert not any(p.endswith((".tar.gz", ".safetensors")) or "__pycache__" in p for p in paths)
    card = front_matter(next(op for op in operations if op.path_in_repo == "README.md").path_or_fileobj.decode())
    assert card["app_file"] == "app.py" and card["sdk"] == "gradio" and card["models"] == ["me/cifake-cnn"]
    assert card["datasets"] == ["me/cifake"]
    text = next(op for op in operations if op.path_in_repo == "README.md").path_or_fileobj.decode()
    assert "https://arxiv.org/abs/2303.14126" in text  # the Hub links the paper's page from it
    assert calls[2] == ("variable", "me/cifake-demo", "CIFAKE_MODEL", "me/cifake-cnn")


def test_the_closure_follows_imports_inside_functions_and_relative_ones(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("def later():\n    from modeling.recipes import RECIPES\n")
    found = kit_modules(script)
    assert set(found) == {"modeling/__init__.py", "modeling/recipes.py", "modeling/configuration_cifake.py",
                          "modeling/image_processing_cifake.py", "modeling/modeling_cifake.py"}  # via modeling/__init__


_SPACE_RUN = """
import json, runpy, sys
class Block:  # what a Space does not have: the builder, the command, and libraries not in requirements.txt
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("dataset_builder", "cifake_cli", "space", "diffusers", "datasets", "evaluate"):
            raise ImportError("not on the Space: " + name)
sys.meta_path.insert(0, Block())
sys.path = [p for p in sys.path if p != sys.argv[1]]  # nor the kit's repository
import cifake_kit, modeling
print(json.dumps([cifake_kit.__file__, modeling.__file__]), flush=True)
runpy.run_path("app.py", run_name="__main__")  # what the Space runs: `python app.py`
"""


@pytest.mark.slow
def test_what_push_space_uploads_runs_as_a_space_on_its_own(tmp_path, trained_model):
    """The upload laid out as the Space repo, started as a Space starts it, with the model in CIFAKE_MODEL."""
    import socket
    import time
    import urllib.request

    from gradio_client import Client, handle_file

    root = tmp_path / "space-repo"
    for name, path in space_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(path.read_bytes())
    repo = str(next(iter(kit_modules(root / "app.py").values())).parents[1])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": "", "CIFAKE_MODEL": str(trained_model), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, "-c", _SPACE_RUN, repo], cwd=root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        imported = json.loads(server.stdout.readline())
        assert all(path.startswith(str(root)) for path in imported), imported  # the uploaded copies run
        deadline, page = time.monotonic() + 180, ""
        while time.monotonic() < deadline and server.poll() is None and str(trained_model) not in page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).read().decode()
            except OSError:
                time.sleep(1)
        assert str(trained_model) in page, server.stdout.read() if server.poll() is not None else "no page"
        result = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            handle_file(str(root / "examples" / "real-cifar10-cat-0000.jpg")), api_name="/predict")
        assert {c["label"] for c in result[0]["confidences"]} == {"FAKE", "REAL"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_push_space_wants_a_hub_model_id(tmp_path):
    with pytest.raises(CifakeError, match="is not a Hub model id. Push the model first"):
        push_space("me/cifake-demo", model=str(tmp_path))


def test_requirements_cover_what_the_uploaded_code_imports():
    import ast
    import re

    from space.hub import APP, HERE, KIT_PACKAGES

    imported = set()
    for path in [APP, *kit_modules(APP).values()]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - set(KIT_PACKAGES) - {"gradio"}  # gradio: the Space's SDK
    distributions = {"PIL": "pillow", "pytorch_grad_cam": "grad-cam"}
    lines = [line.strip() for line in (HERE / "requirements.txt").read_text().splitlines()]
    required = {re.split(r"[<>=!~ ]", line)[0].replace("_", "-").lower() for line in lines if line and not line.startswith("#")}
    missing = {name for name in third_party if distributions.get(name, name).replace("_", "-").lower() not in required}
    assert not missing, f"imported on the Space but not in space/requirements.txt: {sorted(missing)}"
    assert not {"datasets", "diffusers", "evaluate"} & required  # the builder's and the metrics' libraries stay home
