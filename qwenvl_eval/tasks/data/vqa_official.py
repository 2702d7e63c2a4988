"""Readers for the VQA-accuracy benchmarks in the formats users already have.

Each split declares its formats once (`VQASource.formats`), in order of preference:
1. the official files (VQAv2 / OK-VQA questions + annotations, VizWiz `val.json`,
   TextVQA `TextVQA_0.5.1_val.json`);
2. `<split>.jsonl`, rows `{"question_id", "image", "question", "answers"}` (`image` relative
   to the task folder; `answers` a list of strings or of `{"answer": ...}`);
3. the Qwen-VL eval_mm converted files (`vqav2/vqav2_val.jsonl`, ...): rows `{"image",
   "question", "question_id", "answer"}` with `image` relative to the folder that holds
   `data/` (`data/vizwiz/test/x.jpg`), scored against the VQA-format annotations file the
   eval_mm script names (`vqav2/v2_mscoco_val2014_annotations.json`,
   `textvqa/textvqa_val_annotations.json`, ...), or against 10 answers on the line itself;
4. a Hugging Face copy (lmms-lab layout, see `vqa_rows`): parquet shards, a `save_to_disk`
   folder, or the dataset in the local hub cache.

Every document carries `fields = {"question", "answers" (list[str] | None), "question_id"}`
plus format-specific extras; `id` is the official question id as a string. A scored item
must have exactly 10 human answers: the VQA metric is a mean over the 10 leave-one-out
subsets, and with 3 answers a perfect prediction would score 0.667.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ...errors import DataError
from ...types import Document, ImageRef
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell
from .locate import ImageCache, read_json, read_jsonl, strip_data_prefix
from .records import check_unique, require

VQA_ANSWERS = 10  # human answers per question in every VQA-accuracy benchmark


# -- field checks ---------------------------------------------------------------------------
def answer_strings(
    value: Any, *, source: Path | str, item: str, field: str = "answers"
) -> list[str]:
    """The 10 human answers as strings, from a list of strings or of `{"answer": str, ...}`."""
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(source, "expected a non-empty list of answers", item=item, field=field)
    if len(value) != VQA_ANSWERS:
        raise DataError(
            source,
            f"expected {VQA_ANSWERS} human answers, got {len(value)} (VQA accuracy averages "
            f"over the {VQA_ANSWERS} leave-one-out subsets; other counts would score wrongly)",
            item=item,
            field=field,
        )
    out = [a.get("answer") if type(a) is dict else a for a in value]
    if not all(type(a) is str for a in out):
        raise DataError(
            source, "expected answer strings (or {'answer': str})", item=item, field=field
        )
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


def _annotations_by_qid(
    apath: Path, qid_types: type | tuple[type, ...], key: Callable[[Any], Any] = lambda q: q
) -> dict[Any, dict]:
    """A VQA-format annotations file: key(question id) -> its annotation. A question id
    given twice is refused (the last one would silently win)."""
    annotations = read_json(apath)
    alist = annotations.get("annotations") if isinstance(annotations, dict) else None
    if not isinstance(alist, list):
        raise DataError(apath, "expected an object with an 'annotations' list", field="annotations")
    out: dict[Any, dict] = {}
    for n, ann in enumerate(alist):
        qid = key(require(ann, "question_id", qid_types, source=apath, item=f"#{n}"))
        if qid in out:
            raise DataError(apath, "duplicate question id", item=str(qid), field="question_id")
        out[qid] = ann
    return out


def read_vqa_annotations(apath: Path) -> dict[str, list[str]]:
    """Question id (as a string) -> its 10 answers."""
    return {
        qid: answer_strings(ann.get("answers"), source=apath, item=qid)
        for qid, ann in _annotations_by_qid(apath, (int, str), str).items()
    }


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
            answers_by_qid = _annotations_by_qid(apath, int)
        images = ImageCache(task_dir, shared=data_root / "coco", root=data_root)
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
        images = ImageCache(task_dir, root=data_root)
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
        images = ImageCache(task_dir, root=data_root)
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


# -- JSONL, eval_mm and HF copies ----------------------------------------------------------
def _line_answers(row: dict, *, source: Path, item: str) -> list[str] | None:
    """10 answers carried on the line itself (`answers`, or a list-valued `answer`)."""
    for key in ("answers", "answer"):
        if isinstance(row.get(key), list):
            return answer_strings(row[key], source=source, item=item, field=key)
    return None


def read_vqa_jsonl(
    path: Path,
    images: ImageCache,
    *,
    has_answers: bool,
    annotations: dict[str, list[str]] | None = None,
    annotations_path: Path | None = None,
    image_name_id: bool = False,
) -> list[Document]:
    """One JSON object per line: `question_id`, `image`, `question`, and for scored splits
    the 10 answers (on the line, or in `annotations` by question id). `image_name_id`:
    the question id is the bare image file name (VizWiz, as its server wants it)."""
    rows = read_jsonl(path)
    docs: list[Document] = []
    for n, row in enumerate(rows, 1):
        rel = require(row, "image", str, source=path, item=f"line {n}")
        if image_name_id:
            qid: Any = rel.rsplit("/", 1)[-1]
        else:
            qid = require(row, "question_id", (int, str), source=path, item=f"line {n}")
        item = str(qid)
        question = require(row, "question", str, source=path, item=item)
        image = images.get(strip_data_prefix(rel), source=path, item=item, field="image")
        answers = None
        if has_answers:
            # The annotations file eval_mm scores with wins; the line's answer (often 1 or 3
            # answers in eval_mm's files) is only a fallback for questions it lacks.
            key = str(row.get("question_id", qid))
            if annotations is not None:
                answers = annotations.get(key)
            if answers is None:
                answers = _line_answers(row, source=path, item=item)
            if answers is None and annotations is not None:
                raise DataError(
                    annotations_path or path,
                    "no annotation for this question",
                    item=key,
                    field="question_id",
                )
            if answers is None:
                raise DataError(
                    path,
                    f"expected the {VQA_ANSWERS} human answers on the line ('answers'), or "
                    "the annotations file beside it",
                    item=item,
                    field="answers",
                )
        docs.append(_doc(qid, image, question, answers))
    return check_unique(docs, path)


def vqa_rows(
    rows: list[dict], source: Path, *, has_answers: bool, image_name_id: bool = False
) -> list[Document]:
    """A Hugging Face copy (lmms-lab/VQAv2, OK-VQA, VizWiz-VQA, textvqa): columns
    `question_id`, `question`, `image` (an HF Image cell) and, for scored splits, `answers`
    (a list of strings or of `{answer, answer_confidence, answer_id}`). `image_name_id`
    (VizWiz): the id is the image's file name with its extension, as the server wants it."""
    docs: list[Document] = []
    for n, row in enumerate(rows):
        qid = require(row, "question_id", (int, str), source=source, item=f"row {n}")
        if image_name_id:
            qid = image_file_name(str(qid), row.get("image"))
        item = str(qid)
        question = require(row, "question", str, source=source, item=item)
        image = image_from_cell(row.get("image"), source=source, item=item, field="image")
        answers = (
            answer_strings(row.get("answers"), source=source, item=item) if has_answers else None
        )
        docs.append(_doc(qid, image, question, answers))
    return check_unique(docs, source)


def image_file_name(qid: str, cell: Any) -> str:
    """VizWiz's question id is its image's file name: the cell's own file name when it has
    one, else the id, with VizWiz's `.jpg` when it comes without an extension
    (`VizWiz_test_00000000` -> `VizWiz_test_00000000.jpg`)."""
    name = getattr(cell, "name", None) or (cell.get("path") if isinstance(cell, dict) else None)
    if isinstance(name, str) and PurePosixPath(name).suffix:
        stem = PurePosixPath(name).name
        if PurePosixPath(stem).stem == PurePosixPath(qid).stem:
            return stem
    return qid if PurePosixPath(qid).suffix else f"{qid}.jpg"


@dataclass(frozen=True)
class EvalMM:
    """The Qwen-VL eval_mm files of one split: its jsonl and (scored splits) the VQA-format
    annotations file `evaluate_vqa.py` scores with, both in the task folder."""

    jsonl: str  # "vqav2_val.jsonl"
    annotations: str | None = None  # "v2_mscoco_val2014_annotations.json"


# -- the data source ------------------------------------------------------------------------
@dataclass(frozen=True)
class VQASource(SplitSource):
    """One split of one VQA benchmark, in every format it is known in (see the module doc)."""

    subdir: str
    split: str  # names the JSONL file
    official: OfficialFormat
    parquet_split: str | None = None
    split_size: int | None = None
    has_answers: bool = True
    eval_mm: EvalMM | None = None
    hub_id: str | None = None
    image_name_id: bool = False  # VizWiz: the question id is the image file name

    def formats(self, root: Path) -> list[Format]:
        task_dir = root / self.subdir
        official = self.official.files(task_dir)
        out = [
            Format(
                "official",
                "official",
                tuple(official),
                lambda: self.official.read(task_dir, root),
            )
        ]
        jsonl = task_dir / f"{self.split}.jsonl"
        out.append(
            Format(
                "jsonl",
                "official",
                (jsonl,),
                lambda: read_vqa_jsonl(
                    jsonl,
                    ImageCache(task_dir, root=root, bases=(task_dir, root)),
                    has_answers=self.has_answers,
                    image_name_id=self.image_name_id,
                ),
            )
        )
        if self.eval_mm is not None:
            out.extend(self._eval_mm_formats(root, task_dir, self.eval_mm))
        if self.parquet_split:
            out.extend(
                hf_formats(
                    task_dir,
                    self.parquet_split,
                    lambda rows, where: vqa_rows(
                        rows,
                        where,
                        has_answers=self.has_answers,
                        image_name_id=self.image_name_id,
                    ),
                    hub_id=self.hub_id,
                )
            )
        return out

    def _eval_mm_formats(self, root: Path, task_dir: Path, spec: EvalMM) -> list[Format]:
        path = task_dir / spec.jsonl

        def read(annotations: Path | None) -> list[Document]:
            return read_vqa_jsonl(
                path,
                # eval_mm names images from the folder holding data/ (the data root here)
                ImageCache(task_dir, root=root, bases=(root, task_dir)),
                has_answers=self.has_answers,
                annotations=read_vqa_annotations(annotations) if annotations else None,
                annotations_path=annotations,
                image_name_id=self.image_name_id,
            )

        out = []
        if self.has_answers and spec.annotations:
            ann = task_dir / spec.annotations
            out.append(
                Format("eval_mm jsonl + annotations", "eval_mm", (path, ann), lambda: read(ann))
            )
        out.append(Format("eval_mm jsonl", "eval_mm", (path,), lambda: read(None)))
        return out
