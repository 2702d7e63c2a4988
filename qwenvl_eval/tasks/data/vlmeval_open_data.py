"""OCRBench, MME and HallusionBench as VLMEvalKit's TSV files and the public HF copies.

- OCRBench: `ocrbench/OCRBench.tsv` (index, question, answer as a list literal, category),
  or echo840/OCRBench, the HF copy lmms-eval reads (`ocrbench/data/test-*.parquet`: dataset,
  question, question_type, answer (list), image). Fields: `answers` (list), `category`.
- MME: `mme/MME.tsv` (index, question, answer Yes/No, category = subtask, image_path; the
  second question of an image names the first row's image), or lmms-lab/MME
  (`mme/test-*.parquet`: question_id = the image's path, question, answer, category).
  Fields: `subtask`, `image_key` (the two questions of an image share it).
- HallusionBench: `hallusionbench/HallusionBench.tsv` (index, question, answer Yes/No,
  category VD/VS, l2-category = subcategory, set_id, figure_id, question_id), or
  lmms-lab/HallusionBench split `image` (the 951 questions with a figure, as VLMEvalKit's
  file has them: category, subcategory, set_id, figure_id, question_id, gt_answer 1/0).
- InfographicVQA val: `infovqa/InfoVQA_VAL.tsv` (index, question, answer as a list literal),
  or lmms-lab/DocVQA config `InfographicVQA` (`infovqa/InfographicVQA/validation-*.parquet`:
  questionId, question, answers, answer_type, image, image_url, operation/reasoning, ocr,
  data_split). Fields: `answers`.
- InfographicVQA test (no public answers): `infovqa/InfoVQA_TEST.tsv` (index, question; the
  question id is the `questionId` column where the file has one, else `index`), or the same
  HF config's split `test` (`infovqa/InfographicVQA/test-*.parquet`, `answers` null). Field:
  `question_id` (int), the id the RRC submission file carries.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

from ...errors import DataError
from . import records as rec
from .vlmeval_bench import BenchSource
from .vlmeval_tsv import VLMEvalRecord


# -- OCRBench ------------------------------------------------------------------------------
def _answer_list(cell: str | None, source: Path, item: str) -> list[str]:
    """VLMEvalKit's OCRBench answers: a Python list literal (read without evaluating code)."""
    if cell is None:
        raise DataError(source, "missing", item=item, field="answer")
    if cell.startswith("[") and cell.endswith("]"):
        try:
            value = ast.literal_eval(cell)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataError(source, "not a valid list", item=item, field="answer") from None
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
    return [cell]


def _ocrbench_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    category = r.fields.get("category")
    if category is None:
        raise DataError(path, "missing", item=r.index, field="category")
    return {"answers": _answer_list(r.answer, path, r.index), "category": category}


def _ocrbench_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    answers = rec.text_or_texts(row, "answer", source=folder, item=item)
    category = rec.text(row, "question_type", source=folder, item=item)
    return {"answers": answers, "answer": answers[0] if answers else "", "category": category}


OCRBENCH = BenchSource(
    subdir="ocrbench",
    tsv="OCRBench.tsv",
    hf_split="test",
    hub_id="echo840/OCRBench",  # no lmms-lab copy: lmms-eval's ocrbench task reads this one
    from_tsv=_ocrbench_tsv,
    from_hf=_ocrbench_hf,
    split_size=1000,
)


# -- MME -------------------------------------------------------------------------------------
def _yes_no(value: Any, source: Path, item: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in ("yes", "no"):
        raise DataError(source, f"expected Yes or No, got {value!r}", item=item, field="answer")
    return value.strip().capitalize()


def _mme_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    subtask = r.fields.get("category")
    if subtask is None:
        raise DataError(path, "missing", item=r.index, field="category")
    # The questions of one image: its path where the file has one, else the picture itself.
    key = r.image_paths[0] if r.image_paths else hashlib.sha256(r.images[0].encode()).hexdigest()
    return {"answer": _yes_no(r.answer, path, r.index), "subtask": subtask, "image_key": key}


def _mme_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    return {
        "answer": _yes_no(row.get("answer"), folder, item),
        "subtask": rec.text(row, "category", source=folder, item=item),
        "image_key": rec.text(row, "question_id", source=folder, item=item),
    }


MME = BenchSource(
    subdir="mme",
    tsv="MME.tsv",
    hf_split="test",
    hub_id="lmms-lab/MME",
    from_tsv=_mme_tsv,
    from_hf=_mme_hf,
    split_size=2374,
)


# -- HallusionBench --------------------------------------------------------------------------
def _hallusion_fields(get: Any, source: Path, item: str, subcategory_key: str) -> dict[str, Any]:
    out = {}
    for key, column in (
        ("category", "category"),
        ("subcategory", subcategory_key),
        ("set_id", "set_id"),
        ("figure_id", "figure_id"),
        ("question_id", "question_id"),
    ):
        value = get(column)
        if value is None:
            raise DataError(source, "missing", item=item, field=column)
        out[key] = str(value)
    return out


def _hallusion_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    fields = _hallusion_fields(r.fields.get, path, r.index, "l2-category")
    return {"answer": _yes_no(r.answer, path, r.index), **fields}


def _hallusion_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    gt = str(row.get("gt_answer"))
    if gt not in ("0", "1"):
        raise DataError(folder, f"expected 1 or 0, got {gt!r}", item=item, field="gt_answer")
    fields = _hallusion_fields(row.get, folder, item, "subcategory")
    return {"answer": "Yes" if gt == "1" else "No", **fields}


HALLUSIONBENCH = BenchSource(
    subdir="hallusionbench",
    tsv="HallusionBench.tsv",
    hf_split="image",
    hub_id="lmms-lab/HallusionBench",
    from_tsv=_hallusion_tsv,
    from_hf=_hallusion_hf,
    split_size=951,
)


# -- InfographicVQA ------------------------------------------------------------------------
def _infovqa_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    return {"answers": _answer_list(r.answer, path, r.index)}


def _infovqa_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    answers = rec.texts(row, "answers", source=folder, item=item)
    return {"answers": answers, "answer": answers[0]}


INFOVQA_VAL = BenchSource(
    subdir="infovqa",
    tsv="InfoVQA_VAL.tsv",
    hf_split="validation",
    hf_subdir="InfographicVQA",
    hub_id="lmms-lab/DocVQA",
    hf_id="questionId",
    from_tsv=_infovqa_tsv,
    from_hf=_infovqa_hf,
    split_size=2801,
)


def _question_id(value: str, source: Path, item: str, field: str) -> dict[str, Any]:
    """The RRC submission file carries `questionId` as an int: a non-integer id is refused
    rather than sent to the server as something it cannot match."""
    if not (value.strip().isascii() and value.strip().isdigit()):
        raise DataError(source, f"expected an integer question id, got {value!r}", item=item,
                        field=field)  # fmt: skip
    return {"question_id": int(value)}


def _infovqa_test_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    if "questionId" in r.fields:
        return _question_id(r.fields["questionId"], path, r.index, "questionId")
    return _question_id(r.index, path, r.index, "index")


def _infovqa_test_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    return _question_id(item, folder, item, "questionId")  # item: the `questionId` cell


INFOVQA_TEST = BenchSource(
    subdir="infovqa",
    tsv="InfoVQA_TEST.tsv",
    hf_split="test",
    hf_subdir="InfographicVQA",
    hub_id="lmms-lab/DocVQA",
    hf_id="questionId",
    from_tsv=_infovqa_test_tsv,
    from_hf=_infovqa_test_hf,
    split_size=3288,
    answered=False,
)
