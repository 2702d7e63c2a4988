"""HallusionBench scores against HallusionBench's utils.py and VLMEvalKit's Hallusion_rating."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval.metrics.hallusionbench import (
    HallusionItem,
    hallusion_code,
    hallusion_official_scores,
    hallusion_vlmeval_scores,
    hallusion_yes_no,
)
from tests.metrics._data import FIXTURES

VECTORS = json.loads(
    (FIXTURES / "hallusionbench" / "hallusionbench_vectors.json").read_text("utf-8")
)


def _items(rows: list[dict]) -> list[HallusionItem]:
    return [
        HallusionItem(
            r["category"],
            r["subcategory"],
            str(r["set_id"]),
            str(r["figure_id"]),
            str(r["question_id"]),
            r["answer"],
            r["prediction"],
        )
        for r in rows
    ]


def test_yes_no_extraction_agrees_item_for_item() -> None:
    for prediction, expected in VECTORS["extraction"].items():
        assert hallusion_yes_no(prediction) == expected, prediction
    assert len(VECTORS["extraction"]) == 35


def test_official_aggregation_agrees() -> None:
    for dataset in VECTORS["datasets"]:
        items = _items(dataset["rows"])
        assert [hallusion_code(i) for i in items] == [r["code"] for r in dataset["rows"]]
        scores = hallusion_official_scores(items)
        for name, (correct, total) in dataset["hallusionbench"].items():
            ratio = getattr(scores, name)
            assert (ratio.correct, ratio.total) == (correct, total), name
    assert sum(len(d["rows"]) for d in VECTORS["datasets"]) == 963


def test_vlmeval_aggregation_agrees() -> None:
    for dataset in VECTORS["datasets"]:
        got = hallusion_vlmeval_scores(_items(dataset["rows"]))
        assert set(got) == set(dataset["vlmeval"])
        for split, expected in dataset["vlmeval"].items():
            for name, value in expected.items():
                assert getattr(got[split], name).value * 100 == pytest.approx(value, abs=1e-9)


def test_judge_code_overrides_rules() -> None:
    item = HallusionItem("VD", "chart", "0", "1", "0", "Yes", "no idea", code=1)
    assert hallusion_code(item) == 1
    assert hallusion_official_scores([item]).aAcc.value == 1.0
