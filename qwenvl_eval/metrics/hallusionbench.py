"""HallusionBench: aAcc, fAcc and qAcc, as the benchmark's code and as VLMEvalKit compute them.

Every question is a yes/no question about a figure; a question recurs across the
figures of a set (the original, edited versions and, for visual-supplement questions,
no figure at all, ``figure_id`` 0). Three accuracies:

- aAcc: right questions / questions;
- fAcc: figures whose questions are all right / figures;
- qAcc: question pairs (one question over all the figures of its set) all right / pairs.

The two implementations differ, and both are given:

- :func:`hallusion_official_scores` follows HallusionBench's ``utils.py``
  (``assign_correctness``, ``get_eval_all``, ``get_eval_fig``, ``get_eval_pair_all``):
  each answer is coded 1 right, 0 wrong, 2 uncertain (the GPT check's codes); an
  uncertain answer to a visual-supplement question without its figure counts as right;
  fAcc leaves those figure-less questions out; groups are keyed by category,
  subcategory, set and figure/question.
- :func:`hallusion_vlmeval_scores` follows VLMEvalKit's ``Hallusion_rating`` on its
  rule score (the response's yes/no, :func:`hallusion_yes_no`, equals the answer):
  groups are keyed by subcategory, set and figure/question only (so a visual-dependent
  and a visual-supplement set with the same subcategory and numbers are one group), and
  the figure-less questions count in fAcc. It reports overall, per category and per
  subcategory.

Without a judge, :func:`hallusion_code` reads the code by rules: 1 when the yes/no read
from the response equals the answer, 2 when neither or both are read, else 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from qwenvl_eval.metrics._inputs import as_text
from qwenvl_eval.metrics.vqa import punctuation_rule

# VLMEvalKit's punctuation step is VQA's with a working look-behind for lone periods.
_LONE_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def hallusion_yes_no(prediction: object) -> str:
    """``"Yes"``/``"No"`` when exactly one of the words yes/no occurs, else ``"Unknown"``.

    VLMEvalKit's ``YOrN_Extraction``: lower-cased, punctuation removed as its
    ``process_punctuation`` does, split on whitespace. Non-strings are ``"Unknown"``.
    """
    words = punctuation_rule((as_text(prediction) or "").lower(), _LONE_PERIOD).split()
    yes, no = "yes" in words, "no" in words
    if yes and not no:
        return "Yes"
    if no and not yes:
        return "No"
    return "Unknown"


@dataclass(frozen=True)
class HallusionItem:
    """One answered HallusionBench question.

    ``category`` is ``VD`` (visual dependent) or ``VS`` (visual supplement);
    ``answer`` "Yes"/"No"; ``code`` the judge's 0/1/2 when there is one (else the rules').
    """

    category: str
    subcategory: str
    set_id: str
    figure_id: str
    question_id: str
    answer: str
    prediction: object = None
    code: int | None = None


def hallusion_code(item: HallusionItem) -> int:
    """The item's correctness code: the judge's if given, else by rules (see module doc)."""
    if item.code is not None:
        return item.code
    read = hallusion_yes_no(item.prediction)
    if read == "Unknown":
        return 2
    return int(read == item.answer)


@dataclass(frozen=True)
class Ratio:
    """``correct`` of ``total``; ``value`` in [0, 1] (NaN when empty)."""

    correct: int
    total: int

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")


@dataclass(frozen=True)
class HallusionScores:
    aAcc: Ratio  # noqa: N815 - the benchmark's names
    fAcc: Ratio  # noqa: N815
    qAcc: Ratio  # noqa: N815


def _all_right(items: Iterable[tuple[Hashable, bool]]) -> Ratio:
    groups: dict[Hashable, bool] = {}
    for key, ok in items:
        groups[key] = groups.get(key, True) and ok
    return Ratio(sum(groups.values()), len(groups))


def _is_blank_figure(item: HallusionItem) -> bool:
    return item.category == "VS" and str(item.figure_id) == "0"


def hallusion_official_scores(items: Iterable[HallusionItem]) -> HallusionScores:
    """aAcc, fAcc, qAcc as HallusionBench's own evaluation computes them."""
    items = list(items)
    right = []
    for item in items:
        code = hallusion_code(item)
        right.append(code in (1, 2) if _is_blank_figure(item) else code == 1)
    base = [(i.category, i.subcategory, str(i.set_id)) for i in items]
    return HallusionScores(
        aAcc=Ratio(sum(right), len(items)),
        fAcc=_all_right(
            (key + (str(i.figure_id),), ok)
            for key, i, ok in zip(base, items, right, strict=True)
            if not _is_blank_figure(i)
        ),
        qAcc=_all_right(
            (key + (str(i.question_id),), ok) for key, i, ok in zip(base, items, right, strict=True)
        ),
    )


def _vlmeval_scores(items: list[HallusionItem], right: list[bool]) -> HallusionScores:
    def keyed(field: Callable[[HallusionItem], str]) -> Ratio:
        return _all_right(
            ((i.subcategory, str(i.set_id), field(i)), ok)
            for i, ok in zip(items, right, strict=True)
        )

    return HallusionScores(
        aAcc=Ratio(sum(right), len(items)),
        fAcc=keyed(lambda i: str(i.figure_id)),
        qAcc=keyed(lambda i: str(i.question_id)),
    )


def hallusion_vlmeval_scores(items: Iterable[HallusionItem]) -> dict[str, HallusionScores]:
    """``Overall``, each category and each subcategory, as VLMEvalKit's ``Hallusion_rating``.

    An item is right when :func:`hallusion_yes_no` of its response equals its answer
    (a judge's code, if given, is not used here: VLMEvalKit's judge only reads yes/no).
    """
    items = list(items)
    right = [hallusion_yes_no(i.prediction) == i.answer for i in items]
    out = {"Overall": _vlmeval_scores(items, right)}
    for field in ("category", "subcategory"):
        for name in dict.fromkeys(getattr(i, field) for i in items):
            chosen = [
                (i, ok) for i, ok in zip(items, right, strict=True) if getattr(i, field) == name
            ]
            out[name] = _vlmeval_scores([i for i, _ in chosen], [ok for _, ok in chosen])
    return out
