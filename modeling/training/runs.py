"""A training run's folder (`cifake train --output-dir OUT`): made new, resumed, or replaced whole.

- OUT missing or empty: the run trains in OUT.
- `--resume`: it goes on in OUT from its newest whole checkpoint (one a kill cut while it was saved is
  named and removed, and the one before it used).
- `--overwrite`: the new run trains beside OUT, in `.OUT.cifake-new`, and the two folders are exchanged
  in one rename only when its model and report are complete. The user's files move into the new folder;
  a kill at any moment leaves the old model or the new one, and the next `cifake train` on OUT finishes
  a cut switch first. `--overwrite --resume` continues a replacement that was cut short.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from cifake_kit.errors import CifakeError, first_line
from cifake_kit.outputs import (
    NEW,
    SWITCH_FILE,
    FolderLock,
    beside,
    check_output_dir,
    foreign_files,
    remove_kit_files,
    require_same_settings,
    switch,
    write_json,
)
from cifake_kit.outputs import (
    finish_cut_switch as finish_cut_folder_switch,
)
from modeling.layout import KIT_TREE, REPLACEMENT_FILE, RUN_FILE

_MAKING_SUFFIX = ".cifake-new.making"  # the replacement folder until its state file is in it
_TRASH_SUFFIX = ".cifake-new.removing"  # an abandoned replacement, renamed away before it is deleted


@dataclass(frozen=True)
class RunFolder:
    final: Path  # the folder the user named
    work: Path  # where the Trainer writes: `final`, or the replacement beside it
    made: bool = False  # whether this run made `work` (a missing --output-dir): it goes again with an unstarted run

    @property
    def replacing(self) -> bool:
        return self.work != self.final


def check(output_dir: str | Path, resume: bool, overwrite: bool, lock: FolderLock | None = None) -> str:
    """Refuse what `prepare` would refuse, before long work (decoding the data); returns what the run does.
    Run by the main process only: it takes the folders' lock, and completes a switch that a kill cut short."""
    out, lock = Path(output_dir).expanduser(), lock or FolderLock()
    lock.hold(out)
    finish_cut_switch(out)
    return _decide(out, resume, overwrite)


def prepare(output_dir: str | Path, settings: dict, resume: bool, overwrite: bool, may_change=(),
            lock: FolderLock | None = None) -> RunFolder:
    """Check `output_dir` and decide where the run trains; nothing is written before the checks pass.
    The main process only; `lock` (taken by `check`) holds `output_dir`, and so its replacement beside it."""
    out, lock = Path(output_dir).expanduser(), lock or FolderLock()
    action, new = check(out, resume, overwrite, lock), beside(out)
    if action in ("drop the orphan", "replace again"):
        _say(f"removing {str(new)!r}: an unfinished replacement of a run that is no longer in {str(out)!r}"
             if action == "drop the orphan" else
             f"starting the replacement of {str(out)!r} again: its unfinished earlier attempt in {str(new)!r} is "
             f"removed (pass --resume with --overwrite to continue such an attempt instead)")
        _remove_replacement(new)
    if action in ("replace", "replace again"):
        _make_replacement(new, out)
    work = new if action in ("replace", "replace again", "resume the replacement") else out
    made = work == out and not out.exists()
    if work == out:
        out.mkdir(parents=True, exist_ok=True)
    if resume and not any(work.glob("checkpoint-*")):
        raise CifakeError(f"{str(work)!r} has no checkpoint to resume from. Run without --resume and with --overwrite.")
    require_same_settings(work / RUN_FILE, settings, what="a run", may_change=may_change, where=work)
    return RunFolder(out, work, made)


def _decide(out: Path, resume: bool, overwrite: bool) -> str:
    """What a run on `out` does, or a CifakeError saying why it cannot; reads, writes nothing."""
    new = beside(out)
    pending = _state(new) == "training"
    holds_run = check_output_dir(out, ours=lambda folder: (folder / RUN_FILE).is_file())
    if resume and not holds_run:
        raise CifakeError(f"Nothing to resume: {str(out)!r} holds no training run. Run without --resume.")
    if not holds_run:
        return "drop the orphan" if pending else "train in place"  # an orphan: what it was to replace is gone
    if overwrite:
        if resume and not pending:
            raise CifakeError(
                f"--resume with --overwrite continues an unfinished replacement, and {str(out)!r} has none. Pass "
                f"--resume alone to continue its run, or --overwrite alone to replace it."
            )
        _check_replaceable(out)
        if pending:
            return "resume the replacement" if resume else "replace again"
        return "replace"
    if pending:
        raise CifakeError(
            f"--output-dir {str(out)!r} holds a training run and an unfinished replacement of it ({str(new)!r}, from "
            f"`--overwrite`). Pass --overwrite --resume to continue the replacement, --overwrite to start it again, "
            f"or choose another folder."
        )
    if not resume:
        raise CifakeError(
            f"--output-dir {str(out)!r} already holds a training run. Pass --resume to continue it, "
            f"--overwrite to replace it (the old model stays until the new one is complete), or choose another folder."
        )
    return "resume in place"


def _check_replaceable(out: Path) -> None:
    """The new run is made beside `out` and the two folders are exchanged: that needs them on one
    filesystem, and no process (this one included) working inside the folder that goes."""
    real = out.resolve()
    if os.path.ismount(real) or os.stat(real).st_dev != os.stat(real.parent).st_dev:
        raise CifakeError(
            f"--overwrite builds the new run beside {str(out)!r} and swaps the two folders, but {str(out)!r} is a mount "
            f"point (its own filesystem). Pass a folder inside it as --output-dir, or clear it yourself and train "
            f"without --overwrite."
        )
    here = Path.cwd().resolve()
    if here == real or real in here.parents:
        raise CifakeError(
            f"--overwrite replaces the folder {str(out)!r} by a new one, and this command runs inside it. Run it from "
            f"outside (e.g. cd {str(real.parent)!r})."
        )


def pending_replacement(output_dir: str | Path) -> Path | None:
    """The folder of an unfinished `--overwrite` replacement of `output_dir`, if there is one."""
    new = beside(Path(output_dir))  # a complete one, marked to switch, is finished by any rerun instead
    return new if _state(new) == "training" and not (new / SWITCH_FILE).is_file() else None


def run_folder(output_dir: str | Path) -> RunFolder:
    """Where the run that the main process `prepare`d trains (for the other processes of a run)."""
    out = Path(output_dir).expanduser()
    return RunFolder(out, pending_replacement(out) or out)


def resume_checkpoint(work: Path, clean: bool = True) -> Path:
    """The newest checkpoint in `work` that is whole; newer ones that are not are named and (`clean`)
    removed: a kill while a checkpoint was saved, or a damaged file, must not stop a resume."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    checkpoints = sorted((p for p in work.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()),
                         key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    broken = []
    for checkpoint in checkpoints:
        why = checkpoint_problem(checkpoint)
        if why is None:
            if clean:
                for path, reason in broken:
                    shutil.rmtree(path)
                    _say(f"removed {path.name}: {reason} (a run cut while saving it, or a damaged file)")
                _say(f"resuming from {checkpoint.name}")
            return checkpoint
        broken.append((checkpoint, why))
    details = "; ".join(f"{path.name}: {why}" for path, why in broken) or "none"
    raise CifakeError(
        f"No checkpoint in {str(work)!r} can be resumed from ({details}). Run without --resume and with --overwrite "
        f"to start again."
    )


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when it is whole: every file Trainer reads on
    resuming opened as it opens it, the states with torch's weights-only unpickler (never code)."""
    from transformers.trainer_pt_utils import safe_globals

    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        if not isinstance(state, dict) or "global_step" not in state:
            return "trainer_state.json holds no training state"
    except FileNotFoundError:
        return "trainer_state.json is missing"
    except ValueError:
        return "trainer_state.json is cut short or damaged"
    weights = checkpoint / "model.safetensors"
    try:
        with safe_open(str(weights), framework="pt"):
            pass
    except Exception as err:  # missing, cut short or not safetensors
        return f"model.safetensors cannot be read ({first_line(err)})"
    for name in ("optimizer.pt", "scheduler.pt", *sorted(p.name for p in checkpoint.glob("rng_state*.pth"))):
        try:
            with safe_globals(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's remarks on a foreign file's pickle protocol
                loaded = torch.load(checkpoint / name, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return f"{name} is missing"
        except Exception as err:  # cut short, damaged, or holding objects the safe unpickler refuses
            return f"{name} cannot be read ({first_line(err)})"
        if name.startswith("rng_state") and not (isinstance(loaded, dict) and {"python", "numpy", "cpu"} <= set(loaded)):
            return f"{name} holds no random-number state"
    return None


def forget_unstarted(run: RunFolder) -> None:
    """Remove what a new run wrote when it ends before saving its first whole checkpoint: its run file and
    the kit's other entries in a folder it found empty, or the whole replacement beside the old run.
    A user's file put there meanwhile stays."""
    if not run.work.is_dir() or any(checkpoint_problem(c) is None for c in run.work.glob("checkpoint-*")):
        return  # a whole checkpoint: the run can be resumed (a cut one, from a full disk, does not count)
    if run.replacing:
        _remove_replacement(run.work)
        return
    remove_kit_files(run.work, KIT_TREE)
    if run.made:
        with suppress(OSError):
            run.work.rmdir()  # only if nothing else is left


def finish(run: RunFolder) -> None:
    """Put a finished replacement in place of the old run (nothing to do for a run trained in place)."""
    if not run.replacing:
        return
    switch(run.final, run.work, KIT_TREE, say=_say, prepare=lambda: _relocate_states(run))
    (run.final / REPLACEMENT_FILE).unlink(missing_ok=True)


def finish_cut_switch(out: Path) -> None:
    """Complete what a kill during a switch (or while a replacement folder was made or removed) left,
    so that `out` holds one whole run again."""
    new, real = beside(out), out.resolve()
    for leftover in (beside(out, _MAKING_SUFFIX), beside(out, _TRASH_SUFFIX)):
        if leftover.is_dir():
            shutil.rmtree(leftover)
    if (new / SWITCH_FILE).is_file():
        _relocate_states(RunFolder(out, new))  # a switch cut before its exchange: the paths of its final place
    if not finish_cut_folder_switch(out, KIT_TREE, say=_say) and new.is_dir() and _state(new) is None:
        if strays := foreign_files(new, KIT_TREE):
            raise CifakeError(
                f"{str(new)!r} is where the kit trains a replacement of {str(out)!r}, but it holds other files "
                f"({', '.join(strays[:5])}). Move them away and run the command again."
            )
        shutil.rmtree(new)  # the kit's own leftovers, with no state to go on
    if (real / REPLACEMENT_FILE).is_file() and not new.exists():
        (real / REPLACEMENT_FILE).unlink()


def _relocate_states(run: RunFolder) -> None:
    """Trainer records the best checkpoint by path: make the replacement's paths those of its final place."""
    for state_file in [run.work / "trainer_state.json", *run.work.glob("checkpoint-*/trainer_state.json")]:
        if not state_file.is_file():
            continue
        state = json.loads(state_file.read_text())
        best = state.get("best_model_checkpoint")
        if best and Path(best).parent == run.work:
            state["best_model_checkpoint"] = os.path.join(str(run.final), Path(best).name)
            write_json(state_file, state)


def _state(new: Path) -> str | None:
    try:
        return json.loads((new / REPLACEMENT_FILE).read_text()).get("state")
    except (OSError, ValueError, AttributeError):
        return None


def _make_replacement(new: Path, out: Path) -> None:
    """The replacement folder, made whole (its state file in it) before it takes its name."""
    making = beside(out, _MAKING_SUFFIX)
    making.mkdir()
    write_json(making / REPLACEMENT_FILE, {"state": "training", "replaces": str(out.resolve())})
    os.rename(making, new)


def _remove_replacement(new: Path) -> None:
    """Remove an abandoned replacement: renamed away first, so that a kill midway leaves no half of it
    under the name a rerun looks at."""
    strays = foreign_files(new, KIT_TREE)
    if strays:
        raise CifakeError(
            f"{str(new)!r} holds an unfinished replacement run and other files ({', '.join(strays[:5])}). Move them "
            f"away and run the command again."
        )
    trash = new.with_name(new.name.removesuffix(NEW) + _TRASH_SUFFIX)
    os.rename(new, trash)
    shutil.rmtree(trash)


def _say(line: str) -> None:
    print(f"cifake train: {line}", file=sys.stderr, flush=True)
