"""The kit's shape: packages import downward only, and a wheel install works outside the repo."""

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Which kit packages each package may import (imports inside functions included). The leaf imports
# none; the three areas import only the leaf, except that the Space runs models; the CLI is on top.
ALLOWED = {
    "cifake_kit": set(),
    "dataset_builder": {"cifake_kit"},
    "modeling": {"cifake_kit"},
    "space": {"cifake_kit", "modeling"},
    "cifake_cli": {"cifake_kit", "dataset_builder", "modeling", "space"},
}
# The files that travel to the Hub with the weights: a fresh Python with transformers has nothing else.
HUB_FILES = ["modeling/configuration_cifake.py", "modeling/modeling_cifake.py", "modeling/image_processing_cifake.py"]
HUB_FILE_IMPORTS = {"torch", "transformers", "timm", "huggingface_hub", "numpy", "PIL", "__future__", "dataclasses",
                    "typing"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, wherever it sits (module level or in a function)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", list(ALLOWED))
def test_packages_import_downward_only(package):
    for path in sorted((REPO / package).rglob("*.py")):
        used = imported_packages(path) & set(ALLOWED)
        assert used <= ALLOWED[package] | {package}, f"{path.relative_to(REPO)} imports {sorted(used - ALLOWED[package])}"


def kit_module_imports() -> dict[str, set[str]]:
    """Every kit module -> the kit modules it imports, relative or absolute, at module level or in a function."""
    files = {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
             for package in ALLOWED for path in (REPO / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + [node.module or ""]).strip(".") if node.level \
                    else node.module
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            graph[name] |= {target for target in targets if target in files and target != name}
    return graph


# modeling's layers, lowest first: each imports only the top level and the layers below it.
MODELING_LAYERS = ["inference", "scoring", "publishing", "training"]


def test_modelings_layers_import_downward_only():
    graph = kit_module_imports()
    for name, targets in graph.items():
        parts = name.split(".")
        if parts[0] != "modeling" or len(parts) < 3 or parts[1] not in MODELING_LAYERS:
            continue
        below = set(MODELING_LAYERS[: MODELING_LAYERS.index(parts[1]) + 1])
        above = {t for t in targets if t.startswith("modeling.") and t.split(".")[1] in set(MODELING_LAYERS) - below}
        assert not above, f"{name} imports {sorted(above)}, a layer above its own"
    assert graph["modeling.training.train"] & {"modeling.publishing.card"}  # the walk sees these imports at all


def test_no_import_loop_anywhere_in_the_kit():
    """A module that two others need lives below both: no pair (or ring) of modules imports each other,
    not even through imports inside functions, which only hide a loop."""
    graph = kit_module_imports()
    assert graph["modeling.scoring.report"] and graph["cifake_cli"] is not None  # the walk sees imports at all
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import loop: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for target in sorted(graph[name]):
            visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_nothing_outside_the_kit_imports_a_kit_package_it_should_not():
    for folder, allowed in (("bench", set(ALLOWED) - {"cifake_cli"}), ("tools", {"cifake_kit", "dataset_builder"})):
        for path in sorted((REPO / folder).glob("*.py")):
            assert imported_packages(path) & set(ALLOWED) <= allowed, path


@pytest.mark.parametrize("path", HUB_FILES)
def test_the_files_that_travel_to_the_hub_import_only_torch_transformers_and_timm(path):
    assert imported_packages(REPO / path) <= HUB_FILE_IMPORTS, imported_packages(REPO / path) - HUB_FILE_IMPORTS


_IMPORT_ALL_BLOCKED = """
import importlib, json, pkgutil, sys
allowed = json.loads(sys.argv[1])
blocked = set()
class Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{package} must not import {name}")
sys.meta_path.insert(0, Block())
counts = {}
for package, may_use in allowed.items():
    # Forget every kit module imported so far, so each package is imported afresh under its own rule
    # (torch, transformers and the rest stay loaded: that is what makes one process enough).
    for name in [m for m in sys.modules if m.split(".")[0] in allowed]:
        del sys.modules[name]
    blocked = set(allowed) - set(may_use) - {package}
    root = importlib.import_module(package)
    names = [m.name for m in pkgutil.walk_packages(root.__path__, package + ".") if not m.name.endswith("__main__")]
    for name in names:
        importlib.import_module(name)
    counts[package] = 1 + len(names)
print(json.dumps(counts))
"""


@pytest.mark.slow
def test_every_module_imports_with_the_packages_it_must_not_use_blocked():
    rules = {package: sorted(ALLOWED[package]) for package in ("cifake_kit", "dataset_builder", "modeling", "space")}
    result = subprocess.run([sys.executable, "-c", _IMPORT_ALL_BLOCKED, json.dumps(rules)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(counts) == set(rules) and all(count >= 3 for count in counts.values()), counts


def test_the_leaf_imports_nothing_heavy():
    code = ("import sys, importlib, pkgutil, cifake_kit\n"
            "for m in pkgutil.walk_packages(cifake_kit.__path__, 'cifake_kit.'):\n"
            "    importlib.import_module(m.name)\n"
            "print([m for m in ('torch', 'transformers', 'datasets', 'huggingface_hub', 'gradio', 'numpy') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


_FROM_THE_WHEEL = """
import json, sys
from pathlib import Path
import cifake_kit, cifake_cli, dataset_builder, modeling, space
from space.app import EXAMPLES, HERE, build_demo
from space.hub import space_files
from dataset_builder.demo import demo_sources
demo = build_demo(sys.argv[1])
print(json.dumps({
    "files": [m.__file__ for m in (cifake_kit, cifake_cli, dataset_builder, modeling, space)],
    "examples": all((HERE / path).is_file() for path, _ in EXAMPLES),
    "space_files": sorted(space_files()),
    "sample": Path(dataset_builder.__file__).with_name("data").joinpath("cifar10-sample.tar.gz").is_file(),
    "card_templates": [Path(modeling.__file__).with_name("publishing").joinpath("model_card.md").is_file(),
                       Path(dataset_builder.__file__).with_name("data").joinpath("dataset_card.md").is_file()],
    "title": demo.title,
    "demo_images": sum(1 for folder in demo_sources()[0] + [Path(s.split("=", 1)[1]) for s in demo_sources()[1]]
                       for path in folder.glob("**/*") if path.suffix in (".jpg", ".png")),
}))
"""


@pytest.mark.slow
def test_a_wheel_install_works_outside_the_repository(tmp_path, trained_model):
    # Build the wheel from a clean copy of the sources (an in-tree build/ could carry stale files).
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=False, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "test-artifacts", "tests"))
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "--wheel-dir", str(wheels), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("cifake_kit-*.whl")

    # A fresh venv that sees the already installed dependencies, but not this editable install.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "kit_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cifake = venv / "bin" / "cifake"
    helped = subprocess.run([cifake, "--help"], cwd=outside, capture_output=True, text=True, env=env, timeout=120)
    assert helped.returncode == 0 and "push-space" in helped.stdout, helped.stderr[-2000:]
    version = subprocess.run([cifake, "--version"], cwd=outside, capture_output=True, text=True, env=env, timeout=120)
    assert version.stdout.strip() == f"cifake {wheel.name.split('-')[1]}"

    result = subprocess.run([python, "-c", _FROM_THE_WHEEL, str(trained_model)], cwd=outside, capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(file.startswith(str(site)) for file in out["files"]), out["files"]  # the wheel's copies, not the repo's
    assert out["examples"] and out["sample"] and out["card_templates"] == [True, True]
    assert {"app.py", "requirements.txt", "examples/SOURCES.md", "modeling/inference/core.py"} <= set(out["space_files"])
    assert out["title"] == "CIFAKE: real or AI-generated?"
    assert out["demo_images"] == 1653  # the genuine demo ships in the wheel
