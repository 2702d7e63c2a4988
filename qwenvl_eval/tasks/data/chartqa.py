"""ChartQA test splits: the official JSON files, or an lmms-lab/ChartQA parquet folder.

Formats read
- Official (github.com/vis-nlp/ChartQA): `chartqa/test/test_human.json` and
  `chartqa/test/test_augmented.json`, `[{"imgname", "query", "label"}]`; images
  `chartqa/test/png/{imgname}`.
- lmms-lab/ChartQA (`chartqa/data/test-*.parquet`): `type` ("human_test" / "augmented_test";
  a bare "human" / "augmented" is accepted too), `question`, `answer`, `image`.

Documents: id = `{split}-{n}` (n = position in that split's file; the files have no ids);
fields `question`, `answers` (one label), `split` ("human" or "augmented").
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document, ImageRef
from . import records as rec
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import find_image, read_json

SPLITS = ("human", "augmented")
_SPLIT_SIZE = 1250  # questions in each official test split


@dataclass(frozen=True)
class ChartQAData:
    splits: tuple[str, ...] = ("human",)
    subdir: str = "chartqa"

    def __post_init__(self) -> None:
        unknown = set(self.splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown ChartQA split(s): {sorted(unknown)}")

    @property
    def split_size(self) -> int:
        return _SPLIT_SIZE * len(self.splits)

    def _files(self, folder: Path) -> list[Path]:
        return [folder / "test" / f"test_{s}.json" for s in self.splits]

    def _use_parquet(self, folder: Path) -> bool:
        return not any(f.is_file() for f in self._files(folder)) and bool(
            parquet_files(folder, "test")
        )

    def expected(self, root: Path) -> list[Path]:
        folder = root / self.subdir
        if self._use_parquet(folder):
            return parquet_files(folder, "test")
        return self._files(folder)

    def load(self, root: Path) -> list[Document]:
        folder = root / self.subdir
        if self._use_parquet(folder):
            return self._from_parquet(folder)
        docs: list[Document] = []
        for split, path in zip(self.splits, self._files(folder), strict=True):
            rows = read_json(path)
            if not isinstance(rows, list):
                raise DataError(path, "expected a list of questions")
            for n, raw in enumerate(rows):
                item = f"{split}-{n}"
                row = rec.record(raw, source=path, item=item)
                name = rec.text(row, "imgname", source=path, item=item)
                image = find_image(
                    folder,
                    posixpath.join("test/png", name),
                    source=path,
                    item=item,
                    field="imgname",
                )
                docs.append(_doc(item, image, row, "query", "label", split, path))
        return docs

    def _from_parquet(self, folder: Path) -> list[Document]:
        counts = dict.fromkeys(self.splits, 0)
        docs = []
        for row in read_parquet_split(folder, "test"):
            kind = rec.text(row, "type", source=folder, item="?").split("_")[0]
            if kind not in SPLITS:
                raise DataError(folder, f"unknown question type {kind!r}", field="type")
            if kind not in counts:
                continue
            item = f"{kind}-{counts[kind]}"
            counts[kind] += 1
            image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
            docs.append(_doc(item, image, row, "question", "answer", kind, folder))
        # The official order: every question of the first split, then the next.
        order = {s: i for i, s in enumerate(self.splits)}
        return sorted(docs, key=lambda d: order[d.fields["split"]])


def _doc(
    item: str, image: ImageRef, row: dict[str, Any], q: str, a: str, split: str, source: Path
) -> Document:
    label = row.get(a)
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        label = str(label)
    if not isinstance(label, str):
        raise DataError(source, f"expected a string answer, got {label!r}", item=item, field=a)
    return Document(
        id=item,
        images=(image,),
        fields={
            "question": rec.text(row, q, source=source, item=item),
            "answers": [label],
            "split": split,
        },
    )
