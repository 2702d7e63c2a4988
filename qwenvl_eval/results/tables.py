"""Markdown tables of results: one run's tasks, or a leaderboard over several runs; both
built by `scoretable` and drawn by `render`, like every format of `table`."""

from __future__ import annotations

from typing import Any


def run_table(results: dict[str, Any]) -> str:
    """The run's task x metric rows as a markdown table (the `table` renderers)."""
    from .render import to_markdown
    from .scoretable import task_rows_table

    return to_markdown(task_rows_table(results))


def leaderboard(runs: list[dict[str, Any]]) -> str:
    """Rows: models; columns: each task's headline metric (the `table` builder, markdown)."""
    from pathlib import Path

    from .render import to_markdown
    from .runs import Run
    from .scoretable import runs_table

    return to_markdown(runs_table([Run(Path(f"run{i}"), r) for i, r in enumerate(runs)]))
