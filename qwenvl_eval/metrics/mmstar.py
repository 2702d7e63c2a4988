"""MMStar scoring as VLMEvalKit does it: rule-read choice, accuracy per capability.

Each item is right when :func:`~qwenvl_eval.metrics.vlmeval_choice.infer_choice` reads the
right letter (no rotation: MMStar is scored once per question). The breakdown is
VLMEvalKit's ``report_acc``: ``Overall``, each of the 18 axes (its ``l2-category``) and
each of the 6 core capabilities (``category``), sorted by name within each level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from qwenvl_eval.metrics.vlmeval_choice import ChoiceRecord, choice_breakdown, choice_correct


@dataclass(frozen=True)
class MMStarItem:
    """One answered MMStar question."""

    prediction: object
    choices: Mapping[str, object]
    answer: str
    category: str | None = None
    l2_category: str | None = None


def mmstar_scores(items: Iterable[MMStarItem]) -> dict[str, float]:
    """Accuracy overall, per axis and per capability (values in [0, 1])."""
    records = [
        ChoiceRecord(
            choice_correct(item.prediction, item.choices, item.answer),
            item.category,
            item.l2_category,
        )
        for item in items
    ]
    return choice_breakdown(records).get("none", {"Overall": float("nan")})
