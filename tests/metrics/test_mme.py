"""MME scoring against vectors from the official eval_tool/calculation.py."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval.metrics.mme import MMEItem, mme_parse, mme_scores
from tests.metrics._data import FIXTURES

VECTORS = json.loads((FIXTURES / "mme" / "mme_vectors.json").read_text("utf-8"))


def test_parse_agrees_item_for_item() -> None:
    for prediction, parsed in VECTORS["parse"].items():
        assert mme_parse(prediction) == parsed, prediction
    for item in VECTORS["items"]:
        assert mme_parse(item["prediction"]) == item["parsed"], item
    assert len(VECTORS["parse"]) == 41


def test_subtask_and_sum_scores_agree() -> None:
    items = [MMEItem(i["task"], i["image"], i["answer"], i["prediction"]) for i in VECTORS["items"]]
    scores = mme_scores(items)
    assert set(scores.subtasks) == set(VECTORS["task_score"])
    for task, expected in VECTORS["task_score"].items():
        assert scores.subtasks[task].acc == pytest.approx(VECTORS["acc"][task], abs=1e-12)
        assert scores.subtasks[task].score == pytest.approx(expected, abs=1e-9), task
    assert scores.perception == pytest.approx(VECTORS["perception"], abs=1e-9)
    assert scores.cognition == pytest.approx(VECTORS["cognition"], abs=1e-9)


def test_answer_must_be_yes_or_no() -> None:
    with pytest.raises(ValueError, match="count/1.png"):
        mme_scores([MMEItem("count", "1.png", "3", "yes")])
