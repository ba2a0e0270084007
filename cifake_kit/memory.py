"""Memory free for new allocations: what the kit's memory checks (train, evaluate, build) compare with.
torch is imported inside `free_bytes`, so importing this module stays cheap (psutil only)."""

from __future__ import annotations

import sys

import psutil


def free_bytes(device=None) -> int:
    """Memory free for a new allocation on `device` (default: CUDA if present, else the CPU); on the CPU, the
    system's available memory (psutil's, Linux's MemAvailable), or what the process's cgroup still allows if less."""
    import torch

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return min(psutil.virtual_memory().available, _cgroup_room())


def _cgroup_room() -> int:
    """What the process's cgroup (v2) still allows: its limit less the memory in use, not counting the
    file cache it can drop (as container runtimes count it); unbounded without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as limit:
            text = limit.read().strip()
        if text == "max":
            return sys.maxsize
        with open("/sys/fs/cgroup/memory.current") as current:
            used = int(current.read())
        with open("/sys/fs/cgroup/memory.stat") as stat:
            cache = next((int(line.split()[1]) for line in stat if line.startswith("inactive_file ")), 0)
        return int(text) - used + cache
    except (OSError, ValueError, IndexError):
        return sys.maxsize

