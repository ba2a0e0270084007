"""matplotlib for files only: the one place the kit picks its backend."""

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path) -> str:
    """Write `fig` (laid out tightly) to `path` and free it; returns the file's name."""
    fig.tight_layout()
    fig.savefig(path)
    pyplot().close(fig)
    return Path(path).name
