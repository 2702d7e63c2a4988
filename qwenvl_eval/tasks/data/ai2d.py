"""AI2D (AI2 Diagrams) test questions: the Qwen-VL JSONL, or an lmms-lab/ai2d parquet folder.

Formats read
- Qwen-VL's converted file (`eval_mm/EVALUATION.md`: `ai2diagram/test.jsonl`), here
  `ai2d/test.jsonl`, one JSON object a line: `{"image", "question", "answer",
  "question_id"?}`. `image` is relative to the `ai2d/` folder; `question` is used verbatim
  (it carries the options the way the file writes them); `answer` is a string or a list of
  strings. Without `question_id` the line number (from 0) is the id.
- lmms-lab/ai2d (`ai2d/data/test-*.parquet`): `question`, `options` (list), `answer` (the
  correct option's index, as a string), `image`. These are written in the JSONL's form: the
  question followed by one `A. option` line per option, and the references are the correct
  option's letter and its text (exact match accepts either).

Documents: fields `question`, `answers`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ...types import Document
from . import records as rec
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import find_image, read_jsonl

_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class AI2DData:
    subdir: str = "ai2d"
    split_size: int | None = 3088  # test questions in the lmms-lab copy (the usual test set)
    file: str = "test.jsonl"

    def _use_parquet(self, folder: Path) -> bool:
        return not (folder / self.file).is_file() and bool(parquet_files(folder, "test"))

    def expected(self, root: Path) -> list[Path]:
        folder = root / self.subdir
        if self._use_parquet(folder):
            return parquet_files(folder, "test")
        return [folder / self.file]

    def load(self, root: Path) -> list[Document]:
        folder = root / self.subdir
        if self._use_parquet(folder):
            return _from_parquet(folder)
        path = folder / self.file
        docs = []
        for n, raw in enumerate(read_jsonl(path)):
            row = rec.record(raw, source=path, item=f"line {n + 1}")
            item = (
                rec.ident(row, "question_id", source=path, item=f"line {n + 1}")
                if ("question_id" in row)
                else str(n)
            )
            answer = row.get("answer")
            answers = (
                [answer]
                if isinstance(answer, str)
                else rec.texts(row, "answer", source=path, item=item)
            )
            rel = rec.text(row, "image", source=path, item=item)
            image = find_image(folder, rel, source=path, item=item, field="image")
            docs.append(
                Document(
                    id=item,
                    images=(image,),
                    fields={
                        "question": rec.text(row, "question", source=path, item=item),
                        "answers": answers,
                    },
                )
            )
        return docs


def _from_parquet(folder: Path) -> list[Document]:
    docs = []
    for n, row in enumerate(read_parquet_split(folder, "test")):
        item = str(n)
        options = rec.texts(row, "options", source=folder, item=item)
        raw = row.get("answer")
        try:
            index = int(raw)
        except (TypeError, ValueError):
            index = -1
        if not 0 <= index < len(options):
            raise DataError(
                folder,
                f"expected an option index below {len(options)}, got {raw!r}",
                item=item,
                field="answer",
            )
        question = rec.text(row, "question", source=folder, item=item)
        lines = [f"{_LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
        image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
        docs.append(
            Document(
                id=item,
                images=(image,),
                fields={
                    "question": "\n".join([question, *lines]),
                    "answers": [_LETTERS[index], options[index]],
                },
            )
        )
    return docs
