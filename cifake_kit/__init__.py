"""The CIFAKE kit's leaf package: what every area of the kit shares, and nothing else.

It imports no other package of the kit (tested), so `dataset_builder`, `modeling`, `space` and
the `cifake` command (`cifake_cli`) can all depend on it without depending on each other:

    errors.py    CifakeError, the one exception type for bad input or state
    schema.py    label names, CIFAR-10 classes, image size, splits: one source of truth
    options.py   the ranges every number a user gives is checked against
    outputs.py   output-folder guards and the "resume needs the same settings" check
    runtime.py   multi-process state, allocator tuning, a quiet console
    hub.py       Hub token, Hub id or local path, one wording for loading failures

Importing it is cheap: no torch, no transformers, no datasets at module level.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cifake-kit")
except PackageNotFoundError:  # the files were copied, not installed (a Space, a source tree)
    __version__ = "0+unknown"
