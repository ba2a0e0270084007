"""The local dataset folder, in exactly the layout `push_to_hub` writes.

    OUT/README.md                              dataset card with YAML `configs` + `dataset_info`
    OUT/data/{split}-NNNNN-of-NNNNN.parquet    shards cut by the same size rule as push_to_hub

While a build runs, its working files live in `OUT/.cifake-build/`. The finished folder is written
beside OUT and switched in whole (`cifake_kit.outputs.switch`, as a model folder is), so a reader,
or a kill at any moment, finds the old dataset or the new one, never a mix; a rerun completes a cut
switch, or resumes from the work folder. Where nothing can be written beside OUT (a mount point),
the two entries move one by one instead, and a rerun finishes a cut move.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from cifake_kit.errors import CifakeError
from cifake_kit.outputs import (
    SWITCH_FILE,
    beside,
    check_output_dir,
    finish_cut_switch,
    foreign_files,
    is_kit_card,
    switch,
)

from .cards import card_text
from .features import cifake_features

WORK_DIR = ".cifake-build"
# What a dataset folder of the kit holds, at every depth (cifake_kit.outputs.KitTree): the card, the
# Parquet shards, and the work folder of a build that is running or was cut.
KIT_TREE = {"README.md": is_kit_card, "data": {"*-[0-9]*-of-[0-9]*.parquet": True}, WORK_DIR: True, SWITCH_FILE: True}


def prepare_output(output_dir: str | Path, overwrite: bool = False) -> Path:
    """Check `output_dir` before anything is written; return its work folder (created, possibly resumed).

    Allowed: a missing or empty folder, an unfinished build of this kit (resumed), or, with
    `overwrite`, a finished dataset of this kit. Anything else is refused untouched.
    """
    out = Path(output_dir).expanduser()
    _clear_switch(out)
    work = out / WORK_DIR
    if check_output_dir(out, ours=_holds_kit_output, tree=KIT_TREE) and _is_finished(out) and not overwrite:
        job = unfinished_job(work)
        if job:
            raise CifakeError(
                f"--output-dir {str(out)!r} holds a CIFAKE dataset and an unfinished `cifake {job}` that replaces it. "
                f"Run that command again with --overwrite to resume it, or choose another --output-dir."
            )
        raise CifakeError(
            f"--output-dir {str(out)!r} already holds a CIFAKE dataset. Pass --overwrite to replace "
            f"it (the old copy stays until the new one is complete), or choose another --output-dir."
        )
    work.mkdir(parents=True, exist_ok=True)
    return work


def unfinished_job(work: Path) -> str | None:
    """The command whose unfinished run the work folder holds ("build", "import-kaggle", ...), or None."""
    record = work / "settings.json"
    if not record.is_file():
        return None
    try:
        settings = json.loads(record.read_text())
    except ValueError:
        return "build" if (work / "fakes").is_dir() else "import"
    if isinstance(settings, dict) and "job" in settings:
        return str(settings["job"])
    # A record of an older kit, which named no job: its imports recorded their sources, its builds did not.
    return "import" if isinstance(settings, dict) and ({"source", "sources"} & set(settings)) else "build"


def write_dataset_folder(dataset_dict, out: str | Path, card_text: str, work: Path) -> Path:
    """Write `dataset_dict` as Parquet shards + README.md into `out`, replacing an older copy whole."""
    staging = _staging(work)
    for split, dataset in dataset_dict.items():
        for path, shard in _parquet_shards(dataset, split):
            shard.to_parquet(str(staging / path), batch_size=_writer_batch_size(dataset))
    (staging / "README.md").write_text(card_text, encoding="utf-8")
    return _swap_in(staging, Path(out), work)


def write_parquet_folder(split_files: dict[str, list[Path]], out: str | Path, section: str, work: Path, read,
                         metadata: dict | None = None) -> dict:
    """Write tables already in the dataset's schema (an import's chunks, `read(path)` gives each) as the dataset folder.

    The rows are streamed into `data/{split}-NNNNN-of-NNNNN.parquet` in order, cut into shards and
    row groups by the same rules as `push_to_hub` and `Dataset.to_parquet`, without going through
    an Arrow cache first; the card is rendered from what was written. Returns {split: rows}.
    """
    import pyarrow.parquet as pq
    from datasets import config
    from datasets.arrow_writer import get_parquet_column_options, get_writer_batch_size_from_features
    from datasets.utils.py_utils import convert_file_size_to_int

    features = cifake_features()
    row_group = get_writer_batch_size_from_features(features) or config.DEFAULT_MAX_BATCH_SIZE
    # The writer options `Dataset.to_parquet` uses: images stored plain, content-defined chunks, page index.
    options = {"use_content_defined_chunking": config.DEFAULT_CDC_OPTIONS, "write_page_index": True,
               **get_parquet_column_options(features, features.arrow_schema)}
    staging = _staging(work)
    sizes = {}
    for split, files in split_files.items():
        tables = [read(path) for path in files]  # memory-mapped: nothing is copied until it is written
        rows, nbytes = sum(t.num_rows for t in tables), sum(t.nbytes for t in tables)
        num_shards = int(nbytes / convert_file_size_to_int(config.MAX_SHARD_SIZE)) + 1
        per_shard, written = -(-rows // num_shards), 0
        writer, current = None, -1
        for table in tables:
            while table.num_rows:
                shard = written // per_shard
                if shard != current:
                    _close(writer)
                    writer = pq.ParquetWriter(staging / _shard_path(split, shard, num_shards), table.schema, **options)
                    current = shard
                take = min(table.num_rows, per_shard * (shard + 1) - written)
                writer.write_table(table.slice(0, take), row_group_size=row_group)
                table, written = table.slice(take), written + take
        _close(writer)
        sizes[split] = (rows, nbytes)
    (staging / "README.md").write_text(card_text(features, sizes, section, metadata), encoding="utf-8")
    _swap_in(staging, Path(out), work)
    return {split: rows for split, (rows, _) in sizes.items()}


def _close(writer) -> None:
    if writer is not None:
        from datasets import config

        writer.add_key_value_metadata({"content_defined_chunking": json.dumps(config.DEFAULT_CDC_OPTIONS)})
        writer.close()


def _staging(work: Path) -> Path:
    staging = work / "export"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    return staging


def _swap_in(staging: Path, out: Path, work: Path) -> Path:
    """Switch `out` to the finished `staging` folder (data/ + README.md) whole.

    `staging` is moved beside `out` and switched in (`cifake_kit.outputs.switch`); the old content,
    the work folder with it, then goes. Where nothing can be moved beside `out` (a mount point, a
    read-only parent), the two entries are moved one by one instead, and a rerun finishes a cut
    move (`_finish_in_place`).
    """
    new = beside(out)
    try:
        os.rename(staging, new)
    except OSError:
        return _swap_in_place(staging, out, work)
    switch(out, new, KIT_TREE)
    return out


def _swap_in_place(staging: Path, out: Path, work: Path) -> Path:
    old = work / "replaced"
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    (work / _SWITCHING).touch()
    _finish_in_place(out, work)
    return out


_SWITCHING = "switching"  # in the work folder while the two entries move one by one


def _finish_in_place(out: Path, work: Path) -> None:
    """Move what is left of a one-by-one switch: the old entries aside, the new ones in."""
    for name in ("data", "README.md"):
        if (work / "export" / name).exists():
            if (out / name).exists():
                os.replace(out / name, work / "replaced" / name)
            os.replace(work / "export" / name, out / name)
    (work / _SWITCHING).unlink()


def _clear_switch(out: Path) -> None:
    """Undo or complete what a kill during a switch left. A finished copy beside `out` that was not switched
    in yet is removed while `out` still holds the work folder (the export is redone from it); a switch cut
    after that is completed (`finish_cut_switch`); a cut one-by-one move is finished."""
    new = beside(out)
    if (out / WORK_DIR).is_dir() and new.is_dir() and not new.is_symlink() and not (out / SWITCH_FILE).exists():
        strays = foreign_files(new, KIT_TREE)
        if strays:
            raise CifakeError(
                f"{str(new)!r} is where the kit switches in a new dataset, but it holds other files "
                f"({', '.join(sorted(strays)[:5])}). Move them away and run the command again."
            )
        shutil.rmtree(new)
    finish_cut_switch(out, KIT_TREE)
    if (out / WORK_DIR / _SWITCHING).exists():
        _finish_in_place(out, out / WORK_DIR)


def _parquet_shards(dataset, split: str):
    # The same cut as `Dataset.push_to_hub`: one shard per started max_shard_size of data.
    from datasets import config
    from datasets.utils.py_utils import convert_file_size_to_int

    num_shards = int(dataset._estimate_nbytes() / convert_file_size_to_int(config.MAX_SHARD_SIZE)) + 1
    for index in range(num_shards):
        yield _shard_path(split, index, num_shards), dataset.shard(num_shards=num_shards, index=index, contiguous=True)


def _shard_path(split: str, index: int, num_shards: int) -> str:
    return f"data/{split}-{index:05d}-of-{num_shards:05d}.parquet"


def _writer_batch_size(dataset):
    from datasets.arrow_writer import get_writer_batch_size_from_data_size, get_writer_batch_size_from_features

    return get_writer_batch_size_from_features(dataset.features) or get_writer_batch_size_from_data_size(
        len(dataset), dataset._estimate_nbytes()
    )


def _holds_kit_output(out: Path) -> bool:
    """Only what this kit writes, at every depth (a file of the user's under data/ would go with the
    old dataset), and a README that is this kit's card (if any)."""
    return not foreign_files(out, KIT_TREE) and (not _is_finished(out) or is_kit_card(out / "README.md"))


def _is_finished(out: Path) -> bool:
    return (out / "data").exists() or (out / "README.md").exists()
