"""Multiple-choice benchmarks of the Qwen2-VL report, scored as VLMEvalKit scores them:
MMBench dev EN/CN, V1.0/V1.1 (CircularEval), MMStar and RealWorldQA.

Protocol: the Qwen2-VL multiple-choice prompt (`qwen2vl_prompts`, VLMEvalKit's
`_build_mcq_prompt`), greedy, at most 2048 new tokens; the answer letter is read from the
generated text by VLMEvalKit's rules (`can_infer`, metrics.vlmeval_choice). Answered by
generation, as the reference protocol does (not by option likelihood). By default no LLM
judge: an answer the rules cannot read is wrong, as in VLMEvalKit without a judge. With
`--judge-*` such answers go to the judge with VLMEvalKit's matching prompt
(`choice_judge_prompt`: `build_prompt`, or `build_prompt_cn` for a question with a Chinese
character, as `extract_answer_from_item` picks) and the letter is read from its reply by the
same rules.
"""

from __future__ import annotations

from ..metrics.vlmeval_choice import (
    CHOICE_JUDGE_SOURCE,
    CHOICE_JUDGE_SOURCE_CN,
    CHOICE_JUDGE_TEMPLATE,
    CHOICE_JUDGE_TEMPLATE_CN,
    ChoiceRecord,
    choice_breakdown,
    choice_judge_prompt,
    infer_choice,
    is_cn_question,
    judge_choice,
)
from ..registry import register_task
from ..semantics import no_item_score
from ..types import Document, FamilyInfo, ItemResult, JudgePrompt, JudgeQuery, Response
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
    GROUP,
    MCQ_PROMPTS,
    NO_OPTIONS_PROMPTS,
    SOURCE,
    VLMEVAL_GENERATION,
    with_prompt_fields,
)

# The report's table has MMBench-EN, MMBench-CN and MMBench-V1.1 (EN): those run with the
# report's group; V1.1 CN is in the per-benchmark group only.
MMBENCH = ("mmbench",)

# VLMEvalKit's judge call: its default generation length (`max_tokens` 2048 is the API
# wrapper's default; the reply is one letter).
JUDGE_EN = JudgePrompt("vlmeval-choice-match", CHOICE_JUDGE_SOURCE, CHOICE_JUDGE_TEMPLATE, 2048)
JUDGE_CN = JudgePrompt(
    "vlmeval-choice-match-cn", CHOICE_JUDGE_SOURCE_CN, CHOICE_JUDGE_TEMPLATE_CN, 2048
)


class ChoiceTask(Task):
    """One generated answer per item; `acc`: the rules read the right letter (for an item
    without options: the stripped answer equals the reference, case-insensitively)."""

    dataset: BenchSource
    prompts = MCQ_PROMPTS
    prompt_source = SOURCE
    generation = VLMEVAL_GENERATION
    metrics = ("acc",)
    # The English prompt; an item whose question is Chinese is asked with JUDGE_CN.
    judge_prompt = JUDGE_EN

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

    def judge_queries(
        self, items: list[ItemResult], docs: dict[str, Document]
    ) -> dict[str, JudgeQuery]:
        """Answered items with options whose letter the rules could not read, each with the
        prompt VLMEvalKit picks for its question (by the question alone, for every task)."""
        out = {}
        for it in items:
            f = docs[it.id].fields
            if it.error is None and f["options"] and it.answer is None:
                prompt = JUDGE_CN if is_cn_question(f["question"]) else JUDGE_EN
                text = choice_judge_prompt(f["question"], f["options"], it.output or "")
                out[it.id] = JudgeQuery(prompt, text)
        return out

    def judged(self, doc: Document, item: ItemResult, reply: str) -> Scored | None:
        letter = judge_choice(reply, doc.fields["options"])
        if letter is None:
            return None
        return Scored(answer=letter, scores={"acc": float(letter == doc.fields["answer"])})

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
            # Every rotation read as its right letter, by the rules or (where they read
            # nothing) by the judge: VLMEvalKit's `prefetch_circular_group` + `eval_sub_data`.
            hit = all(it.answer == docs[it.id].fields["answer"] for it in rotations)
            records.append(_record(hit, first))
        out = _named(choice_breakdown(records).get("none", {}), "circular_acc")
        out["acc"] = super().aggregate(items, docs).metrics.get("acc", 0.0)
        notes = [f"circular_acc over {len(groups)} questions ({len(items)} rotations)"]
        return Aggregate(out, notes=notes)


@register_task("mmbench_dev_en", group=GROUP + MMBENCH)
class MMBenchDevEN(MMBenchDev):
    description = "MMBench dev EN, CircularEval (VLMEvalKit rules; LLM judge optional)"
    dataset = MMBENCH_DEV_EN


@register_task("mmbench_dev_cn", group=GROUP + MMBENCH)
class MMBenchDevCN(MMBenchDev):
    description = "MMBench dev CN, CircularEval (VLMEvalKit rules; LLM judge optional)"
    dataset = MMBENCH_DEV_CN


@register_task("mmbench_v11_dev_en", group=GROUP + MMBENCH)
class MMBenchV11DevEN(MMBenchDev):
    description = "MMBench V1.1 dev EN, CircularEval (VLMEvalKit rules; LLM judge optional)"
    dataset = MMBENCH_V11_DEV_EN


@register_task("mmbench_v11_dev_cn", group=MMBENCH)
class MMBenchV11DevCN(MMBenchDev):
    description = "MMBench V1.1 dev CN, CircularEval (VLMEvalKit rules; LLM judge optional)"
    dataset = MMBENCH_V11_DEV_CN


@register_task("mmstar", group=GROUP)
class MMStar(ChoiceTask):
    description = "MMStar val (VLMEvalKit rules; per capability and axis)"
    dataset = MMSTAR


@register_task("realworldqa", group=GROUP)
class RealWorldQA(ChoiceTask):
    description = "RealWorldQA test (VLMEvalKit rules)"
    dataset = REALWORLDQA
