"""Hugging Face dataset copies, read through `datasets`: parquet shards in a folder (the
`lmms-lab/*` repositories as downloaded), a folder written by `save_to_disk`, or a dataset
repository already in the local HF hub cache (offline: never a download).

The data is memory-mapped Arrow. Image columns are not decoded, nor even read, up front:
each image is a lazy `ArrowImageRef` that fetches its encoded bytes from the table when the
runner opens it, so preparing a 200k-question split holds only its text columns in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import ImageRef


def parquet_files(folder: Path, split: str, named: tuple[str, ...] = ()) -> list[Path]:
    """The parquet shards of `split`: the files a dataset card names for it (`named`, glob
    patterns, e.g. Lin-Chen/MMStar's `mmstar.parquet`), else the usual layouts:
    `data/{split}-*.parquet`, `{split}-*.parquet`, `{split}/*.parquet`."""
    patterns = [
        *named,
        f"data/{split}-*.parquet",
        f"{split}-*.parquet",
        f"{split}/*.parquet",
        f"data/{split}/*.parquet",
    ]
    for pattern in patterns:
        files = sorted(folder.glob(pattern))
        if files:
            return files
    return []


def disk_split(folder: Path, split: str) -> Path | None:
    """The folder `save_to_disk` wrote for `split`: `<folder>/<split>/` of a DatasetDict
    (`dataset_dict.json` beside it), or `<folder>/<split>/state.json` on its own."""
    candidate = folder / split
    if (candidate / "state.json").is_file() and (candidate / "dataset_info.json").is_file():
        return candidate
    return None


def hub_snapshot(repo_id: str) -> Path | None:
    """The local snapshot of a dataset repository in the HF hub cache, never downloading."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
    except Exception:  # not cached (or no cache at all): this format is absent
        return None
    return Path(path)


@dataclass(frozen=True)
class ArrowImageRef(ImageRef):
    """An image cell of a memory-mapped Arrow table, fetched when first opened."""

    fetch: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.fetch is None:
            raise ValueError("ArrowImageRef needs a fetch function")

    def materialize(self) -> ImageRef:
        return ImageRef(key=self.key, data=self.fetch())  # type: ignore[misc]

    def read_bytes(self) -> bytes:
        return self.fetch()  # type: ignore[misc]


@dataclass(frozen=True)
class LazyCell:
    """An image cell not yet read: row `index` of `column` in `table` (`name`: the cell's
    own file name, read up front since it is only text)."""

    table: Any
    index: int
    column: str
    name: str | None = None

    def fetch(self) -> bytes:
        cell = self.table[self.index][self.column]
        data = cell.get("bytes") if isinstance(cell, dict) else cell
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"row {self.index}: the {self.column!r} cell holds no image bytes")
        return bytes(data)


def _datasets():
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    datasets.config.HF_DATASETS_OFFLINE = True  # never reach the network
    return datasets


def _image_columns(ds: Any) -> list[str]:
    from datasets import Image

    cols = []
    for name, feature in ds.features.items():
        if isinstance(feature, Image) or (isinstance(feature, dict) and "bytes" in feature):
            cols.append(name)
    return cols


def _rows(ds: Any, where: Path) -> list[dict[str, Any]]:
    """Every row's text columns as Python objects; image columns as `LazyCell`s."""
    from datasets import Image

    images = _image_columns(ds)
    for c in images:
        if isinstance(ds.features[c], Image):
            ds = ds.cast_column(c, Image(decode=False))  # bytes stay encoded, unread
    text_cols = [c for c in ds.column_names if c not in images]
    try:
        rows = ds.select_columns(text_cols).to_list() if text_cols else [{}] * len(ds)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DataError(where, f"unreadable dataset ({exc})") from None
    for c in images:
        table = ds.select_columns([c])
        names = _cell_names(ds, c)
        nulls = ds.data.table.column(c).is_null().to_pylist()
        for i, row in enumerate(rows):
            row[c] = None if nulls[i] else LazyCell(table, i, c, names[i] if names else None)
    return rows


def _cell_names(ds: Any, column: str) -> list[str | None] | None:
    """The `path` field of an image column (text only: the bytes are not read)."""
    import pyarrow.compute as pc

    col = ds.data.table.column(column)
    try:
        return pc.struct_field(col, "path").to_pylist()
    except Exception:  # not a struct with a path field
        return None


def read_parquet_split(folder: Path, split: str) -> list[dict[str, Any]]:
    files = parquet_files(folder, split)
    if not files:
        raise DataError(
            folder,
            f"no parquet files for split {split!r} (expected {folder}/data/{split}-*.parquet)",
        )
    return read_parquet_files(files)


def read_parquet_files(files: list[Path]) -> list[dict[str, Any]]:
    datasets = _datasets()
    try:
        # The shards are converted once to memory-mapped Arrow in the datasets cache
        # ($HF_DATASETS_CACHE, read at call time), then reused.
        ds = datasets.load_dataset(
            "parquet",
            data_files=[os.fspath(f) for f in files],
            split="train",
            cache_dir=os.environ.get("HF_DATASETS_CACHE") or None,
        )
    except Exception as exc:  # pyarrow / datasets raise many types for a damaged file
        raise DataError(files[0], f"unreadable parquet ({type(exc).__name__}: {exc})") from None
    return _rows(ds, files[0])


def read_disk_split(folder: Path) -> list[dict[str, Any]]:
    """A split folder written by `Dataset.save_to_disk` (memory-mapped, no copy)."""
    datasets = _datasets()
    try:
        ds = datasets.load_from_disk(os.fspath(folder))
    except Exception as exc:
        raise DataError(folder, f"unreadable save_to_disk folder ({exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        raise DataError(folder, "expected one split's folder, found a DatasetDict")
    return _rows(ds, folder)


def image_from_cell(cell: Any, *, source: Path, item: str, field: str) -> ImageRef:
    """An HF `Image` cell as a lazy, undecoded image: a `LazyCell` (read through `datasets`),
    or an in-memory cell `{"bytes": ..., "path": ...}`."""
    if isinstance(cell, LazyCell):
        return ArrowImageRef(key=cell.name or f"{item}.png", fetch=cell.fetch)
    if isinstance(cell, dict) and isinstance(cell.get("bytes"), (bytes, bytearray)):
        key = cell.get("path") or f"{item}.png"
        return ImageRef(key=str(key), data=bytes(cell["bytes"]))
    if isinstance(cell, (bytes, bytearray)):
        return ImageRef(key=f"{item}.png", data=bytes(cell))
    raise DataError(source, "expected an image cell with bytes", item=item, field=field)


def hf_formats(
    folder: Path,
    split: str,
    reader: Callable[[list[dict[str, Any]], Path], list[Any]],
    *,
    hub_id: str | None = None,
    hub_subdir: str = "",
    named: tuple[str, ...] = (),
) -> list[Any]:
    """The three ways an HF copy of one split is kept, each read by `reader(rows, where)`:
    parquet shards in `folder`, a `save_to_disk` folder, and `hub_id` in the local cache.
    `named`: the split's files where the card names them (see `parquet_files`)."""
    from .formats import Format

    out = []
    shards = parquet_files(folder, split, named)
    out.append(
        Format(
            "hf parquet",
            "hf",
            tuple(shards) or (folder / (named[0] if named else f"data/{split}-*.parquet"),),
            lambda: reader(read_parquet_files(shards), folder),
        )
    )
    disk = disk_split(folder, split)
    if disk is not None:
        out.append(
            Format("hf save_to_disk", "hf", (disk,), lambda: reader(read_disk_split(disk), disk))
        )
    if hub_id is not None:
        snap = hub_snapshot(hub_id)
        if snap is not None:
            snap_shards = parquet_files(snap / hub_subdir, split, named)
            if snap_shards:
                out.append(
                    Format(
                        f"hf hub cache {hub_id}",
                        "hf",
                        tuple(snap_shards),
                        lambda: reader(read_parquet_files(snap_shards), snap),
                    )
                )
    return out
