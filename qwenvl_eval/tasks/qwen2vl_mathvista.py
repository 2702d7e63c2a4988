"""MathVista testmini, scored by the official rules without the LLM (metrics.mathvista):
the answer read from the response by `extract_answer.py`'s rules (the `The answer is "X".`
sentence included), normalised by `normalize_extracted_answer`, compared by `safe_equal`.
Where the official pipeline would ask GPT-4 to extract the answer, the extraction is ""
(what the official code records when that call fails); the count of such items is a note.
With `--judge-*` those items go to the judge with the official extraction prompt
(`mathvista_extraction_prompt`) and its reply is normalised and compared as the rules' is.

Prompt: VLMEvalKit's Qwen2-VL short-answer text after MathVista's query (`_build_vqa_prompt`),
greedy, at most 2048 new tokens.
"""

from __future__ import annotations

from ..metrics.mathvista import (
    MATHVISTA_EXTRACTION_DEMO,
    MATHVISTA_EXTRACTION_SOURCE,
    mathvista_breakdown,
    mathvista_extraction_prompt,
    mathvista_judge_score,
    mathvista_score,
)
from ..registry import register_task
from ..types import Document, FamilyInfo, ItemResult, JudgePrompt, Response
from .base import Aggregate, Scored, Task
from .data.mathvista import MATHVISTA_TESTMINI
from .qwen2vl_prompts import GROUP, VLMEVAL_GENERATION, VQA_PROMPTS


@register_task("mathvista_testmini", group=GROUP, aliases=("mathvista",))
class MathVistaTestmini(Task):
    """`acc` x100; per value of each official breakdown key, `acc/{key}/{value}` (skills:
    over the items listing the skill)."""

    description = "MathVista testmini (official rule-based extraction; LLM judge optional)"
    dataset = MATHVISTA_TESTMINI
    prompts = VQA_PROMPTS
    generation = VLMEVAL_GENERATION
    metrics = ("acc",)
    # The official `get_chat_response`: max_tokens 256.
    judge_prompt = JudgePrompt(
        "mathvista-extract-answer", MATHVISTA_EXTRACTION_SOURCE, MATHVISTA_EXTRACTION_DEMO, 256
    )

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        f = doc.fields
        extraction, prediction, ok = mathvista_score(
            (response.text or "").strip(), f["answer"], f["question_type"], f["answer_type"],
            f["choices"], f["precision"], quick_extract=True,
        )  # fmt: skip
        return Scored(prediction, {"acc": float(ok)}, extra={"extraction": extraction})

    def judge_queries(self, items: list[ItemResult], docs: dict[str, Document]) -> dict[str, str]:
        """The items whose non-empty response the rules could not read (the official code
        asks the LLM exactly then; an empty response stays "")."""
        return {
            it.id: mathvista_extraction_prompt(docs[it.id].fields["question"], it.output.strip())
            for it in items
            if it.error is None and it.extra.get("extraction") == "" and (it.output or "").strip()
        }

    def judged(self, doc: Document, item: ItemResult, reply: str) -> Scored | None:
        f = doc.fields
        extraction = reply.strip()
        if not extraction:
            return None
        prediction, ok = mathvista_judge_score(
            extraction, f["answer"], f["question_type"], f["answer_type"], f["choices"],
            f["precision"],
        )  # fmt: skip
        return Scored(prediction, {"acc": float(ok)}, extra={"extraction": extraction})

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        groups = mathvista_breakdown(
            {**docs[it.id].fields["meta"], "correct": it.score.get("acc") == 1.0} for it in items
        )
        out = {"acc": 100.0 * groups.pop("average")["all"].accuracy}
        for key, values in groups.items():
            out.update({f"acc/{key}/{v}": 100.0 * g.accuracy for v, g in values.items()})
        unread = sum(1 for it in items if it.extra.get("extraction") == "")
        if any("judge" in it.extra for it in items):
            note = f"{unread} response(s) neither the rules nor the LLM judge could read"
        else:
            note = f"{unread} response(s) the rules could not read (no LLM)"
        return Aggregate(out, notes=[note])
