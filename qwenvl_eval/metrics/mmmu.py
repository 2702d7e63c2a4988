"""MMMU scoring as the MMMU repository's ``mmmu/utils/eval_utils.py`` does it.

Multiple choice (``parse_multi_choice_response``): the response is stripped of outer
``, . ! ? ; : '`` (one character kind after another, in that order) and padded with a
space on each side; candidates are the letters written as ``(X)``, else as `` X ``
(space-delimited), else -- only for responses of more than 5 words -- the options whose
text occurs in the response (case-insensitive). Several candidates: the one whose marker
occurs last wins (the first of equals). No candidate: a letter drawn at random.

The official module seeds Python's global ``random`` with 42 when imported and draws
with ``random.choice`` for each unparseable response, in scoring order. The draw here
comes from a ``random.Random`` passed in: ``random.Random(42)`` fed the items in the
official order (subjects in the MMMU ``CAT_SHORT2LONG`` order, items in file order)
draws the same letters. The seed is part of the result so it can be recorded.

Open answers (``parse_open_response``): the response is lower-cased and split on
newlines; from each line the shortest tail after one of the indicators ("could be ",
"so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ", and "=" on the last
line) is kept; the kept tails plus every number found in them are normalised (numbers
to floats rounded to 2 places, commas removed; other text lower-cased, a one-character
text padded with a space on either side so it cannot match inside a word). The item is
right when a normalised number equals a normalised reference number or a reference text
occurs inside a predicted text.

The breakdown follows ``main_eval_only.py``: accuracy per subject, per discipline
(weighted by subject size) and overall.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from qwenvl_eval.metrics._inputs import as_text, as_text_list

MMMU_SEED = 42
"""The seed the official module gives ``random`` at import."""

MMMU_DISCIPLINES: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy", "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
        "Energy_and_Power", "Materials", "Mechanical_Engineering",
    ),
}  # fmt: skip
"""Disciplines and their subjects (the official ``DOMAIN_CAT2SUB_CAT``)."""

_OUTER_STRIP = (",", ".", "!", "?", ";", ":", "'")
_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL_TAILS = frozenset({":", ",", ".", "!", "?", ";", "'"})
_SENTENCE_SPLIT = re.compile(r"\.\s(?=[A-Z])|\n")
_NUMBER_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUMBER_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUMBER_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


@dataclass(frozen=True)
class ChoiceParse:
    """The letter read from a multiple-choice response; ``random`` when it was drawn."""

    letter: str
    random: bool


def mmmu_parse_choice(
    response: object,
    index2ans: Mapping[str, str],
    rng: random.Random,
    all_choices: Sequence[str] | None = None,
) -> ChoiceParse:
    """The option letter a response names (see the module docstring for the rules).

    ``index2ans`` maps letters to option texts; ``all_choices`` defaults to its keys in
    order. A non-string response counts as "" (so it draws). ``rng`` is advanced only
    when the letter is drawn.
    """
    letters = list(all_choices) if all_choices is not None else list(index2ans)
    text = as_text(response) or ""
    for char in _OUTER_STRIP:
        text = text.strip(char)
    padded = f" {text} "

    marker = "({})"
    candidates = [c for c in letters if marker.format(c) in padded]
    by_text = False
    if not candidates:
        marker = " {} "
        candidates = [c for c in letters if marker.format(c) in padded]
    if not candidates and len(padded.split()) > 5:
        lowered = padded.lower()
        candidates = [k for k, v in index2ans.items() if str(v).lower() in lowered]
        by_text = True

    if not candidates:
        return ChoiceParse(rng.choice(letters), True)
    if len(candidates) == 1:
        return ChoiceParse(candidates[0], False)
    if by_text:
        lowered = padded.lower()
        positions = [lowered.rfind(str(index2ans[c]).lower()) for c in candidates]
    else:
        positions = [padded.rfind(marker.format(c)) for c in candidates]
    return ChoiceParse(candidates[positions.index(max(positions))], False)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def mmmu_normalize(text: str) -> list[float | str]:
    """A number as ``[float rounded to 2 places]``, other text lower-cased (one character
    padded with a space on either side, as two alternatives)."""
    text = text.strip()
    if _is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


def mmmu_extract_numbers(text: str) -> list[str]:
    """Numbers in ``text``: with thousands commas, then scientific, then plain ones."""
    return (
        _NUMBER_WITH_COMMAS.findall(text)
        + _NUMBER_SCIENTIFIC.findall(text)
        + _NUMBER_SIMPLE.findall(text)
    )


def _key_tails(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    lines = _SENTENCE_SPLIT.split(response)
    tails = []
    for index, line in enumerate(lines):
        indicators = _KEY_INDICATORS + (("=",) if index == len(lines) - 1 else ())
        shortest = None
        for indicator in indicators:
            if indicator not in line:
                continue
            tail = line.split(indicator)[-1].strip()
            # sic: an empty tail found first is replaced by any later one, even a longer one
            if not shortest or len(tail) < len(shortest):
                shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL_TAILS:
            tails.append(shortest)
    return tails or [response]


def mmmu_parse_open(response: object) -> list[float | str]:
    """The normalised candidate answers of an open response (unordered, no duplicates)."""
    tails = _key_tails(as_text(response) or "")
    found = list(tails)
    for tail in tails:
        found.extend(mmmu_extract_numbers(tail))
    normalised: list[float | str] = []
    for text in found:
        normalised.extend(mmmu_normalize(text))
    unique: list[float | str] = []
    for value in normalised:
        if value not in unique:
            unique.append(value)
    return unique


def mmmu_choice_correct(answer: object, letter: str) -> bool:
    """The official ``eval_multi_choice``: the letter equals the answer (or one of them)."""
    if isinstance(answer, list):
        return letter in answer
    return answer == letter


def mmmu_open_correct(answer: object, parsed: Iterable[float | str]) -> bool:
    """The official ``eval_open`` of references (a string or list) against parsed candidates."""
    references: list[float | str] = []
    for ref in as_text_list(answer):
        references.extend(mmmu_normalize(ref))
    ref_texts = [r for r in references if isinstance(r, str)]
    for value in parsed:
        if isinstance(value, str):
            if any(ref in value for ref in ref_texts):
                return True
        elif value in references:
            return True
    return False


@dataclass(frozen=True)
class MMMUGroup:
    """Accuracy in [0, 1] of one subject, discipline or the whole set, with its size."""

    accuracy: float
    count: int


def mmmu_breakdown(records: Iterable[tuple[str, bool]]) -> dict[str, MMMUGroup]:
    """Accuracy per subject, per discipline (``Overall-<discipline>``) and ``Overall``.

    ``records`` are ``(subject, correct)`` pairs; subject names are the MMMU folder names
    (``Art_Theory``). Disciplines without scored subjects report 0.0 of 0, as the
    official script; unknown subjects count only in ``Overall``. Discipline and overall
    accuracies are sums of subject accuracy times size over total size, as the official
    ``calculate_ins_level_acc`` computes them.
    """
    correct: dict[str, int] = {}
    count: dict[str, int] = {}
    for subject, ok in records:
        count[subject] = count.get(subject, 0) + 1
        correct[subject] = correct.get(subject, 0) + (ok is True)
    accuracy = {s: correct[s] / count[s] for s in count}

    def weighted(subjects: Iterable[str]) -> MMMUGroup:
        subjects = [s for s in subjects if s in count]
        total = sum(count[s] for s in subjects)
        acc = sum(accuracy[s] * count[s] for s in subjects) / total if total else 0.0
        return MMMUGroup(acc, total)

    out: dict[str, MMMUGroup] = {}
    for discipline, subjects in MMMU_DISCIPLINES.items():
        out["Overall-" + discipline] = weighted(subjects)
        for subject in subjects:
            if subject in count:
                out[subject] = MMMUGroup(accuracy[subject], count[subject])
    known = [s for subs in MMMU_DISCIPLINES.values() for s in subs]
    out["Overall"] = weighted(known + [s for s in count if s not in known])
    return out
