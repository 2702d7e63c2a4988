"""Readers for the VQA-accuracy benchmarks in the formats users already have.

Each split is read from `<data root>/<subdir>/`, trying in order:
1. the official files (VQAv2 / OK-VQA questions + annotations, VizWiz `val.json`,
   TextVQA `TextVQA_0.5.1_val.json`, GQA `testdev_balanced_questions.json`);
2. one JSONL per split, `<split>.jsonl`, rows `{"question_id", "image", "question",
   "answers"}` (`image` relative to the task folder; `answers` a list of strings or of
   `{"answer": ...}`; absent for test splits);
3. a local Hugging Face parquet copy (lmms-lab layout, see `read_vqa_parquet`).

Every document carries `fields = {"question", "answers" (list[str] | None), "question_id"}`
plus format-specific extras; `id` is the official question id as a string.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ...errors import DataError
from ...types import Document, ImageRef
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import ImageCache, read_json, read_jsonl
from .records import check_unique, require


# -- field checks ---------------------------------------------------------------------------
def answer_strings(
    value: Any, *, source: Path | str, item: str, field: str = "answers"
) -> list[str]:
    """Human answers as strings, from a list of strings or of `{"answer": str, ...}`."""
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(source, "expected a non-empty list of answers", item=item, field=field)
    out: list[str] = []
    for a in value:
        if isinstance(a, dict):
            a = a.get("answer")
        if not isinstance(a, str):
            raise DataError(
                source, "expected answer strings (or {'answer': str})", item=item, field=field
            )
        out.append(a)
    return out


def most_common_answer(doc: Document) -> str:
    """The answer most humans gave (first given wins a tie): the shot answer for few-shot."""
    answers = doc.fields.get("answers")
    if not answers:
        raise DataError(
            "<train split>", "a few-shot example needs answers", item=doc.id, field="answers"
        )
    return Counter(answers).most_common(1)[0][0]


def _doc(
    qid: Any, image: ImageRef, question: str, answers: list[str] | None, **extra: Any
) -> Document:
    fields = {"question": question, "answers": answers, "question_id": qid, **extra}
    return Document(id=str(qid), images=(image,), fields=fields)


# -- official formats -----------------------------------------------------------------------
class OfficialFormat(Protocol):
    def files(self, task_dir: Path) -> list[Path]: ...

    def read(self, task_dir: Path, data_root: Path) -> list[Document]: ...


@dataclass(frozen=True)
class VQAPairFormat:
    """VQAv2 / OK-VQA: `{"questions": [{question_id, image_id, question}]}` plus
    `{"annotations": [{question_id, answers: [{answer, ...}] x 10, ...}]}` (no annotations
    for test splits); images `<folder>/COCO_<folder>_<image_id:012d>.jpg`, looked up in the
    task folder, then in `<root>/coco/` (COCO images shared between tasks)."""

    questions: str
    annotations: str | None
    image_template: str  # e.g. "val2014/COCO_val2014_{image_id:012d}.jpg"

    def files(self, task_dir: Path) -> list[Path]:
        names = [self.questions] + ([self.annotations] if self.annotations else [])
        return [task_dir / n for n in names]

    def read(self, task_dir: Path, data_root: Path) -> list[Document]:
        qpath = task_dir / self.questions
        questions = read_json(qpath)
        qlist = questions.get("questions") if isinstance(questions, dict) else None
        if not isinstance(qlist, list):
            raise DataError(qpath, "expected an object with a 'questions' list", field="questions")
        answers_by_qid: dict[int, dict] | None = None
        apath = task_dir / self.annotations if self.annotations else None
        if apath is not None:
            annotations = read_json(apath)
            alist = annotations.get("annotations") if isinstance(annotations, dict) else None
            if not isinstance(alist, list):
                raise DataError(
                    apath, "expected an object with an 'annotations' list", field="annotations"
                )
            answers_by_qid = {}
            for n, ann in enumerate(alist):
                qid = require(ann, "question_id", int, source=apath, item=f"#{n}")
                answers_by_qid[qid] = ann
        images = ImageCache(task_dir, shared=data_root / "coco")
        docs: list[Document] = []
        for n, q in enumerate(qlist):
            qid = require(q, "question_id", int, source=qpath, item=f"#{n}")
            item = str(qid)
            question = require(q, "question", str, source=qpath, item=item)
            image_id = require(q, "image_id", int, source=qpath, item=item)
            image = images.get(
                self.image_template.format(image_id=image_id),
                source=qpath,
                item=item,
                field="image_id",
            )
            answers = None
            extra: dict[str, Any] = {"image_id": image_id}
            if answers_by_qid is not None:
                assert apath is not None
                ann = answers_by_qid.get(qid)
                if ann is None:
                    raise DataError(
                        apath, "no annotation for this question", item=item, field="question_id"
                    )
                answers = answer_strings(ann.get("answers"), source=apath, item=item)
                for key in ("answer_type", "question_type", "multiple_choice_answer"):
                    if key in ann:
                        extra[key] = ann[key]
            docs.append(_doc(qid, image, question, answers, **extra))
        return check_unique(docs, qpath)


@dataclass(frozen=True)
class VizWizFormat:
    """VizWiz: `val.json` (or `Annotations/val.json`), a list of `{image, question, answers:
    [{answer, answer_confidence}] x 10, answerable, answer_type}` (test: no answers); images
    in `<image_dir>/<image>`. The image name is the question id (as the official server's
    submission file `[{"image", "answer"}]` uses it)."""

    annotations: str  # "val.json"
    image_dir: str  # "val"
    has_answers: bool = True

    def _path(self, task_dir: Path) -> Path:
        direct = task_dir / self.annotations
        nested = task_dir / "Annotations" / self.annotations
        return nested if not direct.is_file() and nested.is_file() else direct

    def files(self, task_dir: Path) -> list[Path]:
        return [self._path(task_dir)]

    def read(self, task_dir: Path, data_root: Path) -> list[Document]:
        path = self._path(task_dir)
        rows = read_json(path)
        if not isinstance(rows, list):
            raise DataError(path, "expected a list of questions")
        images = ImageCache(task_dir)
        docs: list[Document] = []
        for n, row in enumerate(rows):
            name = require(row, "image", str, source=path, item=f"#{n}")
            question = require(row, "question", str, source=path, item=name)
            image = images.get(f"{self.image_dir}/{name}", source=path, item=name, field="image")
            answers = None
            extra: dict[str, Any] = {}
            if self.has_answers:
                answers = answer_strings(row.get("answers"), source=path, item=name)
                extra = {k: row[k] for k in ("answerable", "answer_type") if k in row}
            docs.append(_doc(name, image, question, answers, **extra))
        return check_unique(docs, path)


@dataclass(frozen=True)
class TextVQAFormat:
    """TextVQA 0.5.1: `{"data": [{question_id, question, image_id, answers: [str] x 10,
    ...}]}`; images `train_images/<image_id>.jpg` (val images live with train's)."""

    annotations: str  # "TextVQA_0.5.1_val.json"
    image_dir: str = "train_images"
    has_answers: bool = True

    def files(self, task_dir: Path) -> list[Path]:
        return [task_dir / self.annotations]

    def read(self, task_dir: Path, data_root: Path) -> list[Document]:
        path = task_dir / self.annotations
        blob = read_json(path)
        rows = blob.get("data") if isinstance(blob, dict) else None
        if not isinstance(rows, list):
            raise DataError(path, "expected an object with a 'data' list", field="data")
        images = ImageCache(task_dir)
        docs: list[Document] = []
        for n, row in enumerate(rows):
            qid = require(row, "question_id", int, source=path, item=f"#{n}")
            item = str(qid)
            question = require(row, "question", str, source=path, item=item)
            image_id = require(row, "image_id", str, source=path, item=item)
            image = images.get(
                f"{self.image_dir}/{image_id}.jpg", source=path, item=item, field="image_id"
            )
            answers = (
                answer_strings(row.get("answers"), source=path, item=item)
                if self.has_answers
                else None
            )
            docs.append(_doc(qid, image, question, answers, image_id=image_id))
        return check_unique(docs, path)


# -- JSONL and parquet ----------------------------------------------------------------------
def read_vqa_jsonl(path: Path, task_dir: Path, *, has_answers: bool) -> list[Document]:
    """One JSON object per line: `question_id`, `image` (relative to the task folder),
    `question`, `answers` (scored splits)."""
    rows = read_jsonl(path)
    images = ImageCache(task_dir)
    docs: list[Document] = []
    for n, row in enumerate(rows, 1):
        qid = require(row, "question_id", (int, str), source=path, item=f"line {n}")
        item = str(qid)
        rel = require(row, "image", str, source=path, item=item)
        question = require(row, "question", str, source=path, item=item)
        image = images.get(rel, source=path, item=item, field="image")
        answers = (
            answer_strings(row.get("answers"), source=path, item=item) if has_answers else None
        )
        docs.append(_doc(qid, image, question, answers))
    return check_unique(docs, path)


def read_vqa_parquet(task_dir: Path, split: str, *, has_answers: bool) -> list[Document]:
    """A local copy of an lmms-lab dataset (lmms-lab/VQAv2, OK-VQA, VizWiz-VQA, textvqa):
    columns `question_id`, `question`, `image` (an HF Image cell) and, for scored splits,
    `answers` (a list of strings or of `{answer, answer_confidence, answer_id}`)."""
    rows = read_parquet_split(task_dir, split)
    source = task_dir / f"{split}-*.parquet"
    docs: list[Document] = []
    for n, row in enumerate(rows):
        qid = require(row, "question_id", (int, str), source=source, item=f"row {n}")
        item = str(qid)
        question = require(row, "question", str, source=source, item=item)
        image = image_from_cell(row.get("image"), source=source, item=item, field="image")
        answers = (
            answer_strings(row.get("answers"), source=source, item=item) if has_answers else None
        )
        docs.append(_doc(qid, image, question, answers))
    return check_unique(docs, source)


# -- the data source ------------------------------------------------------------------------
@dataclass(frozen=True)
class VQASource:
    """One split of one VQA benchmark: official files, else `<split>.jsonl`, else parquet."""

    subdir: str
    split: str  # names the JSONL file
    official: OfficialFormat
    parquet_split: str | None = None
    split_size: int | None = None
    has_answers: bool = True

    def expected(self, root: Path) -> list[Path]:
        return self.official.files(root / self.subdir)

    def load(self, root: Path) -> list[Document]:
        task_dir = root / self.subdir
        official = self.official.files(task_dir)
        if official[0].is_file():
            return self.official.read(task_dir, root)
        jsonl = task_dir / f"{self.split}.jsonl"
        if jsonl.is_file():
            return read_vqa_jsonl(jsonl, task_dir, has_answers=self.has_answers)
        if self.parquet_split and parquet_files(task_dir, self.parquet_split):
            return read_vqa_parquet(task_dir, self.parquet_split, has_answers=self.has_answers)
        parquet = (
            f", or parquet files {task_dir}/data/{self.parquet_split}-*.parquet"
            if self.parquet_split
            else ""
        )
        raise DataError(
            official[0],
            f"file not found (the {self.subdir} {self.split} split needs the official files "
            f"{', '.join(p.name for p in official)}, or {jsonl.name}{parquet})",
        )
