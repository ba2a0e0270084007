"""The CIFAKE kit's leaf package: what every area of the kit shares. It imports no other package of the kit
(tested), and nothing heavy at module level (no torch, transformers or datasets):

    errors.py    CifakeError, the one exception type for bad input or state
    schema.py    label names, CIFAR-10 classes, image size, splits: one source of truth
    options.py   the ranges every number a user gives is checked against
    outputs.py   output-folder guards and the "resume needs the same settings" check
    runtime.py   multi-process state, allocator tuning, a quiet console
    hub.py       Hub token, Hub id or local path, one wording for loading failures
    codec.py     CIFAKE's JPEG encoder     memory.py   memory free for new allocations
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cifake-kit")
except PackageNotFoundError:  # the files were copied, not installed (a Space, a source tree)
    __version__ = "0+unknown"
