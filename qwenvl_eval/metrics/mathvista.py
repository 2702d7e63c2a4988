"""MathVista scoring by rules, as the official ``evaluation/`` scripts do it without the LLM.

The official pipeline is extraction (``extract_answer.py``), normalisation
(``calculate_score.normalize_extracted_answer``) and comparison (``safe_equal``, plain
``==`` of strings). Extraction tries rules first and asks GPT-4 only when they fail;
:func:`mathvista_extract` is that rule part, returning "" where the official code would
ask the model (which is also what the official code records when the model call fails).
The rules: an empty response is ""; a multiple-choice response equal to an option is
kept; an integer question takes ``int(response)``, a float question ``float(response)``;
with ``quick_extract`` a ``The answer is "X".`` sentence gives X.

Normalisation, per question type:

- multiple choice: a ``(x)`` letter anywhere wins (upper-cased); a letter within the
  option range picks that option; anything else (including "" and lower-case letters)
  picks the option at the smallest edit distance, the first of equals -- so an empty
  extraction picks the shortest option, as the official code does;
- integer: ``str(int(float(x)))``, ``None`` if that fails;
- float: ``str(round(float(x), precision))``, ``None`` if that fails;
- list: ``str(x)``.

The breakdown follows ``calculate_score.py``: accuracy per value of ``question_type``,
``answer_type``, ``language``, ``source``, ``category``, ``task``, ``context``, ``grade``
and, per skill, over the items listing that skill.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenvl_eval.metrics._inputs import as_text
from qwenvl_eval.metrics.anls import levenshtein

MATHVISTA_BREAKDOWN_KEYS: tuple[str, ...] = (
    "question_type", "answer_type", "language", "source", "category", "task", "context",
    "grade", "skills",
)  # fmt: skip

_QUICK_ANSWER = re.compile(r'The answer is "(.*)"\.')
_LETTER_IN_PARENS = re.compile(r"\(([a-zA-Z])\)")


def mathvista_extract(
    response: object,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None,
    quick_extract: bool = False,
) -> str:
    """The answer the official extraction rules read from a response ("" when none)."""
    text = as_text(response)
    if not text:
        return ""
    if question_type == "multi_choice" and choices and text in choices:
        return text
    if answer_type == "integer":
        try:
            return str(int(text))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(text))
        except ValueError:
            pass
    if quick_extract:
        match = _QUICK_ANSWER.search(text)
        if match:
            return match.group(1)
    return ""


def _most_similar(text: str, choices: Sequence[str]) -> str:
    distances = [levenshtein(text, choice) for choice in choices]
    return choices[distances.index(min(distances))]


def mathvista_normalize(
    extraction: object,
    choices: Sequence[str] | None,
    question_type: str,
    answer_type: str,
    precision: object,
    ignore_empty_extractions: bool = False,
) -> str | None:
    """The official ``normalize_extracted_answer``: the prediction compared with the answer.

    ``None`` where the official code gives ``None`` (an unparseable number, or an empty
    multiple-choice extraction with ``ignore_empty_extractions``), and for a free-form
    answer type the official code does not handle (it raises there).
    """
    if question_type == "multi_choice":
        text = extraction.strip() if isinstance(extraction, str) else str(extraction)
        if ignore_empty_extractions and not text:
            return None
        letters = _LETTER_IN_PARENS.findall(text)
        if letters:
            text = letters[0].upper()
        options = list(choices or [])
        if len(text) == 1 and "A" <= text <= "Z" and ord(text) - ord("A") < len(options):
            return options[ord(text) - ord("A")]
        return _most_similar(text, options) if options else None
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))  # type: ignore[arg-type]
        if answer_type == "float":
            return str(round(float(extraction), int(precision)))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if answer_type == "list":
        return str(extraction)
    return None


def mathvista_correct(prediction: object, answer: object) -> bool:
    """The official ``safe_equal``: plain equality of the normalised prediction and answer."""
    return prediction is not None and prediction == answer


def mathvista_score(
    response: object,
    answer: object,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None,
    precision: object = None,
    quick_extract: bool = False,
) -> tuple[str, str | None, bool]:
    """``(extraction, prediction, correct)`` of one response, by the rules above."""
    extraction = mathvista_extract(response, question_type, answer_type, choices, quick_extract)
    prediction = mathvista_normalize(extraction, choices, question_type, answer_type, precision)
    return extraction, prediction, mathvista_correct(prediction, answer)


MATHVISTA_EXTRACTION_SOURCE = (
    "MathVista evaluation/extract_answer.py (create_test_prompt) with the few-shot demo_prompt "
    "of evaluation/prompts/ext_ans.py"
)

# The official extraction prompt's few-shot part (`demo_prompt`), reproduced as published:
# its quirks ("the line  graph", the options of the last example on lines of their own) kept.
MATHVISTA_EXTRACTION_DEMO = """
Please read the following example. Then extract the answer from the model response and type it at the end of the prompt.

Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.
Question: Which number is missing?

Model response: The number missing in the sequence is 14.

Extracted answer: 14

Hint: Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.
Question: What is the fraction of females facing the camera?

Model response: The fraction of females facing the camera is 0.6, which means that six out of ten females in the group are facing the camera.

Extracted answer: 0.6

Hint: Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.
Question: How much money does Luca need to buy a sour apple candy and a butterscotch candy? (Unit: $)

Model response: Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.

Extracted answer: 1.45

Hint: Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.
Question: Between which two years does the line  graph saw its maximum peak?

Model response: The line graph saw its maximum peak between 2007 and 2008.

Extracted answer: [2007, 2008]

Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.
Question: What fraction of the shape is blue?
Choices:
(A) 3/11
(B) 8/11
(C) 6/11
(D) 3/5

Model response: The correct answer is (B) 8/11.

Extracted answer: B
"""  # noqa: E501


def mathvista_extraction_prompt(query: str, response: str) -> str:
    """The official LLM extraction prompt (`create_test_prompt`): the stripped demo, the
    item's query (hint and question) and the bare response -- the official code writes no
    "Model response:" before it -- then "Extracted answer: "."""
    return f"{MATHVISTA_EXTRACTION_DEMO.strip()}\n\n{query}\n\n{response}\n\nExtracted answer: "


def mathvista_judge_score(
    extraction: str,
    answer: object,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None,
    precision: object = None,
) -> tuple[str | None, bool]:
    """``(prediction, correct)`` from an extraction the LLM gave (stripped, as the official
    `get_chat_response` returns it), normalised and compared as the rules' extraction is."""
    prediction = mathvista_normalize(
        extraction.strip(), choices, question_type, answer_type, precision
    )
    return prediction, mathvista_correct(prediction, answer)


@dataclass(frozen=True)
class MathVistaGroup:
    """Accuracy in [0, 1] of one breakdown value, with its counts."""

    accuracy: float
    correct: int
    total: int


def mathvista_breakdown(
    records: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, MathVistaGroup]]:
    """Accuracy per value of each breakdown key, plus ``{"average": {"all": ...}}``.

    Each record has ``correct`` (only ``True`` counts) and the metadata fields of
    :data:`MATHVISTA_BREAKDOWN_KEYS` (``skills`` a list); missing fields are skipped.
    """
    counts: dict[str, dict[str, list[int]]] = {key: {} for key in MATHVISTA_BREAKDOWN_KEYS}
    total = correct = 0
    for record in records:
        ok = record.get("correct") is True
        total += 1
        correct += ok
        for key in MATHVISTA_BREAKDOWN_KEYS:
            value = record.get(key)
            values = value if key == "skills" and isinstance(value, list) else [value]
            for v in dict.fromkeys(values):
                if isinstance(v, str):
                    cell = counts[key].setdefault(v, [0, 0])
                    cell[0] += ok
                    cell[1] += 1
    out = {"average": {"all": MathVistaGroup(correct / total if total else 0.0, correct, total)}}
    for key, values in counts.items():
        out[key] = {v: MathVistaGroup(c / n, c, n) for v, (c, n) in values.items()}
    return out
