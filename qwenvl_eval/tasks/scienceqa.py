"""ScienceQA test: option scoring (the paper's protocol) and a generation variant.

Paper protocol (Qwen-VL eval_mm/evaluate_multiple_choice.py), the prompt
`<img>{image}</img>Context: {hint or N/A}\\nQuestion: {question}\\nOptions: {options}\\nAnswer:`
with one `X. choice` line per option (`A. c0\\nB. c1`), and no generation: each option letter
is scored as the continuation ` A`, ` B`, ... by its mean cross-entropy, and the prediction is
the lowest one (= the highest mean log-probability).

- `scienceqa_img`: the 2017 test questions with an image (the paper's SciQA-Img number).
- `scienceqa`: all 4241 test questions; those without an image get the same prompt without
  the `<img>` span. Reported with the ScienceQA paper's breakdown: subject (NAT / SOC / LAN),
  context (TXT: has a hint, IMG: has an image, NO: neither) and grade (G1-6 / G7-12).
- `scienceqa_img_gen`: the model writes the answer; the option letter is parsed from it.
"""

from __future__ import annotations

import dataclasses
import re

from .. import metrics as M
from ..registry import register_task
from ..types import Document, FamilyInfo, Generation, ItemResult, OptionScore, Response
from .base import Aggregate, Scored, ScoringTask, Task
from .data.scienceqa import LETTERS, ScienceQAData
from .prompts import IMAGE_SLOT, Chat, Prompt, Raw

SQA_PROMPTS = {
    "qwen-vl": Raw(
        "<img>{image}</img>Context: {context}\nQuestion: {question}\nOptions: {options}\nAnswer:"
    ),
    "chat": Chat(
        "Context: {context}\nQuestion: {question}\nOptions: {options}\n"
        "Answer with the option's letter from the given choices directly."
    ),
}


def letter(index: int | None) -> str | None:
    return None if index is None else LETTERS[index]


class ScienceQAScores(Task):
    """Per item: 1 if the chosen option is the answer. Reported: `acc`, and the ScienceQA
    paper's categories that have items: NAT / SOC / LAN, TXT / IMG / NO, G1-6 / G7-12."""

    prompts = SQA_PROMPTS
    metrics = ("acc",)

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        return Aggregate(breakdown(items, docs))


class ScienceQAScoring(ScienceQAScores, ScoringTask):
    def options(self, doc: Document) -> tuple[str, ...]:
        return tuple(f" {LETTERS[i]}" for i in range(len(doc.fields["choices"])))

    def doc_prompt(self, doc: Document, family: FamilyInfo) -> Prompt:
        """The family's prompt; for a question without an image, the same text without the
        `<img>` span (chat prompts simply have no image part then)."""
        prompt = self.prompt_for(family)
        if not doc.images and isinstance(prompt, Raw):
            prompt = dataclasses.replace(prompt, template=prompt.template.replace(IMAGE_SLOT, ""))
        return prompt

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        options = response.options or ()
        if len(options) != len(doc.fields["choices"]):
            raise ValueError(
                f"expected {len(doc.fields['choices'])} option scores, got {len(options)}"
            )
        losses, mode = option_losses(options, response.meta, family)
        best = M.argmin_option(losses)  # the first one on a tie, as torch's argmin
        return Scored(
            answer=letter(best),
            scores={"acc": float(best == doc.fields["answer"])},
            extra={"mean_loss": losses, "loss_compare": mode},
        )

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        # The comparison these items were scored with (a resumed run may mix two).
        modes = sorted(
            {it.extra["loss_compare"] for it in items if it.extra.get("loss_compare") in _MODES}
        )
        notes = [f"loss_compare {m}: {_MODES[m]}" for m in modes]
        return Aggregate(breakdown(items, docs), notes=notes)


_MODES = {
    "bf16-eval_mm": "paper mode on bf16 logits: each option's mean cross-entropy rounded to "
    "bf16 as the Qwen-VL ScienceQA script computes it, compared as bf16 (a tie goes to the "
    "first option)",
    "float32": "options compared by their mean cross-entropy from float32 log-softmax values",
}


def option_losses(
    options: tuple[OptionScore, ...], meta: dict, family: FamilyInfo
) -> tuple[list[float], str]:
    """Each option's mean cross-entropy and how it was compared. In paper mode (the qwen-vl
    family) on bf16 logits, eval_mm's rounding: the runner reports each option's token
    log-probs (`meta["option_token_logprobs"]`) and the logits dtype; otherwise minus the mean
    log-probability (float32 values, compared without rounding)."""
    tokens = meta.get("option_token_logprobs")
    if (
        family.name == "qwen-vl"
        and meta.get("logits_dtype") == "bfloat16"
        and isinstance(tokens, list)
        and len(tokens) == len(options)
    ):
        return [M.eval_mm_bf16_loss(t) for t in tokens], "bf16-eval_mm"
    return [-o.mean_logprob for o in options], "float32"


def breakdown(items: list[ItemResult], docs: dict[str, Document]) -> dict[str, float]:
    """`acc` x100 overall, and per ScienceQA category that has items (metrics helper)."""
    records = [
        {
            "correct": it.score.get("acc") == 1.0,
            "has_text_context": bool(docs[it.id].fields["hint"]),
            "has_image": docs[it.id].fields["has_image"],
            "subject": docs[it.id].fields["subject"],
            "grade": docs[it.id].fields["grade"],
        }
        for it in items
    ]
    groups = M.scienceqa_accuracy(records)
    return {("acc" if g == "overall" else g): 100.0 * v.accuracy for g, v in groups.items()}


@register_task("scienceqa_img", group=("paper-table4",), aliases=("scienceqa_test_img",))
class ScienceQAImg(ScienceQAScoring):
    description = "ScienceQA test, questions with an image (option scoring, accuracy)"
    dataset = ScienceQAData("test", image_only=True)


@register_task("scienceqa", aliases=("scienceqa_test",))
class ScienceQA(ScienceQAScoring):
    description = "ScienceQA test, all questions (option scoring; TXT/IMG/NO breakdown)"
    dataset = ScienceQAData("test", image_only=False)


# "B", "B.", "B:", "(B)", "B) text"; not "A dog" (an article, not a choice).
_LEAD = re.compile(r"^\(?([A-Z])(?:$|[.:)])")
_STATED = re.compile(r"(?i:answer is):?\s*\(?([A-Z])(?:$|[.:)\s])")


def parse_choice(text: str, choices: list[str]) -> int | None:
    """The chosen option's index: a leading letter ("B", "B.", "(B) ..."), else "the answer
    is B", else the text of exactly one option; None when nothing matches."""
    text = text.strip()
    for pattern in (_LEAD, _STATED):
        m = pattern.search(text)
        if m and LETTERS.index(m.group(1)) < len(choices):
            return LETTERS.index(m.group(1))
    bare = text.rstrip(".").strip().lower()
    matches = [i for i, c in enumerate(choices) if c.strip().lower() == bare]
    return matches[0] if len(matches) == 1 else None


@register_task("scienceqa_img_gen")
class ScienceQAImgGen(ScienceQAScores):
    """The same questions and prompt as `scienceqa_img`, answered by generation."""

    description = "ScienceQA test with an image, generated answer letter (accuracy)"
    dataset = ScienceQAImg.dataset
    generation = Generation(max_new_tokens=10, min_new_tokens=1, length_penalty=1.0)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        choice = parse_choice(response.text or "", doc.fields["choices"])
        return Scored(answer=letter(choice), scores={"acc": float(choice == doc.fields["answer"])})
