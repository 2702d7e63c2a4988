"""MMMU scoring against vectors produced by the official eval_utils.py (fixtures/metrics/mmmu)."""

from __future__ import annotations

import json
import random

import pytest

from qwenvl_eval.metrics.mmmu import (
    MMMU_SEED,
    mmmu_breakdown,
    mmmu_choice_correct,
    mmmu_open_correct,
    mmmu_parse_choice,
    mmmu_parse_open,
)
from tests.metrics._data import FIXTURES

VECTORS = json.loads((FIXTURES / "mmmu" / "mmmu_vectors.json").read_text("utf-8"))


def _key(value: object) -> tuple[int, str]:
    return (0 if isinstance(value, float) else 1, repr(value))


def test_multiple_choice_parse_and_random_fallback_agree_item_for_item() -> None:
    # One generator fed the items in the official order reproduces its draws exactly.
    rng = random.Random(VECTORS["seed"])
    assert VECTORS["seed"] == MMMU_SEED
    cases = VECTORS["multiple_choice"]
    drawn = 0
    for case in cases:
        parsed = mmmu_parse_choice(case["response"], case["index2ans"], rng)
        assert parsed.letter == case["parsed"], case
        assert mmmu_choice_correct(case["answer"], parsed.letter) == case["correct"], case
        drawn += parsed.random
    assert len(cases) == 192
    assert drawn > 20  # the fallback is really exercised


def test_open_parse_and_match_agree_item_for_item() -> None:
    cases = VECTORS["open"]
    for case in cases:
        parsed = mmmu_parse_open(case["response"])
        assert sorted(parsed, key=_key) == case["parsed"], case
        assert mmmu_open_correct(case["answer"], parsed) == case["correct"], case
    assert len(cases) == 488
    assert sum(c["correct"] for c in cases) == 79


def test_breakdown_agrees_with_main_eval_only() -> None:
    agg = VECTORS["aggregation"]
    got = mmmu_breakdown((r["subject"], r["correct"]) for r in agg["records"])
    expected = agg["breakdown"]
    assert list(got) == list(expected)
    for name, group in expected.items():
        assert got[name].count == group["num"], name
        assert got[name].accuracy == pytest.approx(group["acc"], abs=1e-12), name


def test_draw_happens_only_for_unparseable_responses() -> None:
    rng = random.Random(0)
    state = rng.getstate()
    assert mmmu_parse_choice("(B)", {"A": "x", "B": "y"}, rng).letter == "B"
    assert rng.getstate() == state
    assert mmmu_parse_choice(None, {"A": "x", "B": "y"}, rng).random
    assert rng.getstate() != state
