"""The prompts the Qwen2-VL report's image benchmarks are asked with, per model family.

Source (chat families): VLMEvalKit's Qwen2-VL model class, `vlmeval/vlm/qwen2_vl/prompt.py`
(`Qwen2VLPromptMixin`), whose numbers the Qwen2-VL report's table was compared with. Its
texts, rebuilt here from the items' fields (images always first, then one text part):

- multiple choice (`_build_mcq_prompt`; MMBench, MMStar, RealWorldQA, MMMU with options):
  `[Hint: {hint}\\n]Question: {question}\\nOptions:\\n{A. a\\nB. b\\n...}` then "Please select
  the correct answer from the options above." (MMMU: the same with a trailing " \\n"), or
  "请直接回答选项字母。" when that text has a CJK character; the whole text right-stripped.
- yes/no (`_build_yorn_prompt`; HallusionBench): `{question} Please answer yes or no.`
  MME is not in its list: MME's own question text (it ends with its instruction) is sent.
- short answer (`_build_vqa_prompt`; OCRBench, MathVista, InfographicVQA):
  `{question}\\nPlease try to answer the question with short words or phrases if possible.`

VLMEvalKit decodes with `top_k=1` (greedy) and at most 2048 new tokens (`Qwen2VLChat`).

The Qwen-VL (2023) family was not evaluated on these benchmarks; it gets the same text after
its `<img>` span, as a raw prompt, so that every family can run every task.
"""

from __future__ import annotations

import re
from typing import Any

from ..types import Document, Generation
from .prompts import Chat, Raw

SOURCE = "VLMEvalKit vlmeval/vlm/qwen2_vl/prompt.py (Qwen2VLPromptMixin)"
VLMEVAL_GENERATION = Generation(max_new_tokens=2048)
# The group that regenerates the report's image table (`table --paper qwen2vl-image`).
GROUP = ("qwen2vl-image",)

MCQ_EN = "Please select the correct answer from the options above."
MCQ_CN = "请直接回答选项字母。"
_CJK = re.compile("[\u4e00-\u9fff]")

MCQ_TEXT = "{hint_line}Question: {question}\nOptions:\n{option_lines}{mcq_instruction}"
MCQ_PROMPTS = {"chat": Chat(MCQ_TEXT), "qwen-vl": Raw("<img>{image}</img>" + MCQ_TEXT)}
# The same builder for an item without options: no options block, the text right-stripped.
NO_OPTIONS_TEXT = "{hint_line}Question: {question_rstripped}"
NO_OPTIONS_PROMPTS = {
    "chat": Chat(NO_OPTIONS_TEXT),
    "qwen-vl": Raw("<img>{image}</img>" + NO_OPTIONS_TEXT),
}

YORN_TEXT = "{question} Please answer yes or no."
YORN_PROMPTS = {"chat": Chat(YORN_TEXT), "qwen-vl": Raw("<img>{image}</img>" + YORN_TEXT)}

# MME: its question as written (VLMEvalKit leaves MME to the dataset's own prompt).
AS_WRITTEN_PROMPTS = {"chat": Chat("{question}"), "qwen-vl": Raw("<img>{image}</img>{question}")}

VQA_TEXT = "{question}\nPlease try to answer the question with short words or phrases if possible."
VQA_PROMPTS = {"chat": Chat(VQA_TEXT), "qwen-vl": Raw("<img>{image}</img>" + VQA_TEXT)}


def mcq_fields(question: str, hint: str | None, options: dict[str, str]) -> dict[str, Any]:
    """The fields the multiple-choice text is made of (`hint_line`, `option_lines`,
    `mcq_instruction`), as `_build_mcq_prompt` writes them."""
    hint_line = f"Hint: {hint}\n" if hint is not None else ""
    option_lines = "".join(f"{k}. {v}\n" for k, v in options.items())
    head = f"{hint_line}Question: {question}\nOptions:\n{option_lines}"
    return {
        "hint_line": hint_line,
        "option_lines": option_lines,
        "mcq_instruction": MCQ_CN if _CJK.search(head) else MCQ_EN,
        "question_rstripped": question.rstrip(),
    }


def with_prompt_fields(doc: Document) -> Document:
    """A copy of `doc` with the multiple-choice text's fields added (the doc is not changed)."""
    f = doc.fields
    extra = mcq_fields(f["question"], f.get("hint"), f.get("options") or {})
    return Document(id=doc.id, images=doc.images, fields={**f, **extra})
