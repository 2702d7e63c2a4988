"""Markdown tables of results: one run's tasks, or a leaderboard over several runs."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate


def _fmt(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


RUN_COLUMNS = ("task", "metric", "value", "items", "errors")


def run_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per task x metric (a submission file stands in for metrics), the task name
    and its item counts on the task's first row only."""
    rows = []
    for task, r in results["tasks"].items():
        counts = r["counts"]
        metrics = r["metrics"] or {"submission": r.get("submission_file") or "-"}
        for i, (name, value) in enumerate(metrics.items()):
            first = i == 0
            rows.append(
                [
                    task if first else "",
                    name,
                    _fmt(value),
                    str(counts.get("items", 0)) if first else "",
                    str(counts.get("errors", 0)) if first else "",
                ]
            )
    return rows


def run_table(results: dict[str, Any]) -> str:
    """The run's rows as a markdown table."""
    return tabulate(
        run_rows(results), headers=list(RUN_COLUMNS), tablefmt="github", disable_numparse=True
    )


def leaderboard(runs: list[dict[str, Any]]) -> str:
    """Rows: models; columns: each task's headline metric (the `table` builder, markdown)."""
    from pathlib import Path

    from .render import to_markdown
    from .runs import Run
    from .scoretable import runs_table

    return to_markdown(runs_table([Run(Path(f"run{i}"), r) for i, r in enumerate(runs)]))
