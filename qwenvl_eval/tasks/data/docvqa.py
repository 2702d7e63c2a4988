"""DocVQA: the official `{split}_v1.0.json` files, or an lmms-lab/DocVQA parquet folder.

Formats read
- Official (docvqa.org): `docvqa/val/val_v1.0.json` (also accepted at `docvqa/val_v1.0.json`),
  `{"data": [{"questionId", "question", "image": "documents/xxx.png", "answers": [...]}]}`;
  the image path is relative to the JSON file's folder. The test file has no `answers`.
- lmms-lab/DocVQA, config `DocVQA` (`docvqa/DocVQA/{validation,test}-*.parquet`, or the
  parquet files directly under `docvqa/`): `questionId`, `question`, `answers`, `image`.

Documents: id = str(questionId); fields `question`, `answers` (empty for test), `question_id`
(the file's own value, for the submission file).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document
from . import records as rec
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import find_image, read_json

_HF_SPLITS = {"val": "validation", "test": "test"}


@dataclass(frozen=True)
class DocVQAData:
    split: str = "val"
    subdir: str = "docvqa"

    @property
    def split_size(self) -> int | None:
        return {"val": 5349, "test": 5188}.get(self.split)

    @property
    def has_answers(self) -> bool:
        return self.split != "test"

    def _official(self, folder: Path) -> Path | None:
        name = f"{self.split}_v1.0.json"
        return rec.first_existing([folder / self.split / name, folder / name])

    def _parquet_folder(self, folder: Path) -> Path | None:
        hf_split = _HF_SPLITS.get(self.split, self.split)
        return next((f for f in (folder / "DocVQA", folder) if parquet_files(f, hf_split)), None)

    def expected(self, root: Path) -> list[Path]:
        folder = root / self.subdir
        official = self._official(folder)
        parquet = None if official else self._parquet_folder(folder)
        if parquet is not None:
            return parquet_files(parquet, _HF_SPLITS.get(self.split, self.split))
        return [official or folder / self.split / f"{self.split}_v1.0.json"]

    def load(self, root: Path) -> list[Document]:
        folder = root / self.subdir
        official = self._official(folder)
        parquet = None if official else self._parquet_folder(folder)
        if parquet is not None:
            return self._from_parquet(parquet)
        return self._from_json(official or folder / self.split / f"{self.split}_v1.0.json", folder)

    def _from_json(self, path: Path, folder: Path) -> list[Document]:
        data = read_json(path)
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise DataError(path, "expected a top-level 'data' list", field="data")
        base = path.parent.relative_to(folder).as_posix() if path.parent != folder else ""
        docs = []
        for n, raw in enumerate(rows):
            row = rec.record(raw, source=path, item=f"data[{n}]")
            item = rec.ident(row, "questionId", source=path, item=f"data[{n}]")
            rel = posixpath.join(base, rec.text(row, "image", source=path, item=item))
            image = find_image(folder, rel, source=path, item=item, field="image")
            docs.append(self._doc(row, item, image, path))
        return docs

    def _from_parquet(self, folder: Path) -> list[Document]:
        docs = []
        for row in read_parquet_split(folder, _HF_SPLITS.get(self.split, self.split)):
            item = rec.ident(row, "questionId", source=folder, item="?")
            image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
            docs.append(self._doc(row, item, image, folder))
        return docs

    def _doc(self, row: dict[str, Any], item: str, image: Any, source: Path) -> Document:
        answers = rec.texts(row, "answers", source=source, item=item) if self.has_answers else []
        return Document(
            id=item,
            images=(image,),
            fields={
                "question": rec.text(row, "question", source=source, item=item),
                "answers": answers,
                "question_id": row["questionId"],
            },
        )
