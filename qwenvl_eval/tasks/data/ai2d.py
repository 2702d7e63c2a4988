"""AI2D (AI2 Diagrams) test questions: the Qwen-VL JSONL, or an lmms-lab/ai2d parquet folder.

Formats read
- Qwen-VL's converted file (`eval_mm/EVALUATION.md`: `ai2diagram/test.jsonl`), read from
  `ai2d/test.jsonl` or `ai2diagram/test.jsonl`, one JSON object a line: `{"image",
  "question", "answer", "question_id"?}`. `image` is relative to the folder holding `data/`
  (a `data/` prefix is dropped), or to the task folder; `question` is used verbatim
  (it carries the options the way the file writes them); `answer` is a string or a list of
  strings. Without `question_id` the line number (from 0) is the id.
- lmms-lab/ai2d (`ai2d/data/test-*.parquet`): `question`, `options` (list), `answer` (the
  correct option's index, as a string), `image`. These are written in the JSONL's form: the
  question followed by one `A. option` line per option, and the references are the correct
  option's letter and its text (exact match accepts either).

Documents: fields `question`, `answers`.

`AI2DChoiceData` reads AI2D as multiple choice, the form the Qwen2-VL report is scored in:
first VLMEvalKit's own file, `ai2d/AI2D_TEST.tsv` (index, base64 image, question, A-D,
answer letter; layout `official`), then the files above, whose `A. ...` option lines are read
out of the question (which keeps its stem) and whose reference becomes the letter it names
(an answer given as the option's text is mapped to its letter). Documents: fields `question`
(the stem), `options` ({letter: text}), `answer` (a letter), `hint`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell
from .locate import ImageCache, read_jsonl, strip_data_prefix
from .vlmeval_bench import BenchSource
from .vlmeval_choice_data import split_realworldqa_question
from .vlmeval_tsv import VLMEvalRecord

_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class AI2DData(SplitSource):
    subdir: str = "ai2d"
    split_size: int | None = 3088  # test questions in the lmms-lab copy (the usual test set)
    file: str = "test.jsonl"
    eval_mm_dir: str = "ai2diagram"
    hub_id: str = "lmms-lab/ai2d"

    def formats(self, root: Path) -> list[Format]:
        out = [
            Format("eval_mm jsonl", "eval_mm", (p,), lambda p=p: _from_jsonl(p, root))
            for p in (root / self.subdir / self.file, root / self.eval_mm_dir / self.file)
        ]
        return out + hf_formats(root / self.subdir, "test", _from_rows, hub_id=self.hub_id)


def _from_jsonl(path: Path, root: Path) -> list[Document]:
    folder = path.parent
    images = ImageCache(folder, root=root, bases=(root, folder))
    docs = []
    for n, raw in enumerate(read_jsonl(path)):
        row = rec.record(raw, source=path, item=f"line {n + 1}")
        item = (
            rec.ident(row, "question_id", source=path, item=f"line {n + 1}")
            if ("question_id" in row)
            else str(n)
        )
        answers = rec.text_or_texts(row, "answer", source=path, item=item)
        rel = strip_data_prefix(rec.text(row, "image", source=path, item=item))
        image = images.get(rel, source=path, item=item, field="image")
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
    return rec.check_unique(docs, path)


def _from_rows(rows: list[dict], folder: Path) -> list[Document]:
    docs = []
    for n, row in enumerate(rows):
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


@dataclass(frozen=True)
class AI2DChoiceData(AI2DData):
    """The AI2D files above, each item as multiple choice (see the module's docstring)."""

    tsv: str = "AI2D_TEST.tsv"

    def formats(self, root: Path) -> list[Format]:
        # Only the TSV format of this source is used: the HF copy is read below, as `ai2d` reads it.
        vlmeval = BenchSource(self.subdir, self.tsv, "test", _letter_answer, _no_hf)
        return [vlmeval.formats(root)[0]] + [
            replace(f, read=lambda f=f: [as_choice(d, f.needs[0]) for d in f.read()])
            for f in super().formats(root)
        ]


def _letter_answer(record: VLMEvalRecord, source: Path) -> dict[str, Any]:
    """The TSV row's answer must be one of its option letters; nothing to add."""
    if record.answer not in record.options:
        raise DataError(
            source,
            f"answer {record.answer!r} is not one of {', '.join(record.options) or 'no options'}",
            item=record.index,
            field="answer",
        )
    return {}


def _no_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    raise AssertionError("AI2DChoiceData reads the HF copy through AI2DData")


def as_choice(doc: Document, source: Path) -> Document:
    """One AI2D item with its options and answer letter read out of its question/answers."""
    stem, options = split_realworldqa_question(doc.fields["question"])
    if not options:
        raise DataError(
            source, "no 'A. ...' option lines in the question", item=doc.id, field="question"
        )
    answers = [a.strip() for a in doc.fields["answers"]]
    letter = next((a for a in answers if a in options), None)
    if letter is None:
        by_text = {v.strip().lower(): k for k, v in options.items()}
        letter = next((by_text[a.lower()] for a in answers if a.lower() in by_text), None)
    if letter is None:
        raise DataError(
            source,
            f"{doc.fields['answers']!r} is neither an option letter nor an option's text "
            f"(options {', '.join(options)})",
            item=doc.id,
            field="answer",
        )
    fields = {"question": stem, "options": options, "answer": letter, "hint": None}
    return Document(id=doc.id, images=doc.images, fields=fields)
