"""MMMU validation, scored as the MMMU repository's `eval_utils.py` does it (metrics.mmmu).

Prompt: VLMEvalKit's Qwen2-VL MMMU builder (`_build_mmmu_prompt`): every image first, then
`Question: ...`, the options and "Please select the correct answer from the options above."
(English always); an open question is `Question: ...` alone. Greedy, at most 2048 new tokens.

The official code draws a random letter for an unparseable multiple-choice answer from one
`random` seeded with 42, in its scoring order. Here each such draw comes from
`random.Random("42:{item id}")`, so an item's score does not depend on which other items a
run scored (resume, --limit); the items drawn are marked (`extra.random`) and counted.
"""

from __future__ import annotations

import random

from ..metrics.mmmu import (
    MMMU_SEED,
    mmmu_breakdown,
    mmmu_choice_correct,
    mmmu_open_correct,
    mmmu_parse_choice,
    mmmu_parse_open,
)
from ..registry import register_task
from ..types import Document, FamilyInfo, ItemResult, Response
from .base import Aggregate, Scored, Task
from .data.mmmu import MMMU_VAL
from .prompts import IMAGE_SLOT, Chat, Prompt, Raw
from .qwen2vl_prompts import (
    GROUP,
    MCQ_EN,
    MCQ_PROMPTS,
    MCQ_TEXT,
    NO_OPTIONS_TEXT,
    VLMEVAL_GENERATION,
    with_prompt_fields,
)


@register_task("mmmu_val", group=GROUP, aliases=("mmmu",))
class MMMUVal(Task):
    """`acc`: right answers x100; per discipline `acc/Overall-{discipline}` and per subject
    `acc/{subject}`, weighted as the official `main_eval_only.py`."""

    description = "MMMU validation (official MMMU answer parsing)"
    dataset = MMMU_VAL
    prompts = MCQ_PROMPTS
    generation = VLMEVAL_GENERATION
    metrics = ("acc",)

    def doc_prompt(self, doc: Document, family: FamilyInfo) -> Prompt:
        text = MCQ_TEXT if doc.fields["options"] else NO_OPTIONS_TEXT
        if isinstance(self.prompt_for(family), Chat):
            return Chat(text)
        return Raw(IMAGE_SLOT * len(doc.images) + text)  # every image first, as for chat

    def prompt_doc(self, doc: Document) -> Document:
        doc = with_prompt_fields(doc)
        return Document(doc.id, doc.images, {**doc.fields, "mcq_instruction": MCQ_EN})

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        options, answer = doc.fields["options"], doc.fields["answer"]
        if not options:
            parsed = mmmu_parse_open(response.text)
            ok = mmmu_open_correct(answer, parsed)
            return Scored(answer=[str(p) for p in parsed], scores={"acc": float(ok)})
        choice = mmmu_parse_choice(response.text, options, random.Random(f"{MMMU_SEED}:{doc.id}"))
        ok = mmmu_choice_correct(answer, choice.letter)
        return Scored(choice.letter, {"acc": float(ok)}, extra={"random": choice.random})

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        groups = mmmu_breakdown(
            (docs[it.id].fields["subject"], it.score.get("acc") == 1.0) for it in items
        )
        out = {"acc": 100.0 * groups.pop("Overall").accuracy}
        out.update({f"acc/{k}": 100.0 * g.accuracy for k, g in groups.items() if g.count})
        drawn = sum(1 for it in items if it.extra.get("random"))
        notes = [f"{drawn} multiple-choice answer(s) unreadable: letter drawn (seed 42 per item)"]
        return Aggregate(out, notes=notes)
