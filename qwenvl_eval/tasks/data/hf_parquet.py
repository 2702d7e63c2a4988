"""Local Hugging Face dataset folders stored as parquet (e.g. the lmms-lab copies).

Read with pyarrow directly: no Hub access, no datasets cache written next to the user's data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import ImageRef


def parquet_files(folder: Path, split: str) -> list[Path]:
    """The parquet shards of `split` in the usual layouts: `data/{split}-*.parquet`,
    `{split}-*.parquet`, `{split}/*.parquet`."""
    patterns = [
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


def read_parquet_split(folder: Path, split: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    files = parquet_files(folder, split)
    if not files:
        raise DataError(
            folder,
            f"no parquet files for split {split!r} (expected {folder}/data/{split}-*.parquet)",
        )
    rows: list[dict[str, Any]] = []
    for f in files:
        try:
            rows.extend(pq.read_table(f).to_pylist())
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise DataError(f, f"unreadable parquet ({exc})") from None
    return rows


def image_from_cell(cell: Any, *, source: Path, item: str, field: str) -> ImageRef:
    """An HF `Image` feature cell ({"bytes": ..., "path": ...}) as a lazy, undecoded image."""
    if isinstance(cell, dict) and isinstance(cell.get("bytes"), (bytes, bytearray)):
        key = cell.get("path") or f"{item}.png"
        return ImageRef(key=str(key), data=bytes(cell["bytes"]))
    if isinstance(cell, (bytes, bytearray)):
        return ImageRef(key=f"{item}.png", data=bytes(cell))
    raise DataError(source, "expected an image cell with bytes", item=item, field=field)
