"""ScienceQA accuracy breakdown reproduces published numbers from released predictions."""

from __future__ import annotations

import csv
import math

import pytest

from qwenvl_eval.metrics import GroupAccuracy, argmin_option, mean_loss, scienceqa_accuracy
from tests.metrics._data import FIXTURES


def load_records(model: str) -> list[dict]:
    with (FIXTURES / "scienceqa_test_predictions.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        {
            "correct": int(row[model]) == int(row["answer"]),
            "has_text_context": row["has_text_context"] == "1",
            "has_image": row["has_image"] == "1",
        }
        for row in rows
    ]


def percent(group: GroupAccuracy) -> float:
    return round(100 * group.accuracy, 2)


# Published (%), ScienceQA test split:
# - GPT-3 CoT (QCM->ALE): Lu et al. 2022, "Learn to Explain", Table 3 (Avg, TXT, IMG, NO).
# - LLaVA-13B: Liu et al. 2023, "Visual Instruction Tuning", Table 7.
PUBLISHED = {
    "gpt3_cot_qcm_ale": {"overall": 75.17, "TXT": 74.68, "IMG": 67.43, "NO": 79.93},
    "llava_13b": {"overall": 90.92, "TXT": 89.49, "IMG": 88.00, "NO": 90.66},
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_published_accuracies(model: str) -> None:
    scores = scienceqa_accuracy(load_records(model))
    assert {k: percent(scores[k]) for k in PUBLISHED[model]} == PUBLISHED[model]


def test_context_group_sizes_of_the_test_split() -> None:
    scores = scienceqa_accuracy(load_records("llava_13b"))
    counts = {k: v.count for k, v in scores.items()}
    assert counts == {"overall": 4241, "TXT": 2046, "IMG": 2017, "NO": 1435}


def test_llava_1_5_13b_image_subset() -> None:
    # LLaVA-1.5 (Liu et al. 2023, "Improved Baselines...") reports ScienceQA-IMG only:
    # 71.6 for 13B, i.e. the IMG group of the test split. The file's own summary field
    # (acc 74.39283187927376 = 3155 / 4241, over all questions) is reproduced as well.
    scores = scienceqa_accuracy(load_records("llava_v1_5_13b"))
    assert round(100 * scores["IMG"].accuracy, 1) == 71.6
    assert (scores["IMG"].correct, scores["IMG"].count) == (1445, 2017)
    assert (scores["overall"].correct, scores["overall"].count) == (3155, 4241)


def test_all_groups_on_hand_made_records() -> None:
    records = [
        {"correct": True, "has_text_context": True, "has_image": True,
         "subject": "natural science", "grade": "grade3"},
        {"correct": False, "has_text_context": True, "has_image": False,
         "subject": "social science", "grade": "grade7"},
        {"correct": True, "has_text_context": False, "has_image": False,
         "subject": "language science", "grade": 12},
        {"correct": True, "has_text_context": 0, "has_image": 1, "subject": "NAT", "grade": "G6"},
        {"correct": "yes", "subject": "natural science"},  # only True counts as correct
    ]  # fmt: skip
    scores = scienceqa_accuracy(records)
    assert list(scores) == ["overall", "NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12"]
    assert scores["overall"] == GroupAccuracy(3 / 5, 3, 5)
    assert scores["NAT"] == GroupAccuracy(2 / 3, 2, 3)
    assert scores["SOC"] == GroupAccuracy(0.0, 0, 1)
    assert scores["LAN"] == GroupAccuracy(1.0, 1, 1)
    assert scores["TXT"] == GroupAccuracy(0.5, 1, 2)  # record 1 is in TXT and IMG
    assert scores["IMG"] == GroupAccuracy(1.0, 2, 2)
    assert scores["NO"] == GroupAccuracy(1.0, 1, 1)  # unknown flags are not NO
    assert scores["G1-6"] == GroupAccuracy(1.0, 2, 2)
    assert scores["G7-12"] == GroupAccuracy(0.5, 1, 2)


@pytest.mark.parametrize("records", [[], None, [None, 3, "x"]])
def test_bad_records(records) -> None:
    scores = scienceqa_accuracy(records)
    expected_count = len(records) if records else 0
    assert scores == {"overall": GroupAccuracy(0.0, 0, expected_count)}


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([2.0, 1.5, 3.0], 1),
        ([1.0, 1.0], 0),  # ties: first
        ([math.nan, 2.0, 1.0], 2),
        ([None, "x", 4.0], 2),
        ([math.inf, 5.0], 1),
        ([math.nan], None),
        ([], None),
        (None, None),
    ],
)
def test_argmin_option(losses, expected) -> None:
    assert argmin_option(losses) == expected


def test_mean_loss() -> None:
    assert mean_loss([1.0, 2.0, 6.0]) == 3.0
    assert argmin_option([mean_loss([0.5, 0.7]), mean_loss([0.2, 2.0])]) == 0
    assert math.isnan(mean_loss([]))
    assert math.isnan(mean_loss(None))
    assert math.isnan(mean_loss([1.0, None]))
