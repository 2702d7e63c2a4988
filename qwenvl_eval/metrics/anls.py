"""ANLS, the DocVQA / InfographicVQA metric, as the official ``infographicsvqa_eval.py``.

Qwen-VL scores DocVQA with that script. Per reference it normalises both strings
(strip, lower-case, collapse runs of whitespace), takes their Levenshtein distance,
and divides by the longer of the two *un-normalised* strings (measured as
``len(s.upper())``, which equals ``len(s)`` except for the few characters whose
upper case is longer, e.g. "ß" -> "SS"); two empty strings have distance 0. The
question's similarity is the best over the references, and a similarity below the
threshold counts 0 (exactly 0.5 is kept). Normalising the edit distance by the raw
lengths is the script's choice and is what published numbers use.
"""

from __future__ import annotations

from qwenvl_eval.metrics._inputs import as_text, as_text_list


def levenshtein_python(a: str, b: str) -> int:
    """Unit-cost edit distance, pure Python (the fallback when rapidfuzz is missing)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            substitution = previous[j - 1] + (ca != cb)
            current.append(min(previous[j] + 1, current[j - 1] + 1, substitution))
        previous = current
    return previous[-1]


try:
    from rapidfuzz.distance import Levenshtein as _Levenshtein
except ImportError:  # pragma: no cover - exercised only without rapidfuzz
    levenshtein = levenshtein_python
else:

    def levenshtein(a: str, b: str) -> int:
        """Unit-cost edit distance (insertions, deletions, substitutions), via rapidfuzz."""
        return int(_Levenshtein.distance(a, b))


def anls_normalize(text: object) -> str:
    """Strip, lower-case and collapse whitespace, as the official script ("" for
    non-strings)."""
    if not isinstance(text, str):
        return ""
    return " ".join(text.strip().lower().split())


def anls_similarity(prediction: object, answer: object) -> float:
    """1 - normalised edit distance of one (prediction, reference) pair, no threshold.

    0.0 when either is not a string.
    """
    if not isinstance(prediction, str) or not isinstance(answer, str):
        return 0.0
    length = max(len(answer.upper()), len(prediction.upper()))
    if length == 0:
        return 1.0
    return 1.0 - levenshtein(anls_normalize(answer), anls_normalize(prediction)) / length


def anls(prediction: object, answers: object, threshold: float = 0.5) -> float:
    """ANLS of one prediction against its references, in [0, 1].

    A non-string prediction scores 0; non-string references are dropped; no reference
    scores 0.
    """
    pred = as_text(prediction)
    refs = as_text_list(answers)
    if pred is None or not refs:
        return 0.0
    best = max(anls_similarity(pred, ref) for ref in refs)
    return best if best >= threshold else 0.0
