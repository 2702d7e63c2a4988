"""MMBench CircularEval, as VLMEvalKit's ``mcq_circular_eval`` scores it.

Each MMBench question is asked once per rotation of its options (the answer letter
moving with them); the question counts as right only if every rotation is answered
right. Answers are read by rules (:mod:`qwenvl_eval.metrics.vlmeval_choice`), as in
VLMEvalKit's ``prefetch_circular_group``: one rotation read as a wrong letter decides the
group wrong at once; every rotation read as its right letter decides it right; otherwise
the group is undecided -- VLMEvalKit then asks its judge for the unread rotations, and
without a judge scores the group 0. :func:`circular_group_hit` returns that three-way
verdict so a judge can be added by the caller; :func:`circular_hit` is the score without
one. Rotations are grouped by ``index % 1_000_000`` in VLMEvalKit's TSV files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from qwenvl_eval.metrics.vlmeval_choice import infer_choice

CIRCULAR_INDEX_OFFSET = 1_000_000
"""A rotation's index in VLMEvalKit's TSV is the question's index + k x this offset."""


@dataclass(frozen=True)
class Rotation:
    """One rotation of a question: the model's response, its options and the right letter."""

    prediction: object
    choices: Mapping[str, object]
    answer: str


def circular_group_hit(rotations: Iterable[Rotation]) -> bool | None:
    """``True``/``False`` when the rules decide the group, ``None`` when a judge is needed."""
    undecided = False
    for rotation in rotations:
        letter = infer_choice(rotation.prediction, rotation.choices)
        if letter is None:
            undecided = True
        elif letter != rotation.answer:
            return False
    return None if undecided else True


def circular_hit(rotations: Iterable[Rotation]) -> bool:
    """The group's score without a judge: right only if every rotation is read as right."""
    return circular_group_hit(rotations) is True


def circular_group_of(index: int) -> int:
    """The question a rotation belongs to (VLMEvalKit's ``g_index``)."""
    return int(index % CIRCULAR_INDEX_OFFSET)
