"""MMBench, MMStar and RealWorldQA as VLMEvalKit's TSV files and the public HF copies.

- MMBench dev (EN, CN; V1.0 and V1.1): VLMEvalKit's `mmbench/MMBench_DEV_{EN,CN}[_V11].tsv`
  (columns index, question, hint, A-D, answer, category, l2-category, split; the rotations
  of a question are the rows `index + k x 1e6`), or lmms-lab/MMBench configs `en` and `cn`
  (`mmbench/{en,cn}/dev-*.parquet`: the same columns, `L2-category`; `en` has a string
  `index` and "nan" for a missing hint or option, `cn` an int64 `index`). V1.1 has no
  public HF copy: its TSV only. Fields: `category`, `l2_category`, `group` (index % 1e6).
- MMStar: `mmstar/MMStar.tsv` (index, question, A-D, answer, category, l2-category), or
  Lin-Chen/MMStar (its card's config `mmstar`, split `val`, is one file, `mmstar.parquet`:
  index, question with its options written in as "Options: A: ..., B: ...", image, answer,
  category, l2_category, meta_info): the options are read out of the question, which keeps
  its stem.
- RealWorldQA: `realworldqa/RealWorldQA.tsv` (index, question, A-D where multiple choice,
  answer), or lmms-lab/RealWorldQA (`realworldqa/test-*.parquet`: question with its options
  as `A. ...` lines and an instruction line, answer): options read out of the question.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import DataError
from .vlmeval_bench import BenchSource, hf_options
from .vlmeval_tsv import VLMEvalRecord

_ROTATION = 1_000_000


def _letter_answer(answer: Any, options: dict[str, str], source: Path, item: str) -> None:
    if options and answer not in options:
        raise DataError(
            source, f"answer {answer!r} is not one of {', '.join(options)}", item=item,
            field="answer",
        )  # fmt: skip


def _group(index: Any, source: Path, item: str) -> int:
    try:
        return int(index) % _ROTATION
    except (TypeError, ValueError):
        raise DataError(source, "index is not an integer", item=item, field="index") from None


# -- MMBench -----------------------------------------------------------------------------
def _mmbench_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    _letter_answer(r.answer, r.options, path, r.index)
    return {
        "category": r.fields.get("category"),
        "l2_category": r.fields.get("l2-category"),
        "group": _group(r.index, path, r.index),
    }


def _mmbench_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    _letter_answer(row.get("answer"), hf_options(row), folder, item)
    return {
        "category": row.get("category"),
        "l2_category": row.get("L2-category", row.get("l2-category")),
        "group": _group(row.get("index"), folder, item),
    }


def mmbench_dev(tsv_stem: str, hf_config: str | None, split_size: int | None) -> BenchSource:
    """One MMBench dev file: VLMEvalKit's `{tsv_stem}.tsv` (its name in VLMEvalKit, with the
    MD5 in `vlmeval_tsv.VLMEVAL_MD5`), or lmms-lab/MMBench config `hf_config` (None: none)."""
    return BenchSource(
        subdir="mmbench",
        tsv=f"{tsv_stem}.tsv",
        hf_split="dev" if hf_config else None,
        hf_subdir=hf_config or "",
        hub_id="lmms-lab/MMBench" if hf_config else None,
        hf_id="index",
        from_tsv=_mmbench_tsv,
        from_hf=_mmbench_hf,
        split_size=split_size,
    )


# Rows (rotations) per file: 4329 (1164 questions) in VLMEvalKit's V1.0 files and both
# lmms-lab `dev` splits; no public count for V1.1 (None: `data check` compares nothing).
MMBENCH_DEV_EN = mmbench_dev("MMBench_DEV_EN", "en", 4329)
MMBENCH_DEV_CN = mmbench_dev("MMBench_DEV_CN", "cn", 4329)
MMBENCH_V11_DEV_EN = mmbench_dev("MMBench_DEV_EN_V11", None, None)
MMBENCH_V11_DEV_CN = mmbench_dev("MMBench_DEV_CN_V11", None, None)


# -- MMStar --------------------------------------------------------------------------------
_MMSTAR_OPTIONS = re.compile(r"\n?Options:\s*(A:.*)\Z", re.S)
_MMSTAR_SPLIT = re.compile(r",\s*(?=[B-Z]:\s)")


def split_mmstar_question(question: str) -> tuple[str, dict[str, str]]:
    """`stem\\nOptions: A: x, B: y` -> (stem, {"A": "x", "B": "y"}); ({} when none)."""
    m = _MMSTAR_OPTIONS.search(question)
    if not m:
        return question, {}
    options = {}
    for part in _MMSTAR_SPLIT.split(m.group(1)):
        letter, _, text = part.partition(":")
        options[letter.strip()] = text.strip()
    return question[: m.start()], options


def _mmstar_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    _letter_answer(r.answer, r.options, path, r.index)
    return {"category": r.fields.get("category"), "l2_category": r.fields.get("l2-category")}


def _mmstar_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    stem, options = split_mmstar_question(str(row.get("question")))
    options = options or hf_options(row)
    if not options:
        raise DataError(folder, "no options in the question", item=item, field="question")
    _letter_answer(row.get("answer"), options, folder, item)
    return {
        "question": stem,
        "options": options,
        "category": row.get("category"),
        "l2_category": row.get("l2_category"),
    }


MMSTAR = BenchSource(
    subdir="mmstar",
    tsv="MMStar.tsv",
    hf_split="val",
    hub_id="Lin-Chen/MMStar",
    hf_files=("mmstar.parquet",),
    hf_id="index",
    from_tsv=_mmstar_tsv,
    from_hf=_mmstar_hf,
    split_size=1500,
)


# -- RealWorldQA -------------------------------------------------------------------------
_RWQA_OPTION = re.compile(r"^([A-Z])\.\s*(.*)$")


def split_realworldqa_question(question: str) -> tuple[str, dict[str, str]]:
    """The question's stem and its `A. ...` option lines; the instruction line after the
    options ("Please answer directly ...") is dropped with them."""
    lines = question.split("\n")
    options: dict[str, str] = {}
    first = None
    for n, line in enumerate(lines):
        m = _RWQA_OPTION.match(line.strip())
        if m and m.group(1) == "ABCDEFGHIJ"[len(options)]:
            first = n if first is None else first
            options[m.group(1)] = m.group(2).strip()
    if first is None:
        return question, {}
    return "\n".join(lines[:first]), options


def _rwqa_tsv(r: VLMEvalRecord, path: Path) -> dict[str, Any]:
    _letter_answer(r.answer, r.options, path, r.index)
    return {}


def _rwqa_hf(row: dict[str, Any], item: str, folder: Path) -> dict[str, Any]:
    stem, options = split_realworldqa_question(str(row.get("question")))
    _letter_answer(row.get("answer"), options, folder, item)
    return {"question": stem if options else str(row.get("question")), "options": options}


REALWORLDQA = BenchSource(
    subdir="realworldqa",
    tsv="RealWorldQA.tsv",
    hf_split="test",
    hub_id="lmms-lab/RealWorldQA",
    from_tsv=_rwqa_tsv,
    from_hf=_rwqa_hf,
    split_size=765,
)
