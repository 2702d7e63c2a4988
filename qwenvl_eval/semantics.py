"""What a task's metrics mean. Each task declares it once (`Task.meanings`); the run writes it
into results.json (`tasks.<task>.metric_meanings`), and `compare`, `table` and `report` read it
from there: none of them keeps a table of its own."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class MetricMeaning:
    # The per-item score (in predictions.jsonl) whose mean makes the task's number; None when
    # the metric has no per-item score (a corpus-level or subset number): it cannot be gated.
    item_key: str | None
    # task number = mean(per-item score) x item_scale (fractions x100; CIDEr shares x1).
    item_scale: float = 100.0
    # An item is right when its per-item score is >= this; None: right and wrong mean nothing
    # for this metric (CIDEr), so no item flips on it.
    right_at: float | None = 0.5
    higher_is_better: bool = True

    def is_right(self, score: float) -> bool | None:
        if self.right_at is None:
            return None
        return score >= self.right_at

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MetricMeaning:
        return cls(
            item_key=d.get("item_key"),
            item_scale=float(d.get("item_scale", 100.0)),
            right_at=d.get("right_at", 0.5),
            higher_is_better=bool(d.get("higher_is_better", True)),
        )


def no_item_score(*, higher_is_better: bool = True) -> MetricMeaning:
    """A metric with no per-item score (e.g. a category breakdown or a count of failures)."""
    return MetricMeaning(item_key=None, right_at=None, higher_is_better=higher_is_better)


def declare_meanings(
    metrics: Iterable[str], item_keys: Collection[str], declared: Mapping[str, MetricMeaning]
) -> dict[str, MetricMeaning]:
    """Each metric's meaning: its declaration, else the mean of the per-item score of the same
    name x100 when items carry one (`item_keys`), else no per-item score."""
    out: dict[str, MetricMeaning] = {}
    for name in metrics:
        if name in out:
            continue
        if name in declared:
            out[name] = declared[name]
        elif name in item_keys:
            out[name] = MetricMeaning(item_key=name)
        else:
            out[name] = no_item_score()
    return out


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
