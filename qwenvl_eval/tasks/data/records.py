"""Checked access to the fields of one record of a data file.

Every reader goes through these so that a malformed item always fails the same way: one
`DataError` naming the file, the item and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document


def record(row: Any, *, source: Path | str, item: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise DataError(source, f"expected an object, got {type(row).__name__}", item=item)
    return row


def text(row: dict[str, Any], key: str, *, source: Path, item: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        problem = "missing" if value is None else f"expected a string, got {value!r}"
        raise DataError(source, problem, item=item, field=key)
    return value


def optional_text(row: dict[str, Any], key: str, *, source: Path, item: str) -> str:
    """A string field that may be absent or null (read as "")."""
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(source, f"expected a string, got {value!r}", item=item, field=key)
    return value


def texts(
    row: dict[str, Any], key: str, *, source: Path, item: str, nonempty: bool = True
) -> list[str]:
    """A list of strings; numbers are accepted and written as text (answers like 42)."""
    value = row.get(key)
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        problem = "missing" if value is None else f"expected a list of strings, got {value!r}"
        raise DataError(source, problem, item=item, field=key)
    if nonempty and not value:
        raise DataError(source, "expected at least one entry", item=item, field=key)
    return [v if isinstance(v, str) else str(v) for v in value]


def text_or_texts(row: dict[str, Any], key: str, *, source: Path, item: str) -> list[str]:
    """One string or a list of them, as a list (eval_mm writes `answer` either way)."""
    value = row.get(key)
    return [value] if isinstance(value, str) else texts(row, key, source=source, item=item)


def ident(row: dict[str, Any], key: str, *, source: Path, item: str) -> str:
    """An id field (int or string) as a string."""
    value = row.get(key)
    if big_int(value):
        raise DataError(source, "id out of range (more than 64 bits)", item=item, field=key)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        problem = "missing" if value is None else f"expected an id, got {value!r}"
        raise DataError(source, problem, item=item, field=key)
    return str(value)


def require(
    row: Any, key: str, types: type | tuple[type, ...], *, source: Path | str, item: str
) -> Any:
    row = record(row, source=source, item=item)
    if key not in row:
        raise DataError(source, "missing field", item=item, field=key)
    value = row[key]
    if big_int(value):
        raise DataError(source, "number out of range (more than 64 bits)", item=item, field=key)
    # bool is an int subclass: True is no question id.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        names = "/".join(t.__name__ for t in _tuple(types))
        raise DataError(
            source, f"expected {names}, got {type(value).__name__}", item=item, field=key
        )
    return value


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def check_unique(docs: list[Document], source: Path | str) -> list[Document]:
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            raise DataError(source, "duplicate question id", item=d.id, field="question_id")
        seen.add(d.id)
    return docs


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive(value: Any, *, source: Path | str, item: str, field: str) -> float:
    """A finite number > 0 (an image width or height)."""
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise DataError(
            source, f"expected a finite number > 0, got {value!r}", item=item, field=field
        )
    return float(value)


def box(value: Any, *, source: Path | str, item: str, field: str, xywh: bool) -> list[float]:
    """A ground-truth box as x1y1x2y2 floats, from COCO `[x, y, w, h]` (`xywh`) or corners.
    NaN, infinite, zero-area and inverted boxes are refused (any answer would score 0), and so
    is a negative origin (no pixel lies there: the annotation is broken)."""
    form = "[x, y, w, h]" if xywh else "[x1, y1, x2, y2]"
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 4
        or not all(_number(v) for v in value)
    ):
        raise DataError(source, f"expected {form} numbers, got {value!r}", item=item, field=field)
    if not all(math.isfinite(v) for v in value):
        raise DataError(source, f"non-finite box {list(value)!r}", item=item, field=field)
    x, y, a, b = (float(v) for v in value)
    x2, y2 = (x + a, y + b) if xywh else (a, b)
    if x2 <= x or y2 <= y:
        kind = "zero-area" if (x2 == x or y2 == y) else "inverted"
        raise DataError(source, f"{kind} box {list(value)!r} ({form})", item=item, field=field)
    if x < 0 or y < 0:  # pixels start at 0: such a box is a broken annotation, not an object
        raise DataError(
            source, f"box {list(value)!r} ({form}) has a negative origin", item=item, field=field
        )
    return [x, y, x2, y2]


def big_int(value: Any) -> bool:
    """An int too large to be an id (and too long to print: Python refuses to turn ints of
    more than 4300 digits into text)."""
    return type(value) is int and not -_ID_LIMIT < value < _ID_LIMIT


_ID_LIMIT = 1 << 64
