"""The local dataset folder, in the layout `push_to_hub` writes: OUT/README.md (the card, YAML `configs` and
`dataset_info`) and OUT/data/{split}-NNNNN-of-NNNNN.parquet.

A job works in OUT/.cifake-build/. The finished folder is written beside OUT and switched in whole
(`cifake_kit.outputs.switch`): a reader, or a kill at any moment, finds the old dataset or the new one, and a
rerun completes a cut switch or resumes. Where nothing can be written beside OUT (a mount point), the two entries
move one by one and a rerun finishes a cut move.
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
# What a dataset folder of the kit holds, at every depth (cifake_kit.outputs.KitTree).
KIT_TREE = {"README.md": is_kit_card, "data": {"*-[0-9]*-of-[0-9]*.parquet": True}, WORK_DIR: True, SWITCH_FILE: True}


def prepare_output(output_dir: str | Path, overwrite: bool = False) -> Path:
    """Check `output_dir` before anything is written; return its work folder (created, or resumed). Allowed: a
    missing or empty folder, an unfinished job of the kit, or with `overwrite` its dataset; all else is refused."""
    out = Path(output_dir).expanduser()
    _clear_switch(out)
    work = out / WORK_DIR
    if check_output_dir(out, ours=_holds_kit_output, tree=KIT_TREE) and _is_finished(out) and not overwrite:
        job = unfinished_job(work)
        if job:
            raise CifakeError(f"--output-dir {str(out)!r} holds a CIFAKE dataset and an unfinished `cifake {job}` that "
                              "replaces it. Run that command again with --overwrite to resume it, or choose another "
                              "--output-dir.")
        raise CifakeError(f"--output-dir {str(out)!r} already holds a CIFAKE dataset. Pass --overwrite to replace it "
                          "(the old copy stays until the new one is complete), or choose another --output-dir.")
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


def write_dataset_folder(tables: dict[str, list], out: str | Path, section: str, work: Path,
                         metadata: dict | None = None) -> dict:
    """Write pyarrow tables in the dataset's schema ({split: tables}: a build's, an import's memory-mapped chunks)
    as the dataset folder, replacing an older copy whole; its card is rendered from what was written, with
    `section` and `metadata` (cards.card_text). Returns {split: rows}."""
    features = cifake_features()
    staging = _staging(work)
    sizes = {split: _write_split(staging, split, split_tables, features) for split, split_tables in tables.items()}
    (staging / "README.md").write_text(card_text(features, sizes, section, metadata), encoding="utf-8")
    _swap_in(staging, Path(out), work)
    return {split: rows for split, (rows, _) in sizes.items()}


def _write_split(staging: Path, split: str, tables: list, features) -> tuple[int, int]:
    """Stream `tables` into `data/{split}-NNNNN-of-NNNNN.parquet`, cut into shards as `push_to_hub` cuts them
    (one per started max_shard_size) and written as `Dataset.to_parquet` writes (row groups, images stored
    plain, content-defined chunks, page index), with no Arrow cache in between. Returns (rows, bytes)."""
    import pyarrow.parquet as pq
    from datasets import config
    from datasets.arrow_writer import (
        get_parquet_column_options,
        get_writer_batch_size_from_data_size,
        get_writer_batch_size_from_features,
    )
    from datasets.utils.py_utils import convert_file_size_to_int

    schema = features.arrow_schema
    rows, nbytes = sum(t.num_rows for t in tables), sum(t.nbytes for t in tables)
    row_group = get_writer_batch_size_from_features(features) or get_writer_batch_size_from_data_size(rows, nbytes)
    options = {"use_content_defined_chunking": config.DEFAULT_CDC_OPTIONS, "write_page_index": True,
               **get_parquet_column_options(features, schema)}
    num_shards = int(nbytes / convert_file_size_to_int(config.MAX_SHARD_SIZE)) + 1
    per_shard, written, writer = -(-rows // num_shards), 0, None
    for table in tables:
        while table.num_rows:
            shard = written // per_shard
            if written == shard * per_shard:  # the first row of a shard: a new file
                _close(writer)
                name = f"data/{split}-{shard:05d}-of-{num_shards:05d}.parquet"
                writer = pq.ParquetWriter(staging / name, schema, **options)
            take = min(table.num_rows, per_shard * (shard + 1) - written)
            writer.write_table(table.slice(0, take), row_group_size=row_group)
            table, written = table.slice(take), written + take
    _close(writer)
    return rows, nbytes


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


def _swap_in(staging: Path, out: Path, work: Path) -> None:
    """Switch `out` to the finished `staging` folder whole (its old content, the work folder with it, goes), or,
    where nothing can be moved beside `out`, move its two entries one by one (`_finish_in_place`)."""
    try:
        os.rename(staging, beside(out))
    except OSError:
        shutil.rmtree(work / "replaced", ignore_errors=True)
        (work / "replaced").mkdir()
        (work / _SWITCHING).touch()
        _finish_in_place(out, work)
    else:
        switch(out, beside(out), KIT_TREE)


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
    """Undo or complete what a kill during a switch left: a copy beside `out` not yet switched in is removed while
    the work folder is there (the export is redone); a later cut switch or one-by-one move is finished."""
    new = beside(out)
    if (out / WORK_DIR).is_dir() and new.is_dir() and not new.is_symlink() and not (out / SWITCH_FILE).exists():
        strays = foreign_files(new, KIT_TREE)
        if strays:
            raise CifakeError(f"{str(new)!r} is where the kit switches in a new dataset, but it holds other files "
                              f"({', '.join(sorted(strays)[:5])}). Move them away and run the command again.")
        shutil.rmtree(new)
    finish_cut_switch(out, KIT_TREE)
    if (out / WORK_DIR / _SWITCHING).exists():
        _finish_in_place(out, out / WORK_DIR)


def _holds_kit_output(out: Path) -> bool:
    """Only what this kit writes, at every depth, and a README that is the kit's card (if any)."""
    return not foreign_files(out, KIT_TREE) and (not _is_finished(out) or is_kit_card(out / "README.md"))


def _is_finished(out: Path) -> bool:
    return (out / "data").exists() or (out / "README.md").exists()
