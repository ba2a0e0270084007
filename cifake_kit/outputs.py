"""Output folders, datasets and models alike: what the kit owns in them, one lock, one switch.

Every command checks its folder first (`check_output_dir`); `build`, `import-*` and `train` hold it
(`FolderLock`) and refuse a rerun with other settings (`require_same_settings`); `evaluate` and
`export-onnx` write theirs whole, then move it in (`staged_files`). What the kit owns is a `KitTree`
of name patterns; anything else is the user's, at any depth, and is never lost. A finished folder
replaces an older one whole (`switch`): made beside it, then exchanged in one step (or two renames
that `finish_cut_switch`, which every command runs first, completes after a kill).
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from itertools import takewhile
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import CifakeError

KIT_TAG = "cifake-kit"  # in the tags of every card the kit writes: marks a dataset or model folder as the kit's
NEW, OLD = ".cifake-new", ".cifake-old"  # beside OUT: its complete successor; the old one between two renames
LOCK = ".cifake-lock"  # beside OUT while a command writes it (FolderLock)
SWITCH_FILE = ".cifake-switch"  # in a complete successor from the moment it is to replace OUT: any rerun completes it


def is_kit_card(path: str | Path) -> bool:
    """Whether `path` is a card (README.md) the kit wrote: its front matter's tags carry KIT_TAG."""
    from huggingface_hub.repocard import metadata_load

    try:
        return KIT_TAG in ((metadata_load(path) or {}).get("tags") or [])
    except Exception:  # unreadable, unparsable, or no card at all
        return False


def beside(out: str | Path, suffix: str = NEW) -> Path:
    """`.OUT<suffix>` in OUT's parent (links resolved): where a successor of OUT is made."""
    real = Path(out).expanduser().resolve()
    return real.parent / f".{real.name}{suffix}"


def switch(out: str | Path, new: str | Path, tree: KitTree, say: Callable[[str], None] | None = None,
           prepare: Callable[[], None] | None = None) -> None:
    """Put the complete folder `new` (`beside(out)`) in the place of `out`; the user's files in `out`, at
    any depth, move over into it (free `NAME.user` names where the kit's files took their places), and
    the old folder goes. From its first step on, a cut switch is completed by `finish_cut_switch`.
    `prepare` runs once `new` is marked, before the exchange (a caller's recovery runs it again)."""
    real, new = Path(out).expanduser().resolve(), Path(new)
    write_json(new / SWITCH_FILE, {"replaces": str(real)})
    if prepare:
        prepare()
    try:
        if exchange(new, real):
            _drop_old(new, real, tree, say)
            return
        old = beside(out, OLD)  # no exchange here: two renames, which finish_cut_switch completes if cut
        os.rename(real, old)
        os.rename(new, real)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EBUSY):
            raise
        raise CifakeError(
            f"The new folder is complete in {str(new)!r} but cannot take the place of {str(real)!r} ({err.strerror}: "
            f"a mount point, or another filesystem). Move its files into {str(real)!r} yourself, then delete "
            f"{str(new)!r}."
        ) from err
    _drop_old(old, real, tree, say)


def finish_cut_switch(out: str | Path, tree: KitTree, say: Callable[[str], None] | None = None) -> bool:
    """Complete a `switch` of `out` that a kill cut; True if there was one."""
    real, new, old = Path(out).expanduser().resolve(), beside(out), beside(out, OLD)
    if (new / SWITCH_FILE).is_file():  # complete and marked, not in place yet
        if old.is_dir() and (not real.exists() or (real.is_dir() and not any(real.iterdir()))):
            os.rename(new, real)  # cut between the two renames (a lock may have made `out` again, empty)
            _drop_old(old, real, tree, say)
        else:
            switch(out, new, tree, say)
        return True
    if (real / SWITCH_FILE).is_file():  # in place; the old folder may still lie beside it
        for leftover in (new, old):
            if leftover.is_dir():
                _drop_old(leftover, real, tree, say)
        (real / SWITCH_FILE).unlink(missing_ok=True)
        return True
    return False


def _drop_old(old: Path, real: Path, tree: KitTree, say) -> None:
    for was, now in keep_foreign(old, real, tree):
        if say:
            say(f"kept your {was} as {now} beside the new folder's own")
    shutil.rmtree(old)
    (real / SWITCH_FILE).unlink(missing_ok=True)


def check_output_dir(path: str | Path, ours: Callable[[Path], bool], kit_names: Iterable[str] = (),
                     flag: str = "--output-dir", tree: KitTree | None = None) -> bool:
    """Refuse `path` unless it is missing or empty (False) or `ours(path)` says it holds earlier output of the
    same command (True). The refusal names the entries not in `kit_names`, or the user's ones by `tree`."""
    path = Path(path).expanduser()
    try:
        str(path.absolute()).encode("utf-8")
    except UnicodeEncodeError:
        raise CifakeError(
            f"{flag} {str(path)!r} is named in bytes that are not UTF-8, which pyarrow and datasets cannot open; "
            f"nothing was written. Choose a folder whose whole path is UTF-8."
        ) from None
    if path.exists() and not path.is_dir():
        raise CifakeError(f"{flag} {str(path)!r} is a file, not a folder. Choose another {flag}.")
    entries = sorted(os.listdir(path)) if path.is_dir() else []
    if not entries:
        return False
    if ours(path):
        return True
    others = (tree is not None and foreign_files(path, tree)) or [name for name in entries if name not in set(kit_names)] \
        or entries
    raise CifakeError(
        f"{flag} {str(path)!r} already holds other files ({', '.join(others[:5])}); nothing was written. "
        f"Move them out of it (the kit never deletes files it did not write), or choose a new or empty folder."
    )


class FolderLock:
    """The output folders one command writes, held while it runs: a second build, import or train on the
    same folder is refused at once. Each is held by filelock on `.OUT.cifake-lock` beside it, so the lock
    covers OUT and its successor across a switch; the system drops it when the process ends, and the
    file goes on `release()` (one left by a kill is reused and removed by the next command)."""

    def __init__(self):
        self._held: dict[Path, FileLock] = {}
        self._made: list[Path] = []  # missing folders above a lock file, which filelock makes

    def hold(self, folder: str | Path) -> None:
        path = beside(folder, LOCK)
        if path in self._held:
            return
        missing = list(takewhile(lambda parent: not parent.exists(), path.parents))
        if not path.parents[len(missing)].is_dir():
            raise CifakeError(f"--output-dir {str(folder)!r} lies in {str(path.parents[len(missing)])!r}, which is a file, "
                              f"not a folder. Choose another --output-dir.")
        lock, self._made = FileLock(path, timeout=0), self._made + missing
        try:
            lock.acquire()
        except Timeout:
            self.release()
            if not path.exists():  # not held: filelock retried a file it cannot make (a folder like /proc)
                raise CifakeError(f"--output-dir {str(folder)!r}: its lock file {str(path)!r} cannot be made there. "
                                  f"Choose another --output-dir.") from None
            raise CifakeError(
                f"{str(folder)!r} is being written by another cifake command running now (a build, an import or a "
                f"train). Wait for it to end (or stop it), or choose another --output-dir."
            ) from None
        self._held[path] = lock

    def release(self) -> None:
        """Let go of every folder, removing the lock files while still held (a waiting peer then takes none),
        and the folders made for them that stay empty."""
        for path, lock in self._held.items():
            path.unlink(missing_ok=True)
            lock.release()
        self._held.clear()
        for folder in self._made:  # deepest first
            with suppress(OSError):
                folder.rmdir()  # only while empty
        self._made.clear()


# What a folder of the kit holds, as a tree of name patterns: a pattern's value is True where the
# entry is the kit's whole, a callable(path) -> bool where it is the kit's only if the test says so
# (a README that carries the kit's tag), or another tree for a folder whose entries are judged in turn.
# Anything a tree does not claim is the user's, at every depth.
KitTree = dict


def foreign_files(folder: str | Path, tree: KitTree) -> list[str]:
    """The entries below `folder` that `tree` does not claim for the kit ('/'-joined, relative, sorted);
    a foreign folder is named once, not entry by entry."""
    found = []
    todo = [(Path(folder), tree, "")]
    while todo:  # a loop, not recursion: a tree thousands of folders deep is walked all the same
        here, rules, prefix = todo.pop()
        for name in sorted(os.listdir(here)):
            path = here / name
            rule = next((rule for pattern, rule in rules.items() if fnmatch.fnmatchcase(name, pattern)), None)
            if rule is True or (callable(rule) and rule(path)):
                continue
            if isinstance(rule, dict) and path.is_dir() and not path.is_symlink():
                todo.append((path, rule, f"{prefix}{name}/"))
                continue
            found.append(prefix + name)
    return sorted(found)


def keep_foreign(old: str | Path, new: str | Path, tree: KitTree) -> list[tuple[str, str]]:
    """Move what is the user's in `old` (per `tree`) to the same place in `new`, under a free `NAME.user[-N]` name
    where the kit's file took its place; returns (from, to) of each one renamed."""
    old, new = Path(old), Path(new)
    renamed = []
    foreign = foreign_files(old, tree)
    # Entries with a free place first: a user's README.user.md must move before a README.md takes its name.
    for relative in sorted(foreign, key=lambda rel: (os.path.lexists(new / rel), rel)):
        target = new / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):
            stem, suffix = target.stem, target.suffix
            names = (target.with_name(f"{stem}.user{'' if n == 1 else f'-{n}'}{suffix}") for n in range(1, 100_000))
            target = next(name for name in names if not os.path.lexists(name))
            renamed.append((relative, str(target.relative_to(new))))
        os.rename(old / relative, target)
    return renamed


def remove_kit_files(folder: str | Path, tree: KitTree) -> None:
    """Remove what `tree` claims for the kit in `folder`, keeping the user's entries and the folders on
    their way, so that a user's file deep inside a kit folder survives."""
    folder = Path(folder)
    kept = {folder / relative for relative in foreign_files(folder, tree)}
    on_the_way = {parent for path in kept for parent in path.parents}
    todo = [folder]
    while todo:
        for path in list(todo.pop().iterdir()):
            if path in kept:
                continue
            if path in on_the_way:
                todo.append(path)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def require_same_settings(record: str | Path, settings: dict, what: str, may_change: Iterable[str] = (),
                          where: str | Path | None = None) -> None:
    """Write `settings` to the JSON file `record`, unless an earlier run recorded other ones: a resumed job goes
    on as it began. Keys in `may_change` (dotted, e.g. "training.epochs") may differ; `where` names the folder."""
    changed = settings_changes(record, settings, may_change)
    if changed:
        raise CifakeError(
            f"{str(where or Path(record).parent)!r} holds {what} with other settings ({', '.join(changed)}); it cannot "
            f"be resumed with these. Use the same settings to resume it, or pass --overwrite to start again."
        )
    write_json(record, settings)


def settings_changes(record: str | Path, settings: dict, may_change: Iterable[str] = ()) -> list[str]:
    """The (dotted) keys whose values differ between `settings` and those recorded in `record`, if any."""
    record = Path(record)
    if not record.is_file():
        return []
    previous = _flatten(json.loads(record.read_text()))
    current = _flatten(json.loads(json.dumps(settings)))  # as stored: tuples become lists
    allowed = set(may_change)
    return sorted(k for k in previous.keys() | current.keys() if k not in allowed and previous.get(k) != current.get(k))


def write_json(path: str | Path, data) -> None:
    """Write `data` as JSON, atomically: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(staging, path)


@contextmanager
def staged_files(out: Path, prefix: str, names: Iterable[str], last: str) -> Iterator[Path]:
    """A folder `out/prefix.<pid>` to write a command's files in, which then replace the files `names` in `out`,
    each move atomic, `last` (the mark of a complete set) last; those of `names` the new set lacks go. Cut runs'
    folders are removed first; a failure leaves `out` as it was."""
    out.mkdir(parents=True, exist_ok=True)
    for cut in out.glob(f"{prefix}.*"):
        pid = cut.suffix[1:]
        if pid.isdigit() and (int(pid) == os.getpid() or not _running(int(pid))):  # a container's PID repeats
            shutil.rmtree(cut, ignore_errors=True)
    staging = out / f"{prefix}.{os.getpid()}"
    staging.mkdir()
    try:
        yield staging
        new = set(os.listdir(staging))
        for name in set(names) - new:
            (out / name).unlink(missing_ok=True)
        for name in sorted(new - {last}) + [last]:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


def exchange(first: str | Path, second: str | Path) -> bool:
    """Swap two existing paths in one step (Linux's renameat2(RENAME_EXCHANGE)); False where the system or the
    filesystem has no such call (the caller then renames twice), OSError for any other failure."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _flatten(settings: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
