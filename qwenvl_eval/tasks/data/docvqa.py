"""DocVQA: the official `{split}_v1.0.json` files, the Qwen-VL eval_mm jsonl, or an
lmms-lab/DocVQA copy.

Formats read
- Official (docvqa.org): `docvqa/val/val_v1.0.json` (also accepted at `docvqa/val_v1.0.json`),
  `{"data": [{"questionId", "question", "image": "documents/xxx.png", "answers": [...]}]}`;
  the image path is relative to the JSON file's folder. The test file has no `answers`.
- Qwen-VL eval_mm: `docvqa/val.jsonl` / `docvqa/test.jsonl`, lines `{image, question,
  question_id, answer}` (`answer` the list of answers; absent on test), `image` relative to
  the folder holding `data/`.
- lmms-lab/DocVQA, config `DocVQA` (`docvqa/DocVQA/{validation,test}-*.parquet`, or the
  parquet files directly under `docvqa/`; also a save_to_disk folder or the hub cache):
  `questionId` (a STRING there), `question`, `answers`, `image`.

Documents: id = str(questionId); fields `question`, `answers` (empty for test), `question_id`
(an int whenever the file's id is one, even as a string: the server wants the int).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell
from .locate import ImageCache, read_json, read_jsonl, strip_data_prefix

_HF_SPLITS = {"val": "validation", "test": "test"}


@dataclass(frozen=True)
class DocVQAData(SplitSource):
    split: str = "val"
    subdir: str = "docvqa"
    hub_id: str = "lmms-lab/DocVQA"

    @property
    def split_size(self) -> int | None:
        return {"val": 5349, "test": 5188}.get(self.split)

    @property
    def has_answers(self) -> bool:
        return self.split != "test"

    def formats(self, root: Path) -> list[Format]:
        folder = root / self.subdir
        name = f"{self.split}_v1.0.json"
        jsonl = folder / f"{self.split}.jsonl"
        hf_split = _HF_SPLITS.get(self.split, self.split)
        out = [
            Format("official", "official", (p,), lambda p=p: self._from_json(p, folder, root))
            for p in (folder / self.split / name, folder / name)
        ]
        out.append(
            Format("eval_mm jsonl", "eval_mm", (jsonl,), lambda: self._from_jsonl(jsonl, root))
        )
        out += hf_formats(
            folder / "DocVQA", hf_split, self._from_rows, hub_id=self.hub_id, hub_subdir="DocVQA"
        )
        out += hf_formats(folder, hf_split, self._from_rows)
        return out

    def _from_json(self, path: Path, folder: Path, root: Path) -> list[Document]:
        data = read_json(path)
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise DataError(path, "expected a top-level 'data' list", field="data")
        base = path.parent.relative_to(folder).as_posix() if path.parent != folder else ""
        images = ImageCache(folder, root=root)
        docs = []
        for n, raw in enumerate(rows):
            row = rec.record(raw, source=path, item=f"data[{n}]")
            item = rec.ident(row, "questionId", source=path, item=f"data[{n}]")
            rel = posixpath.join(base, rec.text(row, "image", source=path, item=item))
            image = images.get(rel, source=path, item=item, field="image")
            docs.append(self._doc(row, item, image, path))
        return rec.check_unique(docs, path)

    def _from_jsonl(self, path: Path, root: Path) -> list[Document]:
        folder = path.parent
        images = ImageCache(folder, root=root, bases=(root, folder, folder / self.split))
        docs = []
        for n, raw in enumerate(read_jsonl(path), 1):
            row = rec.record(raw, source=path, item=f"line {n}")
            item = rec.ident(row, "question_id", source=path, item=f"line {n}")
            rel = strip_data_prefix(rec.text(row, "image", source=path, item=item))
            image = images.get(rel, source=path, item=item, field="image")
            answers: list[str] = []
            if self.has_answers:
                key = "answers" if "answers" in row else "answer"
                answers = rec.text_or_texts(row, key, source=path, item=item)
            question = rec.text(row, "question", source=path, item=item)
            docs.append(_document(item, image, question, answers, row["question_id"]))
        return rec.check_unique(docs, path)

    def _from_rows(self, rows: list[dict[str, Any]], folder: Path) -> list[Document]:
        docs = []
        for n, row in enumerate(rows):
            item = rec.ident(row, "questionId", source=folder, item=f"row {n}")
            image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
            docs.append(self._doc(row, item, image, folder))
        return rec.check_unique(docs, folder)

    def _doc(self, row: dict[str, Any], item: str, image: Any, source: Path) -> Document:
        answers = rec.texts(row, "answers", source=source, item=item) if self.has_answers else []
        question = rec.text(row, "question", source=source, item=item)
        return _document(item, image, question, answers, row["questionId"])


def _document(item: str, image: Any, question: str, answers: list[str], qid: Any) -> Document:
    # The lmms-lab copy stores questionId as a string; the server's file carries the int.
    if isinstance(qid, str) and qid.isdigit():
        qid = int(qid)
    return Document(
        id=item,
        images=(image,),
        fields={"question": question, "answers": answers, "question_id": qid},
    )
