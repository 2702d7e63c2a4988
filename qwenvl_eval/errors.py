"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input (flags, files, data). Never shown as a traceback."""


class DataError(UserError):
    """A data file is missing or malformed. Names the file, the item and the field."""

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        item: str | None = None,
        field: str | None = None,
    ) -> None:
        where = str(path)
        if item is not None:
            where += f", item {item}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.item = item
        self.field = field
