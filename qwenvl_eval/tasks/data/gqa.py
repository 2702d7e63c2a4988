"""GQA: the official `testdev_balanced_questions.json` (a dict question id -> {imageId,
question, answer, fullAnswer, ...}) with images `images/<imageId>.jpg`, or a local copy of
lmms-lab/GQA (two parquet configs: `testdev_balanced_instructions` with `id, imageId,
question, answer` and `testdev_balanced_images` with `id` (= imageId), `image`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ...types import Document
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import ImageCache, read_json
from .records import check_unique, require

INSTRUCTIONS = "testdev_balanced_instructions"
IMAGES = "testdev_balanced_images"


def _doc(qid: str, image, question: str, answer: str, full: str | None) -> Document:
    fields = {"question": question, "answer": answer, "answers": [answer], "question_id": qid}
    if full is not None:
        fields["full_answer"] = full
    return Document(id=qid, images=(image,), fields=fields)


@dataclass(frozen=True)
class GQASource:
    subdir: str = "gqa"
    questions: str = "testdev_balanced_questions.json"
    image_dir: str = "images"
    split_size: int | None = 12578

    def expected(self, root: Path) -> list[Path]:
        return [root / self.subdir / self.questions]

    def load(self, root: Path) -> list[Document]:
        task_dir = root / self.subdir
        path = task_dir / self.questions
        if not path.is_file() and parquet_files(task_dir / INSTRUCTIONS, "testdev"):
            return read_gqa_parquet(task_dir)
        blob = read_json(path)
        if not isinstance(blob, dict):
            raise DataError(path, "expected an object mapping question ids to questions")
        images = ImageCache(task_dir)
        docs = []
        for qid, q in blob.items():
            question = require(q, "question", str, source=path, item=qid)
            answer = require(q, "answer", str, source=path, item=qid)
            image_id = require(q, "imageId", str, source=path, item=qid)
            image = images.get(
                f"{self.image_dir}/{image_id}.jpg", source=path, item=qid, field="imageId"
            )
            full = q.get("fullAnswer") if isinstance(q.get("fullAnswer"), str) else None
            docs.append(_doc(str(qid), image, question, answer, full))
        return check_unique(docs, path)


def read_gqa_parquet(task_dir: Path) -> list[Document]:
    questions = read_parquet_split(task_dir / INSTRUCTIONS, "testdev")
    image_rows = read_parquet_split(task_dir / IMAGES, "testdev")
    source = task_dir / INSTRUCTIONS
    cells = {str(r.get("id")): r.get("image") for r in image_rows}
    docs = []
    for n, row in enumerate(questions):
        qid = str(require(row, "id", (str, int), source=source, item=f"row {n}"))
        question = require(row, "question", str, source=source, item=qid)
        answer = require(row, "answer", str, source=source, item=qid)
        image_id = str(require(row, "imageId", (str, int), source=source, item=qid))
        if image_id not in cells:
            raise DataError(task_dir / IMAGES, f"no image {image_id!r}", item=qid, field="imageId")
        image = image_from_cell(
            cells[image_id], source=task_dir / IMAGES, item=image_id, field="image"
        )
        full = row.get("fullAnswer") if isinstance(row.get("fullAnswer"), str) else None
        docs.append(_doc(qid, image, question, answer, full))
    return check_unique(docs, source)
