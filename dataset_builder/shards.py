"""Long jobs in resumable pieces: each finished piece is written, then recorded.

A piece (a shard of generated images, a chunk of imported files) is written as Arrow IPC files (datasets' cache
format, read back by memory map), each moved into place whole, then recorded in a manifest line naming them with
their SHA-256. A run killed at any moment restarts after its last recorded piece; a file torn or altered since is
found by its hash and its piece redone. Each process of `accelerate launch` keeps its own manifest (`rank`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


class ShardStore:
    """Finished pieces of a job as Arrow files, by piece number, in one folder."""

    def __init__(self, folder: str | Path, rank: int = 0, durable: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rank = rank
        # Durable: fsync each file and manifest line, so even a power cut loses no piece. Without it a cut may
        # tear a recent piece, which its hash exposes and the next run redoes: the trade for cheap pieces.
        self.durable = durable

    def path(self, name: str, piece: int) -> Path:
        return self.folder / f"{name}-{piece:06d}.arrow"

    def completed(self) -> dict[int, dict]:
        """Manifest entries of the pieces whose files are all intact, by piece number."""
        done = {}
        for manifest in sorted(self.folder.glob("manifest-*.jsonl")):
            for line in manifest.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    files = entry["files"]
                except (json.JSONDecodeError, KeyError, TypeError):  # a line torn by a kill mid-write: not recorded
                    continue
                if all((self.folder / name).is_file() and _sha256(self.folder / name) == digest
                       for name, digest in files.items()):
                    done[entry["shard"]] = entry
                else:
                    logger.warning("Piece %s has a missing or damaged file; it will be done again.", entry["shard"])
        return done

    def write_files(self, piece: int, tables: dict) -> dict[str, str]:
        """Write a piece's files, each whole (staged, renamed): {file name: SHA-256}. Until `record`, none counts."""
        import pyarrow as pa

        files = {}
        for name, table in tables.items():
            path = self.path(name, piece)
            buffer = pa.BufferOutputStream()
            with pa.ipc.new_file(buffer, table.schema) as writer:
                writer.write_table(table)
            data = buffer.getvalue()
            staging = path.with_suffix(f".tmp{os.getpid()}")
            with open(staging, "wb") as handle:
                handle.write(data)
                if self.durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(staging, path)
            files[path.name] = hashlib.sha256(data).hexdigest()
        return files

    def record(self, piece: int, files: dict[str, str], **info) -> dict:
        """Record a piece whose files are written: from now on it is done."""
        entry = {"shard": piece, "files": files, **info}
        with open(self.folder / f"manifest-{self.rank}.jsonl", "a") as manifest:
            manifest.write(json.dumps(entry) + "\n")
            manifest.flush()
            if self.durable:
                os.fsync(manifest.fileno())
        return entry

    def read(self, path: Path):
        """A recorded file as a pyarrow Table (memory-mapped, not copied)."""
        import pyarrow as pa

        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()

    def files(self, name: str, completed: dict[int, dict] | None = None) -> list[Path]:
        """The recorded files called `name`, in piece order (`completed`: a `completed()` already read)."""
        completed = self.completed() if completed is None else completed
        return [self.path(name, piece) for piece in sorted(completed)
                if self.path(name, piece).name in completed[piece]["files"]]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
