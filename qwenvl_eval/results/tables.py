"""Markdown tables of results: one run's tasks, or a leaderboard over several runs."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate


def _fmt(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def run_table(results: dict[str, Any]) -> str:
    """Rows: task x metric, with the item counts beside them."""
    rows = []
    for task, r in results["tasks"].items():
        counts = r["counts"]
        metrics = r["metrics"] or {"submission": r.get("submission_file") or "-"}
        for i, (name, value) in enumerate(metrics.items()):
            rows.append(
                [
                    task if i == 0 else "",
                    name,
                    _fmt(value),
                    counts.get("items", 0) if i == 0 else "",
                    counts.get("errors", 0) if i == 0 else "",
                ]
            )
    return tabulate(
        rows,
        headers=["task", "metric", "value", "items", "errors"],
        tablefmt="github",
        disable_numparse=True,
    )


def leaderboard(runs: list[dict[str, Any]]) -> str:
    """Rows: models; columns: each task's headline metric."""
    tasks: list[str] = []
    for run in runs:
        tasks.extend(t for t in run["tasks"] if t not in tasks)
    rows = []
    for run in runs:
        row = [run["config"]["model"]]
        for t in tasks:
            r = run["tasks"].get(t)
            head = r.get("headline") if r else None
            row.append(_fmt(r["metrics"][head]) if r and head in r["metrics"] else "-")
        rows.append(row)
    return tabulate(rows, headers=["model", *tasks], tablefmt="github", disable_numparse=True)
