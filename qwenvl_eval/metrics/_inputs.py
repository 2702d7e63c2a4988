"""Coercion of untrusted metric inputs (model outputs, dataset answers).

Metrics are called on whatever a model or a data file produced: ``None`` for a
missing answer, a float NaN from a pandas column, a bare string where a list of
references was expected. Every metric routes its inputs through these two helpers
so that "bad input" has one definition across the package instead of one per module.
"""

from __future__ import annotations

from collections.abc import Iterable


def as_text(value: object) -> str | None:
    """``value`` if it is a ``str``, else ``None``.

    Numbers, NaN, bytes and ``None`` are not silently stringified: a prediction of
    ``nan`` must not match a reference reading "nan".
    """
    return value if isinstance(value, str) else None


def as_text_list(values: object) -> list[str]:
    """The string members of ``values``, in order.

    A bare string counts as a one-element list (a frequent shape for single-answer
    datasets); ``None``, numbers and other scalars give ``[]``; non-string members
    of an iterable are dropped.
    """
    if isinstance(values, str):
        return [values]
    if values is None or isinstance(values, (bytes, bytearray, dict)):
        return []
    if not isinstance(values, Iterable):
        return []
    return [v for v in values if isinstance(v, str)]
