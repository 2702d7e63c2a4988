"""OCRBench scoring as its official code (MultimodalOCR ``OCRBench/example.py``, and
VLMEvalKit's ``OCRBench_eval``, which carries the same rule) computes it.

An item scores 1 when one of its answers, normalised, is a substring of the normalised
prediction. Normalisation: for the handwritten mathematical expression category,
strip the ends, then remove every space and newline (LaTeX spacing is free); for every
other category, lower-case, strip the ends, then turn newlines into spaces. (Stripping
before the newline replacement means inner newlines become spaces but spaces are not
collapsed.) An empty answer is a substring of anything. The benchmark has 1000 items;
the report sums them per category, with the six recognition categories summed as
"Text Recognition" (300), and a final score out of 1000.
"""

from __future__ import annotations

from collections.abc import Iterable

from qwenvl_eval.metrics._inputs import as_text, as_text_list

HME_CATEGORY = "Handwritten Mathematical Expression Recognition"
TEXT_RECOGNITION: tuple[str, ...] = (
    "Regular Text Recognition",
    "Irregular Text Recognition",
    "Artistic Text Recognition",
    "Handwriting Recognition",
    "Digit String Recognition",
    "Non-Semantic Text Recognition",
)
REPORTED: tuple[str, ...] = (
    "Scene Text-centric VQA",
    "Doc-oriented VQA",
    "Key Information Extraction",
    HME_CATEGORY,
)
OCRBENCH_CATEGORIES: tuple[str, ...] = TEXT_RECOGNITION + REPORTED


def ocrbench_normalize(text: str, category: str) -> str:
    """The official normalisation of one answer or prediction for ``category``."""
    if category == HME_CATEGORY:
        return text.strip().replace("\n", " ").replace(" ", "")
    return text.lower().strip().replace("\n", " ")


def ocrbench_score(prediction: object, answers: object, category: str) -> int:
    """1 if a normalised answer occurs in the normalised prediction, else 0.

    A non-string prediction is read as "" (VLMEvalKit reads ``str(x)``, "nan" for a
    missing one); non-string answers are dropped.
    """
    pred = ocrbench_normalize(as_text(prediction) or "", category)
    return int(any(ocrbench_normalize(a, category) in pred for a in as_text_list(answers)))


def ocrbench_report(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Category sums of ``(category, score)`` pairs as the official report prints them.

    Keys: every category, ``Text Recognition`` (the six recognition categories) and
    ``Final Score`` (out of 1000 on the full benchmark). An unknown category raises
    ``ValueError`` (its score would silently be left out of the total).
    """
    sums = dict.fromkeys(OCRBENCH_CATEGORIES, 0)
    for category, score in items:
        if category not in sums:
            raise ValueError(f"unknown OCRBench category {category!r}")
        sums[category] += score
    out = dict(sums)
    out["Text Recognition"] = sum(sums[c] for c in TEXT_RECOGNITION)
    out["Final Score"] = out["Text Recognition"] + sum(sums[c] for c in REPORTED)
    return out
