"""MME scoring as the benchmark's official ``eval_tool/calculation.py`` computes it.

A response is read as "yes" or "no" when it is exactly that (case-insensitive), else
when its first four characters contain "yes" (checked first) or "no" -- so "Yes, ..."
and "Not sure" are read as yes and no, "I think yes" as neither. Each image has two
questions (one answered yes, one no). Per subtask: ``acc`` = questions right / questions,
``acc_plus`` = images with both questions right / images; the subtask score is
``100 * (acc + acc_plus)`` (at most 200). Perception is the sum over its 10 subtasks
(2000 at most), cognition over its 4 (800 at most).

The official tool reads each subtask's file two lines at a time; here questions are
grouped by their image id, so an image is "right" when all its questions are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qwenvl_eval.metrics._inputs import as_text

MME_PERCEPTION: tuple[str, ...] = (
    "existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
    "artwork", "OCR",
)  # fmt: skip
MME_COGNITION: tuple[str, ...] = (
    "commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning",
)  # fmt: skip


def mme_parse(prediction: object) -> str:
    """``"yes"``, ``"no"`` or ``"other"``, by the official prefix rule (non-strings: other)."""
    text = (as_text(prediction) or "").lower()
    if text in ("yes", "no"):
        return text
    prefix = text[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


@dataclass(frozen=True)
class MMEItem:
    """One answered MME question: its subtask, image id, reference (yes/no) and response."""

    subtask: str
    image: str
    answer: str
    prediction: object


@dataclass(frozen=True)
class MMESubtask:
    """One subtask's scores: ``acc`` and ``acc_plus`` in [0, 1], ``score`` = 100 x their sum."""

    acc: float
    acc_plus: float
    questions: int
    images: int

    @property
    def score(self) -> float:
        return self.acc * 100 + self.acc_plus * 100


@dataclass(frozen=True)
class MMEScores:
    subtasks: dict[str, MMESubtask]
    perception: float
    cognition: float


def mme_scores(items: Iterable[MMEItem]) -> MMEScores:
    """Per-subtask acc/acc+ and the perception and cognition sums of the subtasks present.

    A reference other than yes/no (any case) is a data error and raises ``ValueError``,
    as the official tool's assertion does.
    """
    right: dict[str, dict[str, list[bool]]] = {}
    for item in items:
        answer = item.answer.lower() if isinstance(item.answer, str) else ""
        if answer not in ("yes", "no"):
            raise ValueError(f"MME {item.subtask}/{item.image}: answer {item.answer!r} not yes/no")
        ok = mme_parse(item.prediction) == answer
        right.setdefault(item.subtask, {}).setdefault(item.image, []).append(ok)
    subtasks = {}
    for name, images in right.items():
        flags = [ok for answers in images.values() for ok in answers]
        both = sum(all(answers) for answers in images.values())
        subtasks[name] = MMESubtask(
            sum(flags) / len(flags), both / len(images), len(flags), len(images)
        )

    def total(names: tuple[str, ...]) -> float:
        return sum(subtasks[n].score for n in names if n in subtasks)

    return MMEScores(subtasks, total(MME_PERCEPTION), total(MME_COGNITION))
