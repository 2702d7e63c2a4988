"""RealWorldQA scoring as VLMEvalKit does it: rule-read choice, overall accuracy.

RealWorldQA's multiple-choice questions carry their options in the question text; in
VLMEvalKit's TSV they are in columns A-D and scored like MMStar, once per question, by
:func:`~qwenvl_eval.metrics.vlmeval_choice.infer_choice` (no judge: unreadable is wrong).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from qwenvl_eval.metrics.vlmeval_choice import choice_correct


def realworldqa_accuracy(
    items: Iterable[tuple[object, Mapping[str, object], str]],
) -> tuple[float, int, int]:
    """``(accuracy, correct, count)`` of ``(prediction, choices, answer)`` triples."""
    hits = [choice_correct(pred, choices, answer) for pred, choices, answer in items]
    return (sum(hits) / len(hits) if hits else 0.0), sum(hits), len(hits)
