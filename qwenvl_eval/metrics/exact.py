"""Exact match (GQA, OCR-VQA, AI2D) and the GQA answer post-processing of Qwen-VL.

Exact match is ``strip().lower()`` equality with any reference, as Qwen-VL's
``evaluate_exact_match_accuracy``. For GQA the paper first cuts the free-form answer
down with a chain of substring tests (``gqa_postprocess``); they are reproduced
verbatim, quirks included, because the published GQA number depends on them.
"""

from __future__ import annotations

from qwenvl_eval.metrics._inputs import as_text, as_text_list


def exact_match(prediction: object, answers: object) -> float:
    """1.0 if ``prediction.strip().lower()`` equals some ``answer.strip().lower()``.

    A non-string prediction or no string reference scores 0.
    """
    pred = as_text(prediction)
    refs = as_text_list(answers)
    if pred is None:
        return 0.0
    pred = pred.strip().lower()
    return 1.0 if any(pred == ref.strip().lower() for ref in refs) else 0.0


def gqa_postprocess(text: object) -> str:
    """Qwen-VL's GQA answer extraction; non-strings give "".

    Keep what precedes the first ".", then the first ",", then the first "!"; lower-case;
    then for each of "is ", "are ", "a ", "an ", "the " in turn, if present keep the
    piece between its first and second occurrence (``split(x)[1]``); then cut before
    the first " of"; strip. These are substring tests, so "tea kettle" becomes "kettle"
    (it contains "a ") and "this is a cat" becomes "" ("th" | "" | "a cat").
    """
    response = as_text(text)
    if response is None:
        return ""
    response = response.strip().split(".")[0].split(",")[0].split("!")[0].lower()
    for marker in ("is ", "are ", "a ", "an ", "the "):
        if marker in response:
            response = response.split(marker)[1]
    if " of" in response:
        response = response.split(" of")[0]
    return response.strip()
