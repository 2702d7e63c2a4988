"""Relaxed accuracy in paper (Qwen-VL's swapped arguments) and correct mode."""

from __future__ import annotations

import pytest

from qwenvl_eval.metrics import parse_relaxed_number, relaxed_accuracy
from qwenvl_eval.metrics.relaxed import relaxed_correctness

# (prediction, answers, paper, correct, why)
CASES = [
    ("105.2", ["100"], 1.0, 0.0, "5.2/105.2 = 4.9 % (paper) vs 5.2/100 = 5.2 % (correct)"),
    ("95", ["100"], 0.0, 1.0, "5/95 = 5.3 % (paper) vs 5/100 = exactly 5 % (correct)"),
    ("100", ["100"], 1.0, 1.0, "equal numbers"),
    ("12%", ["0.12"], 1.0, 1.0, "trailing % divides by 100"),
    ("12", ["12%"], 0.0, 0.0, "12 vs 0.12"),
    ("0", ["0"], 1.0, 1.0, "zero: no division, text comparison matches"),
    ("0.0", ["0"], 0.0, 0.0, "zero: text comparison '0.0' != '0'"),
    ("0", ["5"], 0.0, 0.0, "paper: zero prediction -> text; correct: 100 % error"),
    ("5", ["0"], 0.0, 0.0, "correct: zero target -> text; paper: 100 % error"),
    ("Yes", ["yes"], 1.0, 1.0, "case-insensitive text"),
    ("  Yes \n", ["yes"], 1.0, 1.0, "the prediction is stripped"),
    ("yes", ["yes "], 0.0, 0.0, "the reference is not stripped"),
    ("10", ["abc", "10.4"], 1.0, 1.0, "best reference"),
    ("1,000", ["1000"], 0.0, 0.0, "'1,000' is not a number: text comparison"),
    ("nan", ["nan"], 0.0, 0.0, "NaN parses as a number and is never within 5 %"),
    ("-4.9", ["-5"], 1.0, 1.0, "negative numbers use absolute values"),
]


@pytest.mark.parametrize(("prediction", "answers", "paper", "correct", "why"), CASES)
def test_relaxed_table(prediction, answers, paper, correct, why) -> None:
    assert relaxed_accuracy(prediction, answers, mode="paper") == paper, why
    assert relaxed_accuracy(prediction, answers, mode="correct") == correct, why


def test_default_mode_is_paper() -> None:
    assert relaxed_accuracy("105.2", ["100"]) == 1.0


def test_relaxed_correctness_argument_order() -> None:
    assert relaxed_correctness(target="100", prediction="105.2") is False
    assert relaxed_correctness(target="105.2", prediction="100") is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12.0), (" 12 ", 12.0), ("50%", 0.5), ("50%%", 0.5), ("1e3", 1000.0), ("$5", None)],
)
def test_parse_relaxed_number(text, expected) -> None:
    assert parse_relaxed_number(text) == expected


@pytest.mark.parametrize("mode", ["paper", "correct"])
@pytest.mark.parametrize(
    ("prediction", "answers"),
    [(None, ["1"]), (float("nan"), ["nan"]), (1.0, ["1"]), ("1", []), ("1", None), ("", [""])],
)
def test_bad_input(mode, prediction, answers) -> None:
    expected = 1.0 if prediction == "" else 0.0  # "" == "" is a text match
    assert relaxed_accuracy(prediction, answers, mode=mode) == expected


def test_unknown_mode_raises() -> None:
    with pytest.raises(ValueError):
        relaxed_accuracy("1", ["1"], mode="swapped")
