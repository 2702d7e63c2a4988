"""OCRBench, MME, HallusionBench and InfographicVQA, each scored as its official code does it
(see the metric modules), asked with the Qwen2-VL prompts of VLMEvalKit's Qwen2-VL class
(`qwen2vl_prompts`): greedy, at most 2048 new tokens. No LLM judge is used by any of them.
InfographicVQA's test split has no public answers: `infovqa_test` writes the RRC submission
file instead (the server scores it with ANLS).

Known difference: VLMEvalKit's Qwen2-VL class gives OCRBench images at least 10x10x28x28
pixels (`min_pixels`); here every image goes through the model's own processor settings.
"""

from __future__ import annotations

from ..metrics.anls import anls
from ..metrics.hallusionbench import HallusionItem, hallusion_vlmeval_scores, hallusion_yes_no
from ..metrics.mme import MMEItem, mme_parse, mme_scores
from ..metrics.ocrbench import ocrbench_report, ocrbench_score
from ..registry import register_task
from ..semantics import MetricMeaning, no_item_score
from ..types import Document, FamilyInfo, ItemResult, Response
from .base import Aggregate, Scored, Task
from .data.vlmeval_open_data import HALLUSIONBENCH, INFOVQA_TEST, INFOVQA_VAL, MME, OCRBENCH
from .qwen2vl_prompts import (
    AS_WRITTEN_PROMPTS,
    GROUP,
    VLMEVAL_GENERATION,
    VQA_PROMPTS,
    YORN_PROMPTS,
)
from .vqa import VQASubmissionTask


@register_task("ocrbench", group=GROUP)
class OCRBench(Task):
    """`final_score`: items right (out of 1000 on the full set); `acc` = that share x100;
    the official per-category sums, the six recognition ones also as `Text Recognition`."""

    description = "OCRBench (official substring rule; score out of 1000)"
    dataset = OCRBENCH
    prompts = VQA_PROMPTS
    generation = VLMEVAL_GENERATION
    metrics = ("final_score", "acc")
    meanings = {"final_score": no_item_score()}

    def item_metrics(self) -> tuple[str, ...]:
        return ("acc",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        text = response.text or ""
        hit = ocrbench_score(text, doc.fields["answers"], doc.fields["category"])
        return Scored(answer=text.strip(), scores={"acc": float(hit)})

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        report = ocrbench_report(
            (docs[it.id].fields["category"], int(it.score.get("acc", 0.0))) for it in items
        )
        out = {"final_score": float(report.pop("Final Score"))}
        out["acc"] = super().aggregate(items, docs).metrics["acc"]
        out.update({f"score/{k}": float(v) for k, v in report.items()})
        return Aggregate(out)


@register_task("mme", group=GROUP)
class MMEBench(Task):
    """`perception` (10 subtasks, at most 2000) and `cognition` (4, at most 800): sums of each
    subtask's 100 x (acc + acc+); per subtask under `score/{subtask}`; `acc` per question."""

    description = "MME (official yes/no rule; perception and cognition sums)"
    dataset = MME
    prompts = AS_WRITTEN_PROMPTS
    generation = VLMEVAL_GENERATION
    metrics = ("perception", "cognition", "total", "acc")
    meanings = {m: no_item_score() for m in ("perception", "cognition", "total")}

    def item_metrics(self) -> tuple[str, ...]:
        return ("acc",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        read = mme_parse(response.text)
        return Scored(answer=read, scores={"acc": float(read == doc.fields["answer"].lower())})

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        scores = mme_scores(
            MMEItem(
                docs[it.id].fields["subtask"],
                docs[it.id].fields["image_key"],
                docs[it.id].fields["answer"],
                it.output,
            )
            for it in items
        )
        out = {
            "perception": scores.perception,
            "cognition": scores.cognition,
            "total": scores.perception + scores.cognition,
            "acc": super().aggregate(items, docs).metrics["acc"],
        }
        out.update({f"score/{k}": v.score for k, v in scores.subtasks.items()})
        return Aggregate(out)


@register_task("hallusionbench", group=GROUP)
class HallusionBench(Task):
    """VLMEvalKit's `Hallusion_rating`: `aAcc` (questions), `fAcc` (figures with every
    question right), `qAcc` (questions right over all their figures), x100; `overall` is
    their mean, the number VLMEvalKit reports; per category and subcategory `aAcc/{name}`."""

    description = "HallusionBench (yes/no rule; aAcc, fAcc, qAcc)"
    dataset = HALLUSIONBENCH
    prompts = YORN_PROMPTS
    generation = VLMEVAL_GENERATION
    metrics = ("overall", "aAcc", "fAcc", "qAcc")
    meanings = {
        "overall": no_item_score(),
        "aAcc": MetricMeaning(item_key="acc"),
        "fAcc": no_item_score(),
        "qAcc": no_item_score(),
    }

    def item_metrics(self) -> tuple[str, ...]:
        return ("acc",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        read = hallusion_yes_no(response.text)
        return Scored(answer=read, scores={"acc": float(read == doc.fields["answer"])})

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        rows = hallusion_vlmeval_scores(
            HallusionItem(
                **{k: docs[it.id].fields[k] for k in _HALLUSION_KEYS},
                answer=docs[it.id].fields["answer"],
                prediction=it.output,
            )
            for it in items
        )
        overall = rows.pop("Overall")
        out = {m: 100.0 * getattr(overall, m).value for m in ("aAcc", "fAcc", "qAcc")}
        out = {"overall": sum(out.values()) / 3, **out}
        out.update({f"aAcc/{name}": 100.0 * s.aAcc.value for name, s in rows.items()})
        return Aggregate(out)


_HALLUSION_KEYS = ("category", "subcategory", "set_id", "figure_id", "question_id")


@register_task("infovqa", group=GROUP, aliases=("infovqa_val",))
class InfoVQA(Task):
    """ANLS of the stripped answer against the references (the DocVQA metric, whose official
    script is InfographicVQA's own `infographicsvqa_eval.py`)."""

    description = "InfographicVQA val (ANLS)"
    dataset = INFOVQA_VAL
    prompts = VQA_PROMPTS
    generation = VLMEVAL_GENERATION
    metrics = ("anls",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        pred = (response.text or "").strip()
        return Scored(answer=pred, scores={"anls": float(anls(pred, doc.fields["answers"]))})


# Not in the qwen2vl-image group: that group runs start to end here, this one needs the server.
@register_task("infovqa_test")
class InfoVQATest(VQASubmissionTask):
    """No public answers: the stripped outputs go to the RRC InfographicVQA submission file,
    `[{"questionId": int, "answer": str}]` (DocVQA task 1's form); prompt and decoding as
    `infovqa`."""

    description = "InfographicVQA test: writes the submission file [{questionId, answer}]"
    dataset = INFOVQA_TEST
    prompts = InfoVQA.prompts
    generation = InfoVQA.generation
    submission_key = "questionId"
