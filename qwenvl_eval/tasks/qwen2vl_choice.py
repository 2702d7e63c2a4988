"""Multiple-choice benchmarks of the Qwen2-VL report, scored as VLMEvalKit scores them:
MMBench dev EN/CN, V1.0/V1.1 (CircularEval), MMStar and RealWorldQA.

Protocol: the Qwen2-VL multiple-choice prompt (`qwen2vl_prompts`, VLMEvalKit's
`_build_mcq_prompt`), greedy, at most 2048 new tokens; the answer letter is read from the
generated text by VLMEvalKit's rules (`can_infer`, metrics.vlmeval_choice). Answered by
generation, as the reference protocol does (not by option likelihood). No LLM judge: an
answer the rules cannot read is wrong, as in VLMEvalKit without a judge.
"""

from __future__ import annotations

from ..metrics.mmbench import Rotation, circular_hit
from ..metrics.vlmeval_choice import ChoiceRecord, choice_breakdown, infer_choice
from ..registry import register_task
from ..semantics import no_item_score
from ..types import Document, FamilyInfo, ItemResult, Response
from .base import Aggregate, Scored, Task
from .data.vlmeval_bench import BenchSource
from .data.vlmeval_choice_data import (
    MMBENCH_DEV_CN,
    MMBENCH_DEV_EN,
    MMBENCH_V11_DEV_CN,
    MMBENCH_V11_DEV_EN,
    MMSTAR,
    REALWORLDQA,
)
from .prompts import Prompt
from .qwen2vl_prompts import (
    MCQ_PROMPTS,
    NO_OPTIONS_PROMPTS,
    SOURCE,
    VLMEVAL_GENERATION,
    with_prompt_fields,
)

GROUP = ("qwen2vl-image",)
# The report's table has MMBench-EN, MMBench-CN and MMBench-V1.1 (EN): those run with the
# report's group; V1.1 CN is in the per-benchmark group only.
MMBENCH = ("mmbench",)


class ChoiceTask(Task):
    """One generated answer per item; `acc`: the rules read the right letter (for an item
    without options: the stripped answer equals the reference, case-insensitively)."""

    dataset: BenchSource
    prompts = MCQ_PROMPTS
    prompt_source = SOURCE
    generation = VLMEVAL_GENERATION
    metrics = ("acc",)

    def doc_prompt(self, doc: Document, family: FamilyInfo) -> Prompt:
        if doc.fields["options"]:
            return self.prompt_for(family)
        return _pick(NO_OPTIONS_PROMPTS, family, self)

    def prompt_doc(self, doc: Document) -> Document:
        return with_prompt_fields(doc)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        text = response.text or ""
        options, answer = doc.fields["options"], doc.fields["answer"]
        if not options:
            read = text.strip()
            return Scored(answer=read, scores={"acc": float(read.lower() == answer.lower())})
        letter = infer_choice(text, options)
        return Scored(answer=letter, scores={"acc": float(letter == answer)})

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        records = [_record(it.score.get("acc") == 1.0, docs[it.id]) for it in items]
        return Aggregate(_named(choice_breakdown(records).get("none", {}), "acc"))


def _pick(prompts: dict[str, Prompt], family: FamilyInfo, task: Task) -> Prompt:
    for key in family.prompt_keys:
        if key in prompts:
            return prompts[key]
    return task.prompt_for(family)  # raises the usual error


def _record(hit: bool, doc: Document) -> ChoiceRecord:
    return ChoiceRecord(hit, doc.fields.get("category"), doc.fields.get("l2_category"))


def _named(row: dict[str, float], headline: str) -> dict[str, float]:
    """VLMEvalKit's `report_acc` row x100: `Overall` under the headline's name, each
    category under `{headline}/{category}`."""
    return {(headline if k == "Overall" else f"{headline}/{k}"): 100.0 * v for k, v in row.items()}


class MMBenchDev(ChoiceTask):
    """CircularEval: each question is asked once per rotation of its options (the TSV's rows
    `index + k x 1e6`); it counts only if every rotation is read as right. `acc` is the
    per-rotation accuracy (VLMEvalKit's vanilla number); per category and level-2 ability.
    The variants differ in their file only: VLMEvalKit scores every MMBench file this way, and
    a Chinese item gets the Chinese instruction from the prompt builder itself."""

    metrics = ("circular_acc", "acc")
    meanings = {"circular_acc": no_item_score()}  # a question = several items

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        groups: dict[int, list[ItemResult]] = {}
        for it in items:
            groups.setdefault(docs[it.id].fields["group"], []).append(it)
        records = []
        for rotations in groups.values():
            first = docs[rotations[0].id]
            hit = circular_hit(
                Rotation(it.output, docs[it.id].fields["options"], docs[it.id].fields["answer"])
                for it in rotations
            )
            records.append(_record(hit, first))
        out = _named(choice_breakdown(records).get("none", {}), "circular_acc")
        out["acc"] = super().aggregate(items, docs).metrics.get("acc", 0.0)
        notes = [f"circular_acc over {len(groups)} questions ({len(items)} rotations)"]
        return Aggregate(out, notes=notes)


@register_task("mmbench_dev_en", group=GROUP + MMBENCH)
class MMBenchDevEN(MMBenchDev):
    description = "MMBench dev EN, CircularEval (VLMEvalKit rules, no judge)"
    dataset = MMBENCH_DEV_EN


@register_task("mmbench_dev_cn", group=GROUP + MMBENCH)
class MMBenchDevCN(MMBenchDev):
    description = "MMBench dev CN, CircularEval (VLMEvalKit rules, no judge)"
    dataset = MMBENCH_DEV_CN


@register_task("mmbench_v11_dev_en", group=GROUP + MMBENCH)
class MMBenchV11DevEN(MMBenchDev):
    description = "MMBench V1.1 dev EN, CircularEval (VLMEvalKit rules, no judge)"
    dataset = MMBENCH_V11_DEV_EN


@register_task("mmbench_v11_dev_cn", group=MMBENCH)
class MMBenchV11DevCN(MMBenchDev):
    description = "MMBench V1.1 dev CN, CircularEval (VLMEvalKit rules, no judge)"
    dataset = MMBENCH_V11_DEV_CN


@register_task("mmstar", group=GROUP)
class MMStar(ChoiceTask):
    description = "MMStar val (VLMEvalKit rules; per capability and axis)"
    dataset = MMSTAR


@register_task("realworldqa", group=GROUP)
class RealWorldQA(ChoiceTask):
    description = "RealWorldQA test (VLMEvalKit rules)"
    dataset = REALWORLDQA
