"""results.md's table of one run's tasks, built by `scoretable` and drawn by `render`, like
every format of `table`."""

from __future__ import annotations

from typing import Any


def run_table(results: dict[str, Any]) -> str:
    """The run's task x metric rows as a markdown table (the `table` renderers)."""
    from .render import to_markdown
    from .scoretable import task_rows_table

    return to_markdown(task_rows_table(results))
