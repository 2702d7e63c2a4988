"""Every public metric gives a defined result, never an exception, on bad input."""

from __future__ import annotations

import math

import pytest

from qwenvl_eval import metrics as m

BAD = [None, 7, 3.5, math.nan, "", [], {}, b"bytes", object(), [None], ["x", None, 2]]


def _id(value: object) -> str:
    """Stable test ids (a bare object()'s repr holds its address, which breaks xdist)."""
    return type(value).__name__ if type(value) is object else repr(value)


@pytest.mark.parametrize("bad", BAD, ids=_id)
@pytest.mark.parametrize(
    "score",
    [
        lambda p, a: m.vqa_accuracy(p, a, mode="paper"),
        lambda p, a: m.vqa_accuracy(p, a, mode="official"),
        m.anls,
        lambda p, a: m.relaxed_accuracy(p, a, mode="paper"),
        lambda p, a: m.relaxed_accuracy(p, a, mode="correct"),
        m.exact_match,
    ],
    ids=["vqa-paper", "vqa-official", "anls", "relaxed-paper", "relaxed-correct", "exact"],
)
def test_scores_stay_in_range(score, bad) -> None:
    for prediction, answers in ((bad, ["yes"]), ("yes", bad), (bad, bad)):
        value = score(prediction, answers)
        assert isinstance(value, float)
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("bad", BAD, ids=_id)
def test_string_helpers(bad) -> None:
    assert isinstance(m.gqa_postprocess(bad), str)
    for family in m.BOX_FAMILIES:
        assert m.parse_box(bad, family, (640, 480), (560, 420)) is None
        assert m.parse_box("(1,2),(3,4)", family, bad, bad) is None
    assert m.box_iou(bad, (0, 0, 1, 1)) == 0.0
    assert m.coco_xywh_to_xyxy(bad) is None
    assert m.argmin_option([bad]) is None or bad in (7, 3.5)
    assert isinstance(m.mean_loss(bad), float)
    assert m.grounding_scores([bad]).count == 1
    assert m.scienceqa_accuracy([bad])["overall"].count == 1


@pytest.mark.parametrize("bad", [b for b in BAD if not isinstance(b, str)], ids=_id)
def test_normalisers_and_parsers(bad) -> None:
    from qwenvl_eval.metrics.relaxed import relaxed_correctness

    assert m.vqa_normalize(bad) == ""
    assert m.vqa_process_punctuation(bad) == ""
    assert m.vqa_process_digit_article(bad) == ""
    assert m.anls_normalize(bad) == ""
    assert m.anls_similarity(bad, "x") == 0.0
    assert m.parse_relaxed_number(bad) is None
    assert relaxed_correctness(bad, "1") is False
    assert m.input_size_from_grid(bad) is None


def test_ptb_tokenize_edge_cases() -> None:
    assert m.ptb_tokenize([]) == []
    assert m.ptb_tokenize(None) == []  # type: ignore[arg-type]
    assert m.ptb_tokenize("a string is not a list of sentences") == []
