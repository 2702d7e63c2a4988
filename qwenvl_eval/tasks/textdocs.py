"""Text-oriented VQA on documents, charts and diagrams: DocVQA (ANLS), ChartQA (relaxed
accuracy), AI2D and OCR-VQA (exact match).

Paper protocol (Qwen-VL eval_mm/evaluate_vqa.py): the VQA prompt `<img>{image}</img>{question}
Answer:`, greedy, at least 1 new token, length penalty 1; at most 100 new tokens (DocVQA,
ChartQA, OCR-VQA) or 10 (AI2D). The output is stripped before scoring.

ChartQA's single paper number is the mean of its two test splits: `chartqa` loads both,
tags every item with its split and reports each split and their mean.
"""

from __future__ import annotations

from typing import ClassVar

from .. import metrics as M
from ..registry import register_task
from ..types import Document, FamilyInfo, Generation, ItemResult, Response
from .base import Aggregate, Scored, Task
from .data.ai2d import AI2DData
from .data.chartqa import ChartQAData
from .data.docvqa import DocVQAData
from .data.ocrvqa import OCRVQAData
from .vqa import SHORT_ANSWER, VQA_PROMPTS, VQASubmissionTask

LONG_ANSWER = Generation(max_new_tokens=100, min_new_tokens=1, length_penalty=1.0)


def _stripped(response: Response) -> str:
    return (response.text or "").strip()


@register_task("docvqa", group=("paper-table5",), aliases=("docvqa_val",))
class DocVQA(Task):
    description = "DocVQA val (ANLS)"
    dataset = DocVQAData("val")
    prompts = VQA_PROMPTS
    generation = LONG_ANSWER
    metrics = ("anls",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        pred = _stripped(response)
        return Scored(answer=pred, scores={"anls": float(M.anls(pred, doc.fields["answers"]))})


@register_task("docvqa_test")
class DocVQATest(VQASubmissionTask):
    """No public answers: the stripped outputs go to the submission file for the DocVQA
    server, `[{"questionId", "answer"}]`; prompt and decoding as `docvqa`."""

    description = "DocVQA test: writes the submission file [{questionId, answer}]"
    dataset = DocVQAData("test")
    prompts = DocVQA.prompts
    generation = DocVQA.generation
    submission_key = "questionId"


@register_task("chartqa", group=("paper-table5",))
class ChartQA(Task):
    """Both test splits. `relaxed_acc` is the MEAN of the two splits' accuracies (each split
    has 1250 questions, so on the full set this equals the pooled accuracy; on a --limit run
    it is the mean of the splits present), reported with `relaxed_acc_human` and
    `relaxed_acc_augmented` for each split that has items."""

    description = "ChartQA test, mean of human and augmented (relaxed accuracy)"
    dataset = ChartQAData(("human", "augmented"))
    prompts = VQA_PROMPTS
    generation = LONG_ANSWER
    metrics = ("relaxed_acc", "relaxed_acc_correct")
    # "paper": Qwen-VL's swapped arguments (relative error divided by the prediction);
    # "correct": divided by the target. The other mode is reported as relaxed_acc_correct.
    relaxed_mode: ClassVar[str] = "paper"

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        pred = _stripped(response)
        answers = doc.fields["answers"]
        return Scored(
            answer=pred,
            scores={
                "relaxed_acc": float(M.relaxed_accuracy(pred, answers, mode=self.relaxed_mode)),
                "relaxed_acc_correct": float(M.relaxed_accuracy(pred, answers, mode="correct")),
            },
        )

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        by_split: dict[str, list[ItemResult]] = {}
        for it in items:
            by_split.setdefault(docs[it.id].fields["split"], []).append(it)
        per_split = {
            s: super(ChartQA, self).aggregate(its, docs).metrics for s, its in by_split.items()
        }
        out: dict[str, float] = {}
        for m in self.metrics:
            out[m] = sum(v[m] for v in per_split.values()) / len(per_split) if per_split else 0.0
        if len(self.dataset.splits) > 1:
            for s, v in per_split.items():
                out[f"relaxed_acc_{s}"] = v["relaxed_acc"]
        return Aggregate(out)

    def notes(self, limited: bool, seed: int = 0) -> list[str]:
        notes = [
            f"relaxed_acc: relaxed accuracy in {self.relaxed_mode!r} mode (Qwen-VL "
            "divides the relative error by the prediction); relaxed_acc_correct divides "
            "by the target"
        ]
        if len(self.dataset.splits) > 1:
            notes.append(
                "relaxed_acc is the mean of the human and augmented splits' accuracies"
                + (" (a --limit run may not reach the augmented split)" if limited else "")
            )
        return notes


@register_task("chartqa_human")
class ChartQAHuman(ChartQA):
    description = "ChartQA test, human-written questions (relaxed accuracy)"
    dataset = ChartQAData(("human",))


@register_task("chartqa_augmented")
class ChartQAAugmented(ChartQA):
    description = "ChartQA test, machine-generated questions (relaxed accuracy)"
    dataset = ChartQAData(("augmented",))


class ExactMatchTask(Task):
    """`strip().lower()` equality with any reference, as Qwen-VL's script scores it."""

    prompts = VQA_PROMPTS
    metrics = ("acc",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        pred = _stripped(response)
        return Scored(
            answer=pred, scores={"acc": float(M.exact_match(pred, doc.fields["answers"]))}
        )


@register_task("ai2d", group=("paper-table5",), aliases=("ai2d_test", "ai2diagram"))
class AI2D(ExactMatchTask):
    description = "AI2D test (exact match)"
    dataset = AI2DData()
    generation = SHORT_ANSWER


@register_task("ocrvqa", group=("paper-table5",), aliases=("ocrvqa_test",))
class OCRVQA(ExactMatchTask):
    description = "OCR-VQA test (exact match)"
    dataset = OCRVQAData("test")
    generation = LONG_ANSWER
