"""`cifake push-space`: the app, and exactly the kit code it needs, to a Hugging Face Space.

The Space holds `app.py`, `README.md` (the card), `requirements.txt`, `examples/`, and the kit modules that
`app.py` imports, directly or not (imports inside functions included), found by reading the import statements:
the dataset builder and the command line never travel. The same from a source checkout or a wheel.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.hub import is_hub_id, push_token

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
SPACE_FILES = ["app.py", "requirements.txt", "examples/*"]  # README.md is written from the card
KIT_PACKAGES = ("cifake_kit", "cifake_cli", "dataset_builder", "modeling", "space")


def space_files() -> dict[str, Path]:
    """What the Space repo holds besides its card: {path in the repo: local file}."""
    files = {str(p.relative_to(HERE)): p for pattern in SPACE_FILES for p in sorted(HERE.glob(pattern)) if p.is_file()}
    return {**files, **kit_modules(APP)}


def kit_modules(entry: Path) -> dict[str, Path]:
    """Every kit module that the script `entry` imports, directly or not, with its parent packages' `__init__.py`:
    {"modeling/inference/explain.py": file, ...}."""
    roots = {name: root for name in KIT_PACKAGES if (root := _package_root(name)) is not None}
    found: dict[str, Path] = {}
    todo = [(entry, "")]  # (file, the package its relative imports start from)
    while todo:
        file, package = todo.pop()
        for name in _imported_names(file, package):
            parts = name.split(".")
            if parts[0] not in roots:
                continue
            for depth in range(1, len(parts) + 1):
                path = _module_file(roots[parts[0]], parts[:depth])
                if path is None:  # `from package import name`: a name defined in the package, not a module
                    break
                repo_path = str(Path(parts[0]) / path.relative_to(roots[parts[0]]))
                if repo_path not in found:
                    found[repo_path] = path
                    is_package = path.name == "__init__.py"
                    todo.append((path, ".".join(parts[:depth] if is_package else parts[: depth - 1])))
    return dict(sorted(found.items()))


def push_space(repo_id: str, model: str | None = None, dataset_id: str | None = None, private: bool = False,
               token: str | None = None) -> str:
    """Upload the Gradio app and the kit code it needs to the Hub Space `repo_id`; return its URL. `model` (a Hub
    model id) becomes the Space's CIFAKE_MODEL variable and its card's `models:`."""
    from huggingface_hub import CommitOperationAdd, HfApi, SpaceCard
    from huggingface_hub.errors import HfHubHTTPError

    if model and not is_hub_id(model):
        raise CifakeError(
            f"--model {model!r} is not a Hub model id. Push the model first (`cifake push-model your-name/cifake-cnn "
            f"--model {model}`) and pass that id."
        )
    token = push_token(repo_id, token, example="your-name/cifake-demo")
    card = SpaceCard.load(HERE / "README.md")
    if model:
        card.data.models = [model]
    if dataset_id:
        card.data.datasets = [dataset_id]
    operations = [CommitOperationAdd(name, str(path)) for name, path in space_files().items()]
    operations.append(CommitOperationAdd("README.md", str(card).encode("utf-8")))
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.create_commit(repo_id, operations, repo_type="space", commit_message="Upload the CIFAKE Space with the CIFAKE kit")
        if model:
            api.add_space_variable(repo_id, "CIFAKE_MODEL", model, description="Hub id of the CIFAKE model the app runs")
    except HfHubHTTPError as err:
        raise CifakeError(f"The Hub refused the push to {repo_id!r}: {err}. Check the name and your token's write access.") from err
    return str(url)


def _package_root(name: str) -> Path | None:
    """The folder of the top-level package `name`, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _module_file(root: Path, parts: list[str]) -> Path | None:
    base = root.joinpath(*parts[1:])
    return next((file for file in (base / "__init__.py", base.with_suffix(".py")) if file.is_file()), None)


def _imported_names(file: Path, package: str) -> list[str]:
    """Absolute names of what `file` imports: modules, and `module.name` for each `from module import name`."""
    names = []
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names
