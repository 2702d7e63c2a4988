"""OCRBench scoring against vectors from the official rule (VLMEvalKit's OCRBench_eval)."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval.metrics.ocrbench import HME_CATEGORY, ocrbench_report, ocrbench_score
from tests.metrics._data import FIXTURES

VECTORS = json.loads((FIXTURES / "ocrbench" / "ocrbench_vectors.json").read_text("utf-8"))


def test_item_scores_agree_item_for_item() -> None:
    items = VECTORS["items"]
    for item in items:
        got = ocrbench_score(item["prediction"], item["answers"], item["category"])
        assert got == item["score"], item
    assert len(items) == 1872
    assert sum(i["score"] for i in items) == 174


def test_report_agrees_with_official_totals() -> None:
    items = VECTORS["items"]
    report = ocrbench_report(
        (i["category"], ocrbench_score(i["prediction"], i["answers"], i["category"])) for i in items
    )
    for key, value in VECTORS["totals"].items():
        if key != "Final Score Norm":
            assert report[key] == value, key
    assert report["Final Score"] / 10 == VECTORS["totals"]["Final Score Norm"]


def test_hme_ignores_spaces_but_not_case() -> None:
    assert ocrbench_score("x ^ { 2 }", ["x^{2}"], HME_CATEGORY) == 1
    assert ocrbench_score("X^{2}", ["x^{2}"], HME_CATEGORY) == 0
    assert ocrbench_score("X^{2}", ["x^{2}"], "Doc-oriented VQA") == 1


def test_unknown_category_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown OCRBench category"):
        ocrbench_report([("Captioning", 1)])
