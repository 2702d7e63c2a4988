"""Exact match and Qwen-VL's GQA post-processing, quirks included."""

from __future__ import annotations

import pytest

from qwenvl_eval.metrics import exact_match, gqa_postprocess


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        (" Paris ", ["paris"], 1.0),
        ("paris", ["Paris "], 1.0),
        ("paris", ["london", "PARIS"], 1.0),
        ("paris", ["london"], 0.0),
        ("paris.", ["paris"], 0.0),
        ("", [""], 1.0),
        ("paris", "paris", 1.0),
        (None, ["paris"], 0.0),
        (float("nan"), ["nan"], 0.0),
        ("paris", [], 0.0),
        ("paris", None, 0.0),
    ],
)
def test_exact_match(prediction, answers, expected) -> None:
    assert exact_match(prediction, answers) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.", "yes"),
        ("The cup is on the table.", "table"),
        ("tea kettle", "kettle"),  # contains "a "
        ("this is a cat", ""),  # "this is " holds "is " twice: split('is ')[1] == ""
        ("A piece of cake, maybe", "piece"),
        ("Wow! Red", "wow"),
        ("They are blue, I think", "blue"),
        ("banana", "banana"),
        ("an apple", "apple"),
        ("The man", "man"),
        ("left side of the road", "road"),  # "the " is tested before " of"
        ("top of it", "top"),
        ("  Brown  ", "brown"),
        ("", ""),
        (None, ""),
        (3, ""),
    ],
)
def test_gqa_postprocess(text, expected) -> None:
    assert gqa_postprocess(text) == expected
