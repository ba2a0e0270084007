"""The header every bench script prints: machine, versions, date."""

import datetime
import os
import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ["torch", "torchvision", "datasets", "transformers", "diffusers", "accelerate", "pillow", "pyarrow", "huggingface_hub"]


def header(title: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"# {title}",
        f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC | {cpu} | {os.cpu_count()} cores | Python {platform.python_version()}",
    ]
    try:
        import torch

        if torch.cuda.is_available():
            lines.append(f"# GPU: {torch.cuda.get_device_name()} | CUDA {torch.version.cuda}")
    except ImportError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    lines.append("# " + " | ".join(versions))
    return "\n".join(lines)
