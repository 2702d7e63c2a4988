"""ANLS: normalisation, the un-normalised length quirk, the 0.5 boundary, best reference."""

from __future__ import annotations

import random

import pytest

from qwenvl_eval.metrics import anls, anls_normalize, anls_similarity
from qwenvl_eval.metrics.anls import levenshtein, levenshtein_python

# (prediction, answers, expected, why)
CASES = [
    ("Hello", ["hello"], 1.0, "case-insensitive"),
    ("a   b", ["a b"], 1.0, "whitespace runs collapse"),
    ("  ab  ", ["ab"], 1.0, "outer spaces stripped"),
    ("abcd", ["abxy"], 0.5, "similarity exactly 0.5 is kept"),
    ("abc", ["axy"], 0.0, "2/3 distance: below 0.5 -> 0"),
    ("abcx", ["abcd"], 0.75, "1 edit in 4"),
    (" abcd", ["abxy"], 0.6, "distance of normalised strings / UN-normalised length 5"),
    ("ßß", ["x"], 0.5, "length is len(s.upper()): 'SSSS' is 4, distance 2"),
    ("abcd", ["zzzz", "abcx", "abcy"], 0.75, "best reference"),
    ("", [""], 1.0, "two empty strings: distance 0"),
    ("", ["abc"], 0.0, "empty prediction"),
    ("kitten", ["sitting"], 1 - 3 / 7, "classic distance 3 over 7"),
]


@pytest.mark.parametrize(("prediction", "answers", "expected", "why"), CASES)
def test_anls_table(prediction, answers, expected, why) -> None:
    assert anls(prediction, answers) == pytest.approx(expected, abs=1e-12), why


def test_threshold_is_a_parameter() -> None:
    assert anls("abc", ["abd"]) == pytest.approx(2 / 3)
    assert anls("abc", ["abd"], threshold=0.7) == 0.0
    assert anls("abc", ["xyz"], threshold=0.0) == 0.0


def test_similarity_has_no_threshold_and_can_go_negative() -> None:
    assert anls_similarity("abc", "xyz") == 0.0
    assert anls_similarity("İ", "x") < 0  # 'İ'.lower() is 2 characters: distance 2 > length 1
    assert anls("İ", ["x"]) == 0.0


def test_normalize() -> None:
    assert anls_normalize("  Total\tDue \n 5 ") == "total due 5"


def test_levenshtein_backends_agree() -> None:
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abcß ") for _ in range(rng.randint(0, 8)))
        b = "".join(rng.choice("abcß ") for _ in range(rng.randint(0, 8)))
        assert levenshtein(a, b) == levenshtein_python(a, b)


@pytest.mark.parametrize(
    ("prediction", "answers"),
    [(None, ["a"]), (float("nan"), ["nan"]), (5, ["5"]), ("a", []), ("a", None), ("a", [None])],
)
def test_bad_input_scores_zero(prediction, answers) -> None:
    assert anls(prediction, answers) == 0.0


def test_bare_string_reference() -> None:
    assert anls("Paris", "paris") == 1.0
