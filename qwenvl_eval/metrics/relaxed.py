"""Relaxed accuracy (ChartQA): numbers within 5 % relative error, else exact text.

The metric comes from Pix2Struct/ChartQA: ``relaxed_correctness(target, prediction)``
accepts two numbers whose relative change ``|prediction - target| / |target|`` is at
most 5 % (a trailing "%" divides by 100), and otherwise compares case-insensitively.
Qwen-VL's script calls it as ``relaxed_correctness(prediction.strip(), reference)``,
i.e. with the arguments swapped, so the error is divided by the *prediction*:

- ``paper`` mode reproduces the swap (needed to regenerate the paper's numbers);
- ``correct`` mode divides by the reference.

Target 100, prediction 105.2: paper 5.2/105.2 = 4.9 % (correct), correct 5.2 % (wrong).
A zero denominator is never divided by: the original falls back to the text
comparison when the denominator parses as 0, and so do both modes here.
"""

from __future__ import annotations

from qwenvl_eval.metrics._inputs import as_text, as_text_list

RELAXED_MODES = ("paper", "correct")


def parse_relaxed_number(text: object) -> float | None:
    """``float(text)``, with a trailing "%" meaning /100; ``None`` when it does not parse.

    Exactly the original ``_to_float``: Python's ``float`` syntax (so " 12 ", "1e3",
    "nan" and "inf" parse; "1,000" and "$5" do not), and every trailing "%" is removed.
    Non-strings give ``None``.
    """
    if not isinstance(text, str):
        return None
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correctness(
    target: object, prediction: object, max_relative_change: float = 0.05
) -> bool:
    """The Pix2Struct/ChartQA function, argument order as in its definition.

    ``False`` when either is not a string.
    """
    if not isinstance(target, str) or not isinstance(prediction, str):
        return False
    prediction_float = parse_relaxed_number(prediction)
    target_float = parse_relaxed_number(target)
    if prediction_float is not None and target_float:
        relative_change = abs(prediction_float - target_float) / abs(target_float)
        return relative_change <= max_relative_change
    return prediction.lower() == target.lower()


def relaxed_accuracy(
    prediction: object,
    answers: object,
    mode: str = "paper",
    max_relative_change: float = 0.05,
) -> float:
    """1.0 if the prediction is relaxed-correct for any reference, else 0.0.

    The prediction is stripped (as Qwen-VL's script does), references are used as
    given. A non-string prediction or no string reference scores 0.
    """
    if mode not in RELAXED_MODES:
        raise ValueError(f"unknown relaxed-accuracy mode {mode!r}; choose from {RELAXED_MODES}")
    pred = as_text(prediction)
    refs = as_text_list(answers)
    if pred is None or not refs:
        return 0.0
    pred = pred.strip()
    for ref in refs:
        if mode == "paper":
            ok = relaxed_correctness(pred, ref, max_relative_change)
        else:
            ok = relaxed_correctness(ref, pred, max_relative_change)
        if ok:
            return 1.0
    return 0.0
