"""Multiple-choice accuracy with the ScienceQA breakdown, and option choice by lowest loss.

The ScienceQA paper (Lu et al., 2022) and every later paper report accuracy overall
and on overlapping subsets, computed by the authors' ``get_scores``:

- context: ``TXT`` = the question has a text context (a non-empty hint), ``IMG`` = it
  has an image, ``NO`` = neither. A question with both is in TXT *and* IMG, so the
  three do not partition the set (test split: 2046 TXT, 2017 IMG, 1435 NO of 4241);
- subject: ``NAT`` / ``SOC`` / ``LAN`` = natural / social / language science;
- grade: ``G1-6`` / ``G7-12``.

With these definitions the released prediction files reproduce the published
figures exactly (tests/metrics/test_multiple_choice.py). Records carry only what they
have: a breakdown is reported for groups that have at least one record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

SUBJECT_GROUPS = {
    "natural science": "NAT",
    "social science": "SOC",
    "language science": "LAN",
    "nat": "NAT",
    "soc": "SOC",
    "lan": "LAN",
}
GROUP_ORDER = ("overall", "NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12")


class GroupAccuracy(NamedTuple):
    """Accuracy in [0, 1] of one group, with its counts."""

    accuracy: float
    correct: int
    count: int


def _field(record: object, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def _flag(value: object) -> bool | None:
    """A yes/no field: bools and 0/1 as such, anything else unknown."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _grade_group(value: object) -> str | None:
    """'grade7', 'G7', 7 or '7' -> 'G7-12'; out of 1..12 or unparseable -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        grade = value
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(?:grade|g)?\s*(\d{1,2})\s*", value, flags=re.IGNORECASE)
        if match is None:
            return None
        grade = int(match.group(1))
    else:
        return None
    if 1 <= grade <= 6:
        return "G1-6"
    if 7 <= grade <= 12:
        return "G7-12"
    return None


def _groups_of(record: object) -> list[str]:
    groups = ["overall"]
    subject = _field(record, "subject")
    if isinstance(subject, str) and subject.strip().lower() in SUBJECT_GROUPS:
        groups.append(SUBJECT_GROUPS[subject.strip().lower()])
    has_text = _flag(_field(record, "has_text_context"))
    has_image = _flag(_field(record, "has_image"))
    if has_text:
        groups.append("TXT")
    if has_image:
        groups.append("IMG")
    if has_text is False and has_image is False:
        groups.append("NO")
    grade = _grade_group(_field(record, "grade"))
    if grade is not None:
        groups.append(grade)
    return groups


def scienceqa_accuracy(records: Iterable[object]) -> dict[str, GroupAccuracy]:
    """Accuracy overall and per ScienceQA group.

    Each record is a mapping or an object with ``correct`` (bool; anything but ``True``
    counts as wrong) and optionally ``has_text_context``, ``has_image`` (bool or 0/1),
    ``subject`` ("natural science" / "social science" / "language science", or the
    short codes) and ``grade`` ("grade1".."grade12" or 1..12). ``NO`` needs both context
    flags known and false. Keys appear in :data:`GROUP_ORDER` order, ``overall``
    always (0 of 0 -> accuracy 0.0), the others only when they have records.
    """
    correct: dict[str, int] = {}
    count: dict[str, int] = {}
    if records is None:
        records = ()
    for record in records:
        ok = _field(record, "correct") is True
        for group in _groups_of(record):
            count[group] = count.get(group, 0) + 1
            correct[group] = correct.get(group, 0) + ok
    out = {}
    for group in GROUP_ORDER:
        n = count.get(group, 0)
        if n or group == "overall":
            c = correct.get(group, 0)
            out[group] = GroupAccuracy(c / n if n else 0.0, c, n)
    return out


def mean_loss(token_losses: Sequence[float]) -> float:
    """Mean of per-token losses, the option score of the paper protocol.

    NaN (which :func:`argmin_option` never picks) for no tokens or non-numeric input.
    """
    try:
        values = [float(v) for v in token_losses]
    except (TypeError, ValueError):
        return math.nan
    return sum(values) / len(values) if values else math.nan


def bf16_round(value: float) -> float:
    """``value`` as float32, then rounded to bfloat16 (nearest, ties to even), as torch's
    float32 -> bfloat16 conversion does; NaN stays NaN, overflow gives inf."""
    import numpy as np

    f = np.float32(value)
    if np.isnan(f):
        return math.nan
    bits = int(np.array(f).view(np.uint32))
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return float(np.array(bits, dtype=np.uint32).view(np.float32))


def eval_mm_bf16_loss(token_logprobs: Sequence[float]) -> float:
    """An option's mean cross-entropy as the Qwen-VL ScienceQA script gets it from bf16 logits
    on a GPU: ``cross_entropy`` on bf16 logits returns each token's loss in bf16 (the log-softmax
    is computed in float32 and rounded once), and ``.mean()`` of a bf16 tensor on CUDA sums in
    float32, multiplies by float32 ``1 / n`` and rounds to bf16. ``token_logprobs`` are the
    float32 log-softmax values of the option's tokens. NaN for no tokens."""
    import numpy as np

    if len(token_logprobs) == 0:
        return math.nan
    total = np.float32(0.0)
    for lp in token_logprobs:
        total = np.float32(total + np.float32(bf16_round(-float(lp))))
    factor = np.float32(1.0) / np.float32(len(token_logprobs))
    return bf16_round(float(np.float32(total * factor)))


def argmin_option(losses: Sequence[object]) -> int | None:
    """Index of the option with the lowest loss (the first one on ties).

    Entries that are not finite numbers (NaN, inf, ``None``) are never chosen; ``None``
    when no entry qualifies.
    """
    best: int | None = None
    best_value = math.inf
    for i, loss in enumerate(losses if losses is not None else ()):
        if isinstance(loss, bool):
            continue
        try:
            value = float(loss)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not math.isfinite(value):
            continue
        if best is None or value < best_value:
            best, best_value = i, value
    return best
