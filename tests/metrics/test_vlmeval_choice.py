"""MMBench / MMStar / RealWorldQA choice scoring against vectors from VLMEvalKit."""

from __future__ import annotations

import json
import math

from qwenvl_eval.metrics.mmbench import Rotation, circular_group_hit, circular_hit
from qwenvl_eval.metrics.vlmeval_choice import (
    CHOICE_JUDGE_TEMPLATE,
    CHOICE_JUDGE_TEMPLATE_CN,
    ChoiceRecord,
    choice_breakdown,
    choice_judge_prompt,
    choice_judge_prompt_cn,
    choice_judge_prompt_en,
    infer_choice,
    infer_option,
    infer_text,
    is_cn_question,
)
from tests.metrics._data import FIXTURES

VECTORS = json.loads(
    (FIXTURES / "vlmeval_choice" / "vlmeval_choice_vectors.json").read_text("utf-8")
)
CHOICES = VECTORS["choice_sets"]
JUDGE_PROMPTS = json.loads(
    (FIXTURES / "vlmeval_choice" / "vlmeval_judge_prompts.json").read_text("utf-8")
)


def _official(value: object) -> str | None:
    return None if value is False else value


def test_can_infer_family_agrees_item_for_item() -> None:
    cases = VECTORS["infer"]
    for case in cases:
        choices = CHOICES[case["choices"]]
        pred = case["prediction"]
        assert infer_option(pred, choices) == _official(case["can_infer_option"]), case
        assert infer_text(pred, choices) == _official(case["can_infer_text"]), case
        assert infer_choice(pred, choices) == _official(case["can_infer"]), case
    assert len(cases) == 588
    assert sum(c["can_infer"] is not False for c in cases) == 258


def test_vanilla_extraction_without_judge_agrees() -> None:
    for case in VECTORS["vanilla"]:
        got = infer_choice(case["prediction"], CHOICES[case["choices"]])
        # without a judge VLMEvalKit records "Z" for an unreadable answer: never right
        assert (got or "Z") == case["opt"], case


def test_circular_groups_agree_item_for_item() -> None:
    groups = VECTORS["circular"]
    for group in groups:
        rotations = [
            Rotation(row["prediction"], {k: row[k] for k in "ABCDE" if k in row}, row["GT"])
            for row in group["rows"]
        ]
        verdict = circular_group_hit(rotations)
        assert verdict == (None if group["prefetch_hit"] is None else bool(group["prefetch_hit"]))
        assert circular_hit(rotations) == bool(group["hit"]), group
    assert len(groups) == 400
    assert sum(g["prefetch_hit"] is None for g in groups) == 66


def _check_report(block: dict) -> None:
    records = [
        ChoiceRecord(bool(r["hit"]), r["category"], r["l2-category"], r.get("split"))
        for r in block["records"]
    ]
    got = choice_breakdown(records)
    expected = block["result"]
    for i, split in enumerate(expected["split"]):
        row = got[split]
        assert set(row) == set(expected) - {"split"}
        for name, values in expected.items():
            if name != "split":
                assert math.isclose(row[name], values[i], abs_tol=1e-12), (split, name)


def test_report_acc_breakdown_agrees() -> None:
    _check_report(VECTORS["report"])
    _check_report(VECTORS["report_no_split"])


def test_mmstar_and_realworldqa_use_the_same_rules() -> None:
    from qwenvl_eval.metrics.mmstar import MMStarItem, mmstar_scores
    from qwenvl_eval.metrics.realworldqa import realworldqa_accuracy

    choices = CHOICES[0]
    items = [
        MMStarItem("(B)", choices, "B", "math", "numeric commonsense"),
        MMStarItem("The answer is dog", choices, "B", "math", "geometry"),  # "answer is d" -> D
        MMStarItem("cat", choices, "A", "instance reasoning", "geometry"),
        MMStarItem("no idea", choices, "A", "instance reasoning", "geometry"),
    ]
    scores = mmstar_scores(items)
    assert scores == {
        "Overall": 0.5,
        "geometry": 1 / 3,
        "numeric commonsense": 1.0,
        "instance reasoning": 0.5,
        "math": 0.5,
    }
    triples = [(i.prediction, i.choices, i.answer) for i in items]
    assert realworldqa_accuracy(triples) == (0.5, 2, 4)
    assert realworldqa_accuracy([]) == (0.0, 0, 0)


def test_judge_templates_are_vlmevalkits() -> None:
    templates = JUDGE_PROMPTS["templates"]
    assert templates["build_prompt"] == CHOICE_JUDGE_TEMPLATE
    assert templates["build_prompt_cn"] == CHOICE_JUDGE_TEMPLATE_CN


def test_judge_prompt_choice_agrees_case_for_case() -> None:
    # extract_answer_from_item: build_prompt_cn where cn_string(question), else build_prompt.
    cases = JUDGE_PROMPTS["cases"]
    for case in cases:
        q, options, pred = case["question"], case["options"], case["prediction"]
        assert is_cn_question(q) is case["cn_string"], case
        assert choice_judge_prompt(q, options, pred) == case["prompt"], case
        build = choice_judge_prompt_cn if case["cn_string"] else choice_judge_prompt_en
        assert build(q, options, pred) == case["prompt"], case
    assert [c["cn_string"] for c in cases].count(True) == 4
    assert len(cases) == 10
