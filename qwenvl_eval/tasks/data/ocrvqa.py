"""OCR-VQA (book covers): the official `dataset.json`.

Format read (ocr-vqa.github.io): `ocrvqa/dataset.json`, `{"<image id>": {"imageURL",
"questions": [...], "answers": [...], "title", "authorName", "genre", "split"}}` with split
1 = train, 2 = val, 3 = test; images `ocrvqa/images/{image id}.jpg` as the official download
script names them (.png / .jpeg are tried when no .jpg exists: the script keeps the URL's
extension).

Or the Qwen-VL eval_mm `ocrvqa/ocrvqa_{split}.jsonl`: lines `{image, question, question_id,
answer}`, `image` relative to the folder holding `data/`; id = question_id.

Documents: one per question, id = `{image id}_{n}` (n = the question's position); fields
`question`, `answers` (one answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ...types import Document
from . import records as rec
from .formats import Format, SplitSource
from .locate import ImageCache, read_json, read_jsonl, strip_data_prefix

SPLIT_CODES = {"train": 1, "val": 2, "test": 3}


@dataclass(frozen=True)
class OCRVQAData(SplitSource):
    split: str = "test"
    subdir: str = "ocrvqa"
    split_size: int | None = None  # the official count depends on which images still download
    image_dir: str = "images"

    def formats(self, root: Path) -> list[Format]:
        folder = root / self.subdir
        official, jsonl = folder / "dataset.json", folder / f"ocrvqa_{self.split}.jsonl"
        return [
            Format("official", "official", (official,), lambda: self._read(official, root)),
            Format("eval_mm jsonl", "eval_mm", (jsonl,), lambda: _from_jsonl(jsonl, root)),
        ]

    def _read(self, path: Path, root: Path) -> list[Document]:
        folder = path.parent
        images = ImageCache(folder, root=root)
        data = read_json(path)
        if not isinstance(data, dict):
            raise DataError(path, "expected an object keyed by image id")
        code = SPLIT_CODES[self.split]
        docs = []
        for image_id, raw in data.items():
            row = rec.record(raw, source=path, item=image_id)
            split = row.get("split")
            if split not in SPLIT_CODES.values():
                raise DataError(
                    path, f"expected 1, 2 or 3, got {split!r}", item=image_id, field="split"
                )
            if split != code:
                continue
            questions = rec.texts(row, "questions", source=path, item=image_id)
            answers = rec.texts(row, "answers", source=path, item=image_id)
            if len(answers) != len(questions):
                raise DataError(
                    path,
                    f"{len(questions)} questions but {len(answers)} answers",
                    item=image_id,
                    field="answers",
                )
            image = images.get(
                f"{self.image_dir}/{image_id}.jpg",
                source=path,
                item=image_id,
                field="imageURL",
            )
            for n, (question, answer) in enumerate(zip(questions, answers, strict=True)):
                docs.append(
                    Document(
                        id=f"{image_id}_{n}",
                        images=(image,),
                        fields={"question": question, "answers": [answer]},
                    )
                )
        return docs


def _from_jsonl(path: Path, root: Path) -> list[Document]:
    folder = path.parent
    images = ImageCache(folder, root=root, bases=(root, folder))
    docs = []
    for n, raw in enumerate(read_jsonl(path), 1):
        row = rec.record(raw, source=path, item=f"line {n}")
        item = rec.ident(row, "question_id", source=path, item=f"line {n}")
        rel = strip_data_prefix(rec.text(row, "image", source=path, item=item))
        image = images.get(rel, source=path, item=item, field="image")
        answers = rec.text_or_texts(row, "answer", source=path, item=item)
        question = rec.text(row, "question", source=path, item=item)
        docs.append(
            Document(id=item, images=(image,), fields={"question": question, "answers": answers})
        )
    return rec.check_unique(docs, path)
