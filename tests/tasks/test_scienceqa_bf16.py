"""ScienceQA scoring modes: paper mode (qwen-vl) on bf16 logits compares options as eval_mm
does; float32 logits or a chat family compare float32 means; the notes say which."""

from __future__ import annotations

from qwenvl_eval import registry
from qwenvl_eval.evaluator import TaskRun, score_item
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.types import Document, OptionScore, Response, ScoreRequest, Text

# Planted near tie: B's log-prob is higher in float32, but both losses round to bf16 8.0.
TOKENS = [[-8.0006], [-7.985]]


def doc(i: str) -> Document:
    return Document(
        i,
        (),
        {
            "choices": ["dog", "cat"],
            "answer": 1,
            "hint": "",
            "has_image": True,
            "subject": "natural science",
            "grade": "grade3",
            "question": "q",
            "context": "N/A",
        },
    )


def response(i: str, dtype: str | None, with_tokens: bool = True) -> Response:
    options = tuple(OptionScore.from_sum(t[0], 1) for t in TOKENS)
    meta: dict = {}
    if dtype is not None:
        meta["logits_dtype"] = dtype
    if with_tokens:
        meta["option_token_logprobs"] = TOKENS
    return Response(i, options=options, meta=meta)


def score(family, responses):
    task = registry.get_task("scienceqa_img")
    docs = [doc(r.id) for r in responses]
    reqs = [ScoreRequest(d.id, (Text("p"),), (" A", " B"), style="raw") for d in docs]
    run = TaskRun(task, docs, reqs, "h")
    items = [score_item(run, q, r, family) for q, r in zip(reqs, responses, strict=True)]
    summary = task.aggregate(items, run.by_id)
    return items, summary.metrics, task.notes(limited=False) + summary.notes


def test_paper_mode_on_bf16_ties_and_the_first_option_wins():
    items, metrics, notes = score(QWEN_VL.info, [response("1", "bfloat16")])
    assert items[0].answer == "A" and items[0].score["acc"] == 0.0
    assert items[0].extra["mean_loss"] == [8.0, 8.0]
    assert items[0].extra["loss_compare"] == "bf16-eval_mm"
    assert metrics["acc"] == 0.0
    assert len(notes) == 1 and notes[0].startswith("loss_compare bf16-eval_mm:")


def test_float32_logits_compare_float32_means():
    items, metrics, notes = score(QWEN_VL.info, [response("1", "float32", with_tokens=False)])
    assert items[0].answer == "B" and items[0].extra["loss_compare"] == "float32"
    assert items[0].extra["mean_loss"] == [8.0006, 7.985]
    assert metrics["acc"] == 100.0
    assert notes[0].startswith("loss_compare float32:")


def test_chat_family_on_bf16_is_not_paper_mode():
    items, _, _ = score(QWEN2_VL.info, [response("1", "bfloat16")])
    assert items[0].answer == "B" and items[0].extra["loss_compare"] == "float32"


def test_bf16_without_token_logprobs_falls_back_to_float32():
    # An older predictions file (no token log-probs saved) rescored: float32, and said so.
    items, _, notes = score(QWEN_VL.info, [response("1", "bfloat16", with_tokens=False)])
    assert items[0].extra["loss_compare"] == "float32"
    assert notes == [notes[0]] and "float32" in notes[0]


def test_mixed_modes_are_both_noted():
    items, _, notes = score(
        QWEN_VL.info, [response("1", "bfloat16"), response("2", "float32", with_tokens=False)]
    )
    assert [it.answer for it in items] == ["A", "B"]
    assert [n.split(":")[0] for n in notes] == ["loss_compare bf16-eval_mm", "loss_compare float32"]
