"""MathVista testmini as VLMEvalKit's TSV and the AI4Math/MathVista copy.

- `mathvista/MathVista_MINI.tsv` (VLMEvalKit): index, question (MathVista's `query`, its hint
  included), answer, question_type, answer_type, choices (a list literal), precision, and the
  metadata columns task, category, source, context, grade, skills (a list literal), language.
- AI4Math/MathVista split `testmini` (`mathvista/testmini-*.parquet`): pid, query, answer,
  question_type, answer_type, choices, precision, decoded_image, metadata {task, category,
  source, context, grade, skills, language, ...}.

Fields: `question` (the query), `answer`, `question_type`, `answer_type`, `choices` (list or
None), `precision`, and `meta` (the breakdown fields of metrics.mathvista).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DataError
from ...metrics.mathvista import MATHVISTA_BREAKDOWN_KEYS
from .vlmeval_bench import BenchSource
from .vlmeval_tsv import VLMEvalRecord, list_literal


def _list_or_none(cell: Any, source: Path, item: str, field: str) -> list[str] | None:
    if cell is None or isinstance(cell, list):
        return None if cell is None else [str(v) for v in cell]
    text = str(cell)
    if text in ("", "None", "nan"):
        return None
    return list(list_literal(text, source, item, field))


def _fields(get: Any, meta: dict[str, Any], source: Path, item: str) -> dict[str, Any]:
    for key in ("question_type", "answer_type"):
        if not isinstance(get(key), str):
            raise DataError(source, "missing", item=item, field=key)
    precision = get("precision")
    out_meta = {k: meta.get(k) for k in MATHVISTA_BREAKDOWN_KEYS}
    out_meta["skills"] = _list_or_none(meta.get("skills"), source, item, "skills") or []
    out_meta["question_type"], out_meta["answer_type"] = get("question_type"), get("answer_type")
    return {
        "question_type": get("question_type"),
        "answer_type": get("answer_type"),
        "choices": _list_or_none(get("choices"), source, item, "choices"),
        "precision": None if precision in (None, "", "nan") else float(precision),
        "meta": out_meta,
    }


def _mathvista_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    return _fields(r.fields.get, r.fields, path, r.index)


def _mathvista_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    query = row.get("query")
    if not isinstance(query, str):
        raise DataError(folder, "missing", item=item, field="query")
    meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
    return {"question": query, **_fields(row.get, meta, folder, item)}


MATHVISTA_TESTMINI = BenchSource(
    subdir="mathvista",
    tsv="MathVista_MINI.tsv",
    hf_split="testmini",
    hub_id="AI4Math/MathVista",
    hf_id="pid",
    hf_images=("decoded_image",),
    from_tsv=_mathvista_tsv,
    from_hf=_mathvista_hf,
    split_size=1000,
)
