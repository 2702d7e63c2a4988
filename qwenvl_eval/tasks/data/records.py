"""Checked access to the fields of one record of a data file.

Every reader goes through these so that a malformed item always fails the same way: one
`DataError` naming the file, the item and the field.
"""

from __future__ import annotations

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


def ident(row: dict[str, Any], key: str, *, source: Path, item: str) -> str:
    """An id field (int or string) as a string."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        problem = "missing" if value is None else f"expected an id, got {value!r}"
        raise DataError(source, problem, item=item, field=key)
    return str(value)


def first_existing(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def require(
    row: Any, key: str, types: type | tuple[type, ...], *, source: Path | str, item: str
) -> Any:
    row = record(row, source=source, item=item)
    if key not in row:
        raise DataError(source, "missing field", item=item, field=key)
    value = row[key]
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
