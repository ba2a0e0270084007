"""What several areas of the kit need at run time: process state, allocator tuning, the console.
torch and accelerate are imported inside the functions that need them."""

from __future__ import annotations

import ctypes
import os

VERBOSE_ENV = "CIFAKE_VERBOSE"
# Set for a quiet console unless the user set them: the libraries' own progress bars (downloads,
# "Loading weights", "Writing model shards", "Generating train split", Parquet writing) and
# transformers' info messages. The kit then shows one bar per long job and its own lines.
_QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub, and transformers' bars, which follow it
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}
_VERBOSE_ENV = {"TRANSFORMERS_VERBOSITY": "info"}  # Trainer's "***** Running training *****" and friends


def configure_console(verbose: bool = False) -> None:
    """Quiet the libraries' own progress bars and chatter, or (``verbose``) let them all through, before they
    are imported (they read these once); variables the user set are kept, and child processes inherit them."""
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    for name, value in (_VERBOSE_ENV if verbose else _QUIET_ENV).items():
        os.environ.setdefault(name, value)


def verbose() -> bool:
    """Whether the libraries' own logging and bars were asked for (`--verbose`, or CIFAKE_VERBOSE=1)."""
    return os.environ.get(VERBOSE_ENV, "0") == "1"


def process_state():
    """This process's place in a multi-process run (`accelerate launch`, `torchrun`), or a lone one. Without CUDA
    it asks for the CPU explicitly, which accelerate needs to join CPU processes into a group."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of unmapping and faulting in each training step's
    activation buffers again: the paper's CNN trains 1.3x (plain loop) to 1.6x (Trainer) faster on the 2-core
    reference machine (bench/bench_train.py). Only the `cifake` process calls it; a no-op without glibc;
    CIFAKE_MALLOC_TUNING=0 turns it off."""
    if os.environ.get("CIFAKE_MALLOC_TUNING", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    trim_threshold, top_pad, mmap_threshold = -1, -2, -3  # glibc's M_* parameter numbers
    return all(mallopt(option, value) == 1 for option, value in (
        (mmap_threshold, 32 << 20),  # glibc's maximum: blocks up to 32 MiB come from the heap
        (top_pad, 256 << 20),  # grow the heap in large steps
        (trim_threshold, 1 << 30),  # return memory only when 1 GiB is free at the top
    ))
