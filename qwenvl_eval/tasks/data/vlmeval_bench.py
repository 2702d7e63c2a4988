"""The Qwen2-VL report's image benchmarks, as users hold them: a VLMEvalKit TSV (its data
root's file name, e.g. `mmbench/MMBench_DEV_EN.tsv`) or an lmms-lab Hugging Face copy (parquet
shards, a `save_to_disk` folder or the local hub cache).

Both are read into the same documents. Fields every benchmark has: `question`, `hint` (None
when absent), `options` (letter -> text, letters without text left out), `answer`; the
benchmark's own metadata follows (category, subtask, ...). Each benchmark gives two small row
readers (`from_tsv`, `from_hf`); the reading, checking and image handling live here.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document, ImageRef
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell
from .vlmeval_tsv import VLMEvalRecord, image_bytes, read_vlmeval_tsv

LETTERS = string.ascii_uppercase

TsvReader = Callable[[VLMEvalRecord, Path], dict[str, Any]]
HfReader = Callable[[dict[str, Any], str, Path], dict[str, Any]]


@dataclass(frozen=True)
class BenchSource(SplitSource):
    """One benchmark split: `{subdir}/{tsv}` (VLMEvalKit) or the HF copy in
    `{subdir}/{hf_subdir}` (split `hf_split`; None: no public HF copy, the TSV only). The row
    readers give each document's fields."""

    subdir: str
    tsv: str
    hf_split: str | None
    from_tsv: TsvReader
    from_hf: HfReader
    split_size: int | None = None
    hub_id: str | None = None
    hf_subdir: str = ""
    hf_id: str | None = None  # the HF column holding the question id (else the row number)
    tsv_split: str | None = None  # keep only the TSV rows of this `split` (MMMU_DEV_VAL)
    hf_images: tuple[str, ...] = ()  # the HF image columns, when not `image`/`image_N`
    hf_files: tuple[str, ...] = ()  # the split's files, where the card names them
    answered: bool = True  # False: a test split whose answers only the server holds

    def formats(self, root: Path) -> list[Format]:
        folder = root / self.subdir
        tsv = folder / self.tsv
        out = [Format("vlmeval tsv", "official", (tsv,), lambda: self._read_tsv(tsv))]
        if self.hf_split is None:
            return out
        hf_folder = folder / self.hf_subdir if self.hf_subdir else folder
        return out + hf_formats(
            hf_folder,
            self.hf_split,
            self._read_hf,
            hub_id=self.hub_id,
            hub_subdir=self.hf_subdir,
            named=self.hf_files,
        )

    def _read_tsv(self, path: Path) -> list[Document]:
        docs = []
        for record in read_vlmeval_tsv(path):
            if self.tsv_split is not None and record.fields.get("split") != self.tsv_split:
                continue
            pictures = image_bytes(record, path)
            if not pictures:
                raise DataError(path, "no image", item=record.index, field="image")
            images = tuple(
                ImageRef(key=f"{record.index}_{n}.png" if n else f"{record.index}.png", data=b)
                for n, b in enumerate(pictures)
            )
            fields = {
                "question": record.question,
                "hint": record.hint,
                "options": dict(record.options),
                "answer": record.answer,
                **self.from_tsv(record, path),
            }
            if self.answered:
                required(fields["answer"], source=path, item=record.index, field="answer")
            docs.append(Document(id=record.index, images=images, fields=fields))
        return rec.check_unique(docs, path)

    def _read_hf(self, rows: list[dict[str, Any]], folder: Path) -> list[Document]:
        docs = []
        for n, row in enumerate(rows):
            item = str(n)
            if self.hf_id:
                item = rec.ident(row, self.hf_id, source=folder, item=f"row {n}")
            images = tuple(
                image_from_cell(row[c], source=folder, item=item, field=c)
                for c in (self.hf_images or sorted(k for k in row if _is_image_column(k)))
                if row[c] is not None
            )
            if not images:
                raise DataError(folder, "no image", item=item, field="image")
            fields = {
                "question": rec.text(row, "question", source=folder, item=item),
                "hint": hf_text(row.get("hint")),
                "options": hf_options(row),
                "answer": _cell(row.get("answer")),
                **self.from_hf(row, item, folder),
            }
            if self.answered:
                required(fields["answer"], source=folder, item=item, field="answer")
            docs.append(Document(id=item, images=images, fields=fields))
        return rec.check_unique(docs, folder)


def _is_image_column(name: str) -> bool:
    # lmms-lab copies: `image`, or `image_1` .. `image_7` (MMMU).
    return name == "image" or (name.startswith("image_") and name[6:].isdigit())


def _cell(value: Any) -> str | None:
    """A text cell; None, NaN and the empty string are absent (as pandas reads them)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value)
    return text if text.strip() else None


def hf_text(value: Any) -> str | None:
    """An optional text cell of an lmms-lab copy (`hint`, an option): absent when None, NaN,
    empty or the text "nan" -- lmms-lab/MMBench's `en` config writes a missing cell as "nan"
    (its string `index` column shows the frame went through `str`), where VLMEvalKit's TSV
    leaves the cell empty; lmms-eval's MMBench reader drops "nan" hints and options alike."""
    text = _cell(value)
    return None if text is None or text.lower() == "nan" else text


def hf_options(row: dict[str, Any]) -> dict[str, str]:
    """Options from columns `A`..`Z` (the lmms-lab copies keep VLMEvalKit's columns)."""
    out = {}
    for letter in LETTERS:
        text = hf_text(row.get(letter))
        if text is not None:
            out[letter] = text
    return out


def required(value: str | None, *, source: Path, item: str, field: str) -> str:
    if value is None:
        raise DataError(source, "missing", item=item, field=field)
    return value
