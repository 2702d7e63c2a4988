"""The one table builder: a pandas frame of scores (rows: runs or published models, columns:
task metrics) with the best value per column, footnote marks and notes. `render.py` turns it
into the terminal, markdown (results.md, leaderboard), LaTeX, CSV, HTML and JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from ..types import RULES_ONLY_NOTE
from .runs import Run

RowKind = Literal["measured", "published", "delta"]


# The order of the paper's tables, then the few-shot variants; other tasks follow by name.
PAPER_GROUPS = ("paper-table4", "paper-table5", "paper-table6", "paper-figure4")


@dataclass
class ScoreTable:
    title: str
    values: pd.DataFrame  # floats, NaN = missing; index: row labels; columns: column labels
    kinds: list[RowKind]  # one per row
    marks: dict[tuple[int, str], list[str]] = field(default_factory=dict)  # (row, col) -> keys
    notes: dict[str, str] = field(default_factory=dict)  # footnote key -> text, in order
    lower_is_better: frozenset[str] = frozenset()  # column labels
    cell_text: dict[tuple[int, str], str] = field(default_factory=dict)  # text instead of value
    footer: list[str] = field(default_factory=list)  # general notes (sources), unmarked
    rank_columns: bool = True  # mark the best value per column
    # The paper's layout: column groups as (header, span) in column order, a row group per
    # row ("" for none; a header row is drawn where it changes), and short column headers
    # under a group header (e.g. "val" under "RefCOCO").
    col_groups: list[tuple[str, int]] = field(default_factory=list)
    row_groups: list[str] = field(default_factory=list)
    short_headers: dict[str, str] = field(default_factory=dict)
    row_marks: dict[int, list[str]] = field(default_factory=dict)  # row -> keys on its label
    unranked: set[tuple[int, str]] = field(default_factory=set)  # off-protocol cells

    def _key(self, note: str) -> str:
        key = next((k for k, v in self.notes.items() if v == note), None)
        if key is None:
            key = _note_key(len(self.notes))
            self.notes[key] = note
        return key

    def mark(self, row: int, col: str, note: str) -> None:
        """Attach a footnote to a cell; equal notes share one key (a, b, ...)."""
        keys = self.marks.setdefault((row, col), [])
        key = self._key(note)
        if key not in keys:
            keys.append(key)

    def mark_row(self, row: int, note: str) -> None:
        """Attach a footnote to a row's label: one note for everything about that row."""
        keys = self.row_marks.setdefault(row, [])
        key = self._key(note)
        if key not in keys:
            keys.append(key)

    def group_of(self, row: int) -> str:
        return self.row_groups[row] if self.row_groups else ""

    def best(self) -> set[tuple[int, str]]:
        """Cells holding the best value of their column among the measured and published
        rows of their row group (never across groups: a fine-tuned specialist is not the
        generalists' bar)."""
        out: set[tuple[int, str]] = set()
        if not self.rank_columns:
            return out
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(self.kinds):
            if k != "delta":
                groups.setdefault(self.group_of(i), []).append(i)
        for ranked in groups.values():
            for col in self.values.columns:
                vals = {i: self.values.iloc[i][col] for i in ranked}
                # A measured cell marked as off-protocol is not ranked against the paper.
                vals = {
                    i: v
                    for i, v in vals.items()
                    if not _missing(v)
                    and math.isfinite(v)  # an infinite score is a bug to see, not a best
                    and (i, col) not in self.unranked
                    and not (self.kinds[i] == "measured" and (i, col) in self.marks)
                }
                if len(vals) < 2:
                    continue
                pick = min if col in self.lower_is_better else max
                target = pick(vals.values())
                out |= {(i, col) for i, v in vals.items() if v == target}
        return out

    def text(self, row: int, col: str) -> str:
        """A cell as shown: 2 decimals (signed for deltas), '-' when missing."""
        if (row, col) in self.cell_text:
            return self.cell_text[(row, col)]
        v = self.values.iloc[row][col]
        if _missing(v):
            return "-"
        return f"{v:+.2f}" if self.kinds[row] == "delta" else f"{v:.2f}"


def _note_key(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return letters[n] if n < 26 else f"n{n}"


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def task_order(tasks: list[str]) -> list[str]:
    """Paper tasks in the paper's column order, then the rest by name (stable)."""
    from .. import registry

    groups = registry.groups()
    paper = [t for g in PAPER_GROUPS for t in groups.get(g, [])]
    rank = {t: i for i, t in enumerate(dict.fromkeys(paper))}
    return sorted(dict.fromkeys(tasks), key=lambda t: (rank.get(t, len(rank)), t))


def unique_labels(runs: list[Run]) -> list[str]:
    """Row labels: the model; the run directory's name is added where two runs share one,
    and a number where even that is shared (same config in two output folders)."""
    labels = [r.label for r in runs]
    named = [
        f"{lab} ({r.path.name})" if labels.count(lab) > 1 else lab
        for lab, r in zip(labels, runs, strict=True)
    ]
    return [
        f"{lab} #{named[:i].count(lab) + 1}" if named.count(lab) > 1 else lab
        for i, lab in enumerate(named)
    ]


def runs_table(
    runs: list[Run],
    *,
    all_metrics: bool = False,
    title: str = "",
    labels: list[str] | None = None,
) -> ScoreTable:
    """Rows: runs; columns: each task's headline metric (every metric with all_metrics)."""
    tasks = task_order([t for r in runs for t in r.tasks])
    columns: list[tuple[str, str]] = []
    for t in tasks:
        names: list[str] = []
        for r in runs:
            if t not in r.tasks:
                continue
            metrics = list(r.tasks[t]["metrics"])
            head = r.headline(t)
            wanted = metrics if all_metrics else [head] if head in metrics else []
            names.extend(m for m in wanted if m not in names)
        if not names:  # a submission-only task: a column that says so
            names = [""]
        columns.extend((t, m) for m in names)
    names = [f"{t} {m}".strip() if all_metrics else t for t, m in columns]
    rows = []
    for r in runs:
        row = []
        for t, m in columns:
            v = r.tasks.get(t, {}).get("metrics", {}).get(m)
            row.append(float(v) if isinstance(v, (int, float)) else math.nan)
        rows.append(row)
    # Where a smaller number is better (the best-per-column mark), as each task declares it.
    lower = {
        (t, m)
        for r in runs
        for t in r.tasks
        for m, v in r.meanings(t).items()
        if not v.higher_is_better
    }
    index = labels or unique_labels(runs)
    frame = pd.DataFrame(rows, index=index, columns=names, dtype=float)
    frame.index.name = "model"
    table = ScoreTable(
        title=title,
        values=frame,
        kinds=["measured"] * len(runs),
        lower_is_better=frozenset(
            lab for lab, col in zip(names, columns, strict=True) if col in lower
        ),
    )
    for i, r in enumerate(runs):
        for lab, (t, _) in zip(names, columns, strict=True):
            task = r.tasks.get(t)
            if task and task.get("submission_file") and not task["metrics"]:
                score = task.get("server_score")
                if score:  # recorded with `submission record`: the server's number, cited
                    table.values.iloc[i, names.index(lab)] = float(score["score"])
                    table.mark(i, lab, f"{t}: evaluation server score ({score['source']})")
                else:
                    table.cell_text[(i, lab)] = "submission"
            for note in (task or {}).get("notes", []):
                if note.startswith(RULES_ONLY_NOTE):  # the reference would have asked an LLM
                    table.mark(i, lab, f"{t}: {note}")
    return table


def task_rows_table(results: dict[str, Any], title: str = "") -> ScoreTable:
    """One run as rows of task x metric with the task's item counts (results.md and the table
    printed after `run`): the same ScoreTable and renderers as `table`. A submission file
    stands in for the metrics of a split without public answers."""
    columns = ["metric", "value", "items", "errors"]
    index: list[str] = []
    values: list[list[float]] = []
    text: dict[tuple[int, str], str] = {}
    for task in task_order(list(results["tasks"])):
        entry = results["tasks"][task]
        counts = entry.get("counts", {})
        metrics = entry.get("metrics") or {"submission": None}
        for i, (name, value) in enumerate(metrics.items()):
            row = len(index)
            index.append(task if i == 0 else "")
            number = float(value) if isinstance(value, (int, float)) else math.nan
            values.append([math.nan, number, math.nan, math.nan])
            text[(row, "metric")] = name
            if value is None:
                text[(row, "value")] = entry.get("submission_file") or "-"
            for col in ("items", "errors"):
                text[(row, col)] = str(counts.get(col, 0)) if i == 0 else ""
    frame = pd.DataFrame(values, index=index, columns=columns, dtype=float)
    frame.index.name = "task"
    return ScoreTable(
        title=title,
        values=frame,
        kinds=["measured"] * len(index),
        cell_text=text,
        rank_columns=False,
    )
