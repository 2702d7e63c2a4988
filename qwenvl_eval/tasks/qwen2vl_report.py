"""The Qwen-VL paper's text-oriented benchmarks asked as the Qwen2-VL report's reference runs
asked them: `textvqa_qwen2vl`, `docvqa_qwen2vl`, `chartqa_qwen2vl`, `ai2d_qwen2vl`.

The base tasks (`textvqa`, `docvqa`, `chartqa`, `ai2d`) keep the Qwen-VL paper's protocol
for `qwen-vl` and the harness's own chat prompt for the chat families, so their prompt hashes
and the paper's numbers do not move; these variants are selected by name (and by the group
`qwen2vl-image`), each derived from its base declaration: same data, same metric code.

Source: VLMEvalKit, whose runs the report's table was compared with.
- Prompts: `vlmeval/vlm/qwen2_vl/prompt.py` (`Qwen2VLPromptMixin`). TextVQA_VAL, DocVQA_VAL
  and ChartQA_TEST are VQA datasets there: `_build_vqa_prompt` appends "\\nPlease try to
  answer the question with short words or phrases if possible." (`qwen2vl_prompts.VQA_TEXT`).
  AI2D_TEST is an MCQ dataset: `_build_mcq_prompt` (`qwen2vl_prompts.MCQ_TEXT`).
- Decoding: `vlmeval/vlm/qwen2_vl/model.py` (`Qwen2VLChat`): top_k=1 (greedy), at most
  2048 new tokens, repetition penalty 1.0.
- Scoring: `vlmeval/dataset/utils/vqa_eval.py` calls `relaxed_correctness(target,
  prediction)` (pix2struct's order: the relative error is divided by the TARGET), so ChartQA's
  headline here is relaxed accuracy in "correct" mode; AI2D is read as an option letter by
  `can_infer` (metrics.vlmeval_choice), no judge. DocVQA (ANLS) and TextVQA (VQA accuracy)
  keep the base tasks' metrics. Known difference: VLMEvalKit's `vqa_score` normalises the
  prediction AND every human answer (punctuation, digits, articles) on every question, which
  neither of our two VQA normalisations does exactly (both are reported).
- Data: AI2D as VLMEvalKit's `AI2D_TEST.tsv` when present (`data.ai2d.AI2DChoiceData`).

RefCOCO needs no variant: the `qwen2-vl` grounding prompt of `grounding.py` already asks in
the Qwen2-VL report's grounding format, and VLMEvalKit has no RefCOCO run for Qwen2-VL.
"""

from __future__ import annotations

from ..registry import register_task
from .base import Task
from .data.ai2d import AI2DChoiceData
from .qwen2vl_choice import ChoiceTask
from .qwen2vl_prompts import GROUP, SOURCE, VLMEVAL_GENERATION, VQA_PROMPTS
from .textdocs import ChartQA, DocVQA
from .vqa import TextVQA

NOTE = (
    "prompt and decoding of the Qwen2-VL report's reference runs: "
    f"{SOURCE} and vlmeval/vlm/qwen2_vl/model.py (greedy, at most 2048 new tokens)"
)


class ReportProtocol(Task):
    """Says in the results whose protocol the variant follows."""

    def notes(self, limited: bool, seed: int = 0) -> list[str]:
        return [*super().notes(limited, seed), NOTE]


@register_task("textvqa_qwen2vl", group=GROUP)
class TextVQAQwen2VL(ReportProtocol, TextVQA):
    description = "TextVQA val, Qwen2-VL report protocol (VLMEvalKit prompt; VQA accuracy)"
    prompts = VQA_PROMPTS
    prompt_source = SOURCE
    generation = VLMEVAL_GENERATION


@register_task("docvqa_qwen2vl", group=GROUP)
class DocVQAQwen2VL(ReportProtocol, DocVQA):
    description = "DocVQA val, Qwen2-VL report protocol (VLMEvalKit prompt; ANLS)"
    prompts = VQA_PROMPTS
    prompt_source = SOURCE
    generation = VLMEVAL_GENERATION


@register_task("chartqa_qwen2vl", group=GROUP)
class ChartQAQwen2VL(ReportProtocol, ChartQA):
    description = "ChartQA test, Qwen2-VL report protocol (VLMEvalKit prompt and relaxed accuracy)"
    prompts = VQA_PROMPTS
    prompt_source = SOURCE
    generation = VLMEVAL_GENERATION
    relaxed_mode = "correct"  # VLMEvalKit divides by the target


@register_task("ai2d_qwen2vl", group=GROUP)
class AI2DQwen2VL(ReportProtocol, ChoiceTask):
    description = "AI2D test, Qwen2-VL report protocol (multiple choice, VLMEvalKit rules)"
    dataset = AI2DChoiceData()
