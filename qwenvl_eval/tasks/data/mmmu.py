"""MMMU validation as VLMEvalKit's TSV and the lmms-lab copy.

- `mmmu/MMMU_DEV_VAL.tsv` (VLMEvalKit): index, question, options in A-I, answer, image (a
  list of pictures for several), split (`dev` / `validation`: only validation rows are read),
  id (`validation_Art_Theory_12`, which names the subject), category.
- lmms-lab/MMMU split `validation` (`mmmu/validation-*.parquet`): id, question, options (a
  Python list literal), answer, question_type (`multiple-choice` / `open`), image_1..image_7.

Fields: `subject` (the MMMU folder name, e.g. `Art_Theory`), `question_type`; `answer` is a
letter for multiple choice and the reference text (or list of texts) for open questions.
"""

from __future__ import annotations

import ast
import string
from pathlib import Path
from typing import Any

from ...errors import DataError
from .vlmeval_bench import BenchSource
from .vlmeval_tsv import VLMEvalRecord


def subject_of(qid: str | None, category: str | None) -> str | None:
    """`validation_Art_Theory_12` -> `Art_Theory`; else the category with `_` for spaces."""
    if qid and qid.count("_") >= 2:
        return qid.split("_", 1)[1].rsplit("_", 1)[0]
    return category.replace(" ", "_") if category else None


def _literal_list(cell: Any, source: Path, item: str, field: str) -> list[str] | None:
    if isinstance(cell, list):
        return [str(v) for v in cell]
    if isinstance(cell, str) and cell.startswith("[") and cell.endswith("]"):
        try:
            value = ast.literal_eval(cell)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataError(source, "not a valid list", item=item, field=field) from None
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
    return None


def _mmmu_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    subject = subject_of(r.fields.get("id"), r.fields.get("category"))
    if subject is None:
        raise DataError(path, "no subject (id or category)", item=r.index, field="id")
    answer: Any = r.answer
    if not r.options:
        answer = _literal_list(r.answer, path, r.index, "answer") or r.answer
    kind = "multiple-choice" if r.options else "open"
    return {"subject": subject, "question_type": kind, "answer": answer}


def _mmmu_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    subject = subject_of(row.get("id"), row.get("subfield"))
    if subject is None:
        raise DataError(folder, "no subject", item=item, field="id")
    options = _literal_list(row.get("options"), folder, item, "options") or []
    letters = string.ascii_uppercase
    answer: Any = row.get("answer")
    kind = row.get("question_type") or ("multiple-choice" if options else "open")
    if kind == "open":
        options = []
        answer = _literal_list(answer, folder, item, "answer") or answer
    return {
        "options": {letters[i]: o for i, o in enumerate(options)},
        "subject": subject,
        "question_type": kind,
        "answer": answer,
    }


MMMU_VAL = BenchSource(
    subdir="mmmu",
    tsv="MMMU_DEV_VAL.tsv",
    tsv_split="validation",
    hf_split="validation",
    hub_id="lmms-lab/MMMU",
    hf_id="id",
    from_tsv=_mmmu_tsv,
    from_hf=_mmmu_hf,
    split_size=900,
)
