"""Multiple-choice answer extraction by rules, as VLMEvalKit's ``can_infer`` does it.

VLMEvalKit scores MMBench, MMStar, RealWorldQA and most multiple-choice sets this way,
calling a judge LLM only when the rules find nothing (and, without a judge, counting
those items wrong). Its numbers are the ones the Qwen2-VL report compares with.

:func:`infer_option` (``can_infer_option``): a response containing one of a few refusal
sentences is ``Z`` (no answer); otherwise ``. ( ) [ ] , : ; ! * # { }`` become spaces and
the words are compared with the option letters: exactly one letter present, among the
last 5 words at its first occurrence, is the answer; no letter but a word ``Z`` gives
``Z``; failing that, "answer is X" (any case, optional ``correct``/``**``, X in A-D)
names X. :func:`infer_text` (``can_infer_text``): unless the response is longer than
twice the options' total length, the one option whose lower-cased text occurs in the
lower-cased response. :func:`infer_choice` (``can_infer``) tries the letter first, the
text second. "No answer" is ``None`` here (``False`` in VLMEvalKit).

A missing (non-string) prediction is read as "" -- VLMEvalKit reads ``str(x)``, so a NaN
prediction becomes the text "nan", which could match an option reading "nan".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from qwenvl_eval.metrics._inputs import as_text

REFUSALS: tuple[str, ...] = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
"""Responses containing one of these are read as ``Z`` (VLMEvalKit's ``reject_to_answer``)."""

NO_ANSWER = "Z"
API_FAILURE = "Failed to obtain answer via API"

_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_VERBOSE_ANSWER = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")
_LETTER_WINDOW = 5


def _text(prediction: object) -> str:
    return as_text(prediction) or ""


def infer_option(prediction: object, choices: Mapping[str, object]) -> str | None:
    """The option letter (or ``Z``) a response names by letter, ``None`` if none."""
    text = _text(prediction)
    if API_FAILURE in text:
        return None
    if any(refusal in text for refusal in REFUSALS):
        return NO_ANSWER
    words = text.translate(_SEPARATORS).split()
    present = [letter for letter in choices if letter in words]
    if len(present) == 1:
        if words.index(present[0]) > len(words) - _LETTER_WINDOW:
            return present[0]
    elif not present and NO_ANSWER in words:
        return NO_ANSWER
    match = _VERBOSE_ANSWER.search(text)
    if match and match.group(1).upper() in choices:
        return match.group(1).upper()
    return None


def infer_text(prediction: object, choices: Mapping[str, object]) -> str | None:
    """The one option whose text the response contains, ``None`` if none or several."""
    text = _text(prediction).lower()
    if len(text) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    found = [letter for letter, option in choices.items() if str(option).lower() in text]
    return found[0] if len(found) == 1 else None


def infer_choice(prediction: object, choices: Mapping[str, object]) -> str | None:
    """The letter a response chooses: by letter, else by option text; ``None`` if neither."""
    return infer_option(prediction, choices) or infer_text(prediction, choices)


def choice_correct(prediction: object, choices: Mapping[str, object], answer: str) -> bool:
    """One item scored as VLMEvalKit's vanilla (non-circular) evaluation without a judge."""
    return infer_choice(prediction, choices) == answer


# The reference: open-compass/VLMEvalKit at commit e8e78f05f3080fe28154f2130321f17951c3be94,
# vlmeval/dataset/utils/multiple_choice.py (`build_prompt`, `build_prompt_cn`,
# `extract_answer_from_item`; unchanged since 1445ec4f6fd02b25bad0d713690ee01a24b3b689),
# vlmeval/smp/vlm.py (`build_option_str`) and vlmeval/smp/misc.py (`cn_string`). The two
# templates are as published since VLMEvalKit's first MMBench-CN evaluation (Dec 2023).
CHOICE_JUDGE_SOURCE = (
    "VLMEvalKit vlmeval/dataset/utils/multiple_choice.py (build_prompt, build_option_str, "
    "extract_answer_from_item)"
)
CHOICE_JUDGE_SOURCE_CN = (
    "VLMEvalKit vlmeval/dataset/utils/multiple_choice.py (build_prompt_cn, build_option_str, "
    "extract_answer_from_item)"
)

# VLMEvalKit's English matching prompt (`build_prompt`), its wording and spacing as published.
CHOICE_JUDGE_TEMPLATE = (
    "You are an AI assistant who will help me to match "
    "an answer with several options of a single-choice question. "
    "You are provided with a question, several options, and an answer, "
    "and you need to find which option is most similar to the answer. "
    "If the meaning of all options are significantly different from the answer, output Z. "
    "Your should output a single uppercase character in A, B, C, D (if they are valid options), "
    "and Z. \n"
    "Example 1: \n"
    "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
    "Answer: a cute teddy bear\nYour output: A\n"
    "Example 2: \n"
    "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
    "Answer: Spider\nYour output: Z\n"
    "Example 3: \n"
    "Question: {}?\nOptions: {}\nAnswer: {}\nYour output: "
)


# VLMEvalKit's Chinese matching prompt (`build_prompt_cn`), its wording and spacing as published
# (no newline after "例 1:", full-width punctuation in the instructions).
CHOICE_JUDGE_TEMPLATE_CN = (
    "你是一个帮助我匹配答案与单选题中多个选项的 AI 助手。"
    "你会被提供：一个问题，多个选项，一个答案。你的任务是找到与答案意义最相近的选项。"
    "如果所有选项的意义都与答案显著不同，则输出 Z。"
    "你应该输出一个单个的大写字母，例如 A, B, C, D（如果它们是有效选项），或 Z。"
    "例 1:"
    "问题: 图中最主要的物体是什么?\n选项: A. 泰迪熊 B. 兔子 C. 猫 D. 狗\n"
    "答案: 一只可爱的泰迪熊\n输出: A\n"
    "例 2: \n"
    "问题: 图中最主要的物体是什么?\n选项: A. 泰迪熊 B. 兔子 C. 猫 D. 狗\n答案: 蜘蛛\n输出: Z\n"
    "例 3: \n"
    "问题: {}?\n选项: {}\n答案: {}\n输出: "
)

_CJK = re.compile("[\u4e00-\u9fff]")


def is_cn_question(question: object) -> bool:
    """VLMEvalKit's `cn_string`: the question holds a CJK unified ideograph (U+4E00-U+9FFF).
    `extract_answer_from_item` picks the Chinese prompt by this alone, for every dataset but
    BLINK and WeMath (none here): not by the dataset's name, so an MMBench-CN question
    without a Chinese character gets the English prompt, and a Chinese question anywhere
    the Chinese one."""
    return bool(_CJK.search(_text(question)))


def _option_str(choices: Mapping[str, object]) -> str:
    """`build_option_str`: a header line, then one `X. text` line per option."""
    return "There are several options: \n" + "".join(f"{k}. {v}\n" for k, v in choices.items())


def choice_judge_prompt_en(question: str, choices: Mapping[str, object], prediction: object) -> str:
    """`build_prompt`: the English prompt for one item."""
    return CHOICE_JUDGE_TEMPLATE.format(question, _option_str(choices), _text(prediction))


def choice_judge_prompt_cn(question: str, choices: Mapping[str, object], prediction: object) -> str:
    """`build_prompt_cn`: the Chinese prompt for one item (the option list's header stays
    English, as `build_option_str` writes it)."""
    return CHOICE_JUDGE_TEMPLATE_CN.format(question, _option_str(choices), _text(prediction))


def choice_judge_prompt(question: str, choices: Mapping[str, object], prediction: object) -> str:
    """The judge's prompt for one item, as `extract_answer_from_item` builds it: the
    question, the options as `build_option_str` lists them and the raw response, in the
    Chinese prompt where the question is Chinese (`is_cn_question`), else the English one."""
    build = choice_judge_prompt_cn if is_cn_question(question) else choice_judge_prompt_en
    return build(question, choices, prediction)


def judge_choice(reply: object, choices: Mapping[str, object]) -> str | None:
    """The letter (or ``Z``) read from the judge's reply by the same rules (``can_infer``)."""
    return infer_choice(reply, choices)


@dataclass(frozen=True)
class ChoiceRecord:
    """One scored item for :func:`choice_breakdown`."""

    hit: bool
    category: str | None = None
    l2_category: str | None = None
    split: str | None = None


MMBENCH_ABBREVIATIONS: dict[str, str] = {
    "coarse_perception": "CP",
    "finegrained_perception (instance-level)": "FP-S",
    "finegrained_perception (cross-instance)": "FP-C",
    "logic_reasoning": "LR",
    "relation_reasoning": "RR",
    "attribute_reasoning": "AR",
}
"""The short names VLMEvalKit reports MMBench's level-2 abilities under."""


def _mean(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else float("nan")


def choice_breakdown(records: Iterable[ChoiceRecord]) -> dict[str, dict[str, float]]:
    """Accuracy per split: ``Overall``, then each level-2 category, then each category.

    As VLMEvalKit's ``report_acc``: names sorted within each level, MMBench abilities
    under their abbreviations, a category named like a level-2 category overwriting it;
    records without a split are in split ``none``. A group with no record in a split
    gives NaN there, as ``numpy.mean`` of nothing does.
    """
    records = list(records)
    splits = sorted({r.split or "none" for r in records})
    out: dict[str, dict[str, float]] = {}
    for split in splits:
        in_split = [r for r in records if (r.split or "none") == split]
        row = {"Overall": _mean([r.hit for r in in_split])}
        for field in ("l2_category", "category"):
            names = sorted({getattr(r, field) for r in records} - {None})
            for name in names:
                hits = [r.hit for r in in_split if getattr(r, field) == name]
                row[MMBENCH_ABBREVIATIONS.get(name, name)] = _mean(hits)
        out[split] = row
    return out
