"""MathVista rule scoring against vectors from the official evaluation scripts."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval.metrics.mathvista import (
    mathvista_breakdown,
    mathvista_extract,
    mathvista_normalize,
    mathvista_score,
)
from tests.metrics._data import FIXTURES

VECTORS = json.loads((FIXTURES / "mathvista" / "mathvista_vectors.json").read_text("utf-8"))
PROBLEMS = VECTORS["problems"]


def test_extract_normalize_compare_agree_item_for_item() -> None:
    cases = VECTORS["cases"]
    for case in cases:
        p = PROBLEMS[case["problem"]]
        extraction, prediction, correct = mathvista_score(
            case["response"],
            p["answer"],
            p["question_type"],
            p["answer_type"],
            p["choices"],
            p["precision"],
            quick_extract=case["quick_extract"],
        )
        assert (extraction, prediction, correct) == (
            case["extraction"],
            case["prediction"],
            case["true_false"],
        ), case
    assert len(cases) == 2040
    assert sum(c["true_false"] for c in cases) == 372


def test_ignore_empty_extractions_agrees() -> None:
    for case in VECTORS["ignore_empty"]:
        p = PROBLEMS[case["problem"]]
        extraction = mathvista_extract(
            case["response"], p["question_type"], p["answer_type"], p["choices"], True
        )
        assert extraction == case["extraction"]
        got = mathvista_normalize(
            extraction,
            p["choices"],
            p["question_type"],
            p["answer_type"],
            p["precision"],
            ignore_empty_extractions=True,
        )
        assert got == case["prediction"], case


def test_empty_multiple_choice_extraction_picks_the_shortest_option() -> None:
    # The official quirk, kept: no answer still "chooses" the option nearest to "".
    assert mathvista_normalize("", ["red", "blue", "ox"], "multi_choice", "text", None) == "ox"


def test_breakdown_agrees_with_calculate_score() -> None:
    agg = VECTORS["aggregation"]
    records = [{**r, "correct": r.pop("true_false")} for r in agg["records"]]
    got = mathvista_breakdown(records)
    assert got["average"]["all"].total == 300
    for key, values in agg["breakdown"].items():
        assert set(got[key]) == set(values), key
        for value, expected in values.items():
            group = got[key][value]
            assert (group.correct, group.total) == (expected["correct"], expected["total"])
            assert group.accuracy == pytest.approx(expected["accuracy"], abs=1e-12)
