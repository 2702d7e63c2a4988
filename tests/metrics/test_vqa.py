"""VQA accuracy in both modes: hand-checked cases for each normalisation rule and quirk."""

from __future__ import annotations

import pytest

from qwenvl_eval.metrics import (
    vqa_accuracy,
    vqa_normalize,
    vqa_process_digit_article,
    vqa_process_punctuation,
)

TEN = 10


def ten(answer: str) -> list[str]:
    return [answer] * TEN


# (prediction, answers, paper, official, why)
CASES = [
    ("Yes", ten("yes"), 1.0, 0.0, "unanimous answers: official does not lower-case"),
    ("yes", ten("yes"), 1.0, 1.0, "plain match"),
    (" yes\n", ten("yes"), 1.0, 1.0, "newline/outer spaces stripped in both modes"),
    ("no", ten("yes"), 0.0, 0.0, "no match"),
    ("Two", ten("2"), 1.0, 0.0, "number word -> digit only in paper mode when unanimous"),
    ("Two", ["2"] * 9 + ["two"], 1.0, 1.0, "official normalises both once answers differ"),
    ("None", ten("0"), 1.0, 0.0, "'none' is a number word (0)"),
    ("a dog", ten("dog"), 1.0, 0.0, "articles dropped from the prediction (paper)"),
    ("a dog", ["dog"] * 9 + ["the dog"], 1.0, 1.0, "paper: answers keep articles"),
    ("dont", ten("don't"), 1.0, 0.0, "contraction table (paper)"),
    ("yes.", ten("yes"), 1.0, 0.0, "period stripped from the prediction"),
    ("5.", ten("5"), 1.0, 0.0, "broken look-behind: a period after a digit goes too"),
    ("3.5", ten("3.5"), 1.0, 1.0, "a period before a digit stays"),
    ("t-shirt", ten("t-shirt"), 0.0, 1.0, "paper: '-' becomes a space in the prediction only"),
    ("t-shirt", ["t-shirt"] * 9 + ["shirt"], 1.0, 1.0, "answers get punctuation once they differ"),
    ("Red", ["Red"] * 9 + ["red"], 0.3, 1.0, "paper never lower-cases the answers"),
    ("1,000", ten("1000"), 1.0, 0.0, "digit,digit: punctuation deleted, not spaced"),
    ("red", ["red"] * 2 + ["blue"] * 8, 0.6, 0.6, "2 matches: (2*1/3 + 8*2/3) / 10"),
    ("red", ["red"] * 3 + ["blue"] * 7, 0.9, 0.9, "3 matches: (3*2/3 + 7*1) / 10"),
    ("red", ["red"] * 4 + ["blue"] * 6, 1.0, 1.0, "4 matches: every subset has >= 3"),
    ("red", ["red"] + ["blue"] * 9, 0.3, 0.3, "1 match: 9 subsets of 1/3"),
]


@pytest.mark.parametrize(("prediction", "answers", "paper", "official", "why"), CASES)
def test_vqa_accuracy_table(prediction, answers, paper, official, why) -> None:
    assert vqa_accuracy(prediction, answers, mode="paper") == pytest.approx(paper, abs=1e-12), why
    assert vqa_accuracy(prediction, answers, mode="official") == pytest.approx(
        official, abs=1e-12
    ), why


def test_default_mode_is_paper() -> None:
    assert vqa_accuracy("Yes", ten("yes")) == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes, sir", "yes sir"),  # ", " touches a space: deleted
        ("a,b", "a b"),  # no space, no digit group: replaced by a space
        ("well-known", "well known"),
        ("1,000-2", "10002"),  # a digit group anywhere deletes all punctuation
        ("(left)", " left "),
        ("what?!", "what  "),
        ("end.", "end"),
        ("v1.2", "v1.2"),
        ("." * 40, "." * 8),  # count=32: only 32 periods removed
        ("don't", "don't"),  # the apostrophe is not punctuation here
    ],
)
def test_process_punctuation(text: str, expected: str) -> None:
    assert vqa_process_punctuation(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Two Dogs", "2 dogs"),
        ("an apple", "apple"),
        ("Zero", "0"),
        ("ten eleven", "10 eleven"),
        ("IM here", "im here"),  # table key "Im" is capitalised: never matches
        ("whats  up", "what's up"),
    ],
)
def test_process_digit_article(text: str, expected: str) -> None:
    assert vqa_process_digit_article(text) == expected


def test_normalize_is_the_paper_prediction_pipeline() -> None:
    assert vqa_normalize("\tThe T-Shirt.\n") == "t shirt"


@pytest.mark.parametrize("mode", ["paper", "official"])
@pytest.mark.parametrize(
    ("prediction", "answers"),
    [(None, ten("yes")), (float("nan"), ten("nan")), (3, ten("3")), ("yes", []), ("yes", None)],
)
def test_bad_input_scores_zero(mode, prediction, answers) -> None:
    assert vqa_accuracy(prediction, answers, mode=mode) == 0.0


def test_non_string_answers_are_dropped() -> None:
    assert vqa_accuracy("yes", ["yes"] * 4 + [None, 3]) == 1.0
    assert vqa_accuracy("yes", "yes") == 0.0  # one answer: its only subset is empty


def test_unknown_mode_raises() -> None:
    with pytest.raises(ValueError):
        vqa_accuracy("yes", ten("yes"), mode="lavis")
