"""GQA test-dev balanced, in the formats users have:
- official `gqa/testdev_balanced_questions.json`: a dict question id -> {imageId, question,
  answer, fullAnswer, ...}, images `gqa/images/<imageId>.jpg`;
- LAVIS's copy under the same name: a LIST of `{image, question_id, question, answer}`;
- Qwen-VL eval_mm `gqa/testdev_balanced.jsonl`: lines `{image, question, question_id,
  answer}`, `image` relative to the folder holding `data/`;
- lmms-lab/GQA parquet (two configs: `testdev_balanced_instructions` with `id, imageId,
  question, answer` and `testdev_balanced_images` with `id` (= imageId), `image`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ...types import Document
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import ImageCache, read_json, read_jsonl, strip_data_prefix
from .records import check_unique, require

INSTRUCTIONS = "testdev_balanced_instructions"
IMAGES = "testdev_balanced_images"


def _doc(qid: str, image, question: str, answer: str | list[str], full: str | None) -> Document:
    """`answer`: one string, or (eval_mm lines) a list: eval_mm's exact match takes any."""
    answers = [answer] if isinstance(answer, str) else answer
    fields = {"question": question, "answer": answers[0], "answers": answers, "question_id": qid}
    if full is not None:
        fields["full_answer"] = full
    return Document(id=qid, images=(image,), fields=fields)


@dataclass(frozen=True)
class GQASource(SplitSource):
    subdir: str = "gqa"
    questions: str = "testdev_balanced_questions.json"
    image_dir: str = "images"
    split_size: int | None = 12578

    eval_mm: str = "testdev_balanced.jsonl"

    def formats(self, root: Path) -> list[Format]:
        task_dir = root / self.subdir
        path = task_dir / self.questions
        jsonl = task_dir / self.eval_mm
        lavis = _starts_with(path, "[")
        return [
            Format(
                "LAVIS list" if lavis else "official",
                "official",
                (path,),
                lambda: self._read_json(path, task_dir, root),
            ),
            Format(
                "eval_mm jsonl",
                "eval_mm",
                (jsonl,),
                lambda: self._read_rows(read_jsonl(jsonl), jsonl, task_dir, root, eval_mm=True),
            ),
            Format(
                "hf parquet",
                "hf",
                tuple(parquet_files(task_dir / INSTRUCTIONS, "testdev"))
                or (task_dir / INSTRUCTIONS / "testdev-*.parquet",),
                lambda: read_gqa_parquet(task_dir),
            ),
        ]

    def _read_json(self, path: Path, task_dir: Path, root: Path) -> list[Document]:
        blob = read_json(path)
        if isinstance(blob, list):
            return self._read_rows(blob, path, task_dir, root, eval_mm=False)
        if not isinstance(blob, dict):
            raise DataError(path, "expected an object mapping question ids to questions")
        images = ImageCache(task_dir, root=root)
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

    def _read_rows(
        self, rows: list, path: Path, task_dir: Path, root: Path, *, eval_mm: bool
    ) -> list[Document]:
        """`{image, question_id, question, answer}` rows: LAVIS's list (image names in
        `images/`) or eval_mm's lines (paths from the folder holding `data/`)."""
        bases = (root, task_dir) if eval_mm else (task_dir / self.image_dir, task_dir)
        images = ImageCache(task_dir, root=root, bases=bases)
        docs = []
        for n, q in enumerate(rows):
            qid = str(require(q, "question_id", (str, int), source=path, item=f"#{n}"))
            question = require(q, "question", str, source=path, item=qid)
            # eval_mm scores `answer` as a string or a list of strings, whichever the line has
            answer = rec.text_or_texts(q, "answer", source=path, item=qid)
            rel = require(q, "image", str, source=path, item=qid)
            image = images.get(strip_data_prefix(rel), source=path, item=qid, field="image")
            docs.append(_doc(qid, image, question, answer, None))
        return check_unique(docs, path)


def _starts_with(path: Path, char: str) -> bool:
    """Whether a JSON file's first non-blank character is `char` (a list or an object)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096).lstrip()
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith(char)


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
