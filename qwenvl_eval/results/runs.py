"""The one reader of run directories: `table`, `compare` and `report` see runs only through
`load_run`. It validates results.json against the packaged JSON Schema, upgrades older
versions in memory, and refuses what it cannot read with one line naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..semantics import MetricMeaning
from ..types import ItemResult
from .predictions import check_record, read_predictions
from .results_file import read_results_file
from .rundir import RunDir, results_json_of


@dataclass
class Run:
    """One run directory as the table, compare and report commands see it."""

    path: Path  # the run directory
    results: dict[str, Any]
    _items: dict[str, list[ItemResult]] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """The model as the user named it; a local checkpoint by its folder name."""
        spec = str(self.results["config"]["model"])
        return Path(spec).name if spec.startswith(("/", ".", "~")) else spec

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.results["tasks"]

    @property
    def family(self) -> str:
        return str(self.results["model"]["family"])

    @property
    def limit(self) -> int | None:
        return self.results["config"].get("limit")

    def headline(self, task: str) -> str | None:
        r = self.tasks[task]
        return r.get("headline") or next(iter(r["metrics"]), None)

    def meanings(self, task: str) -> dict[str, MetricMeaning]:
        """What each of the task's metrics means, as the run recorded it (see `semantics`)."""
        return {
            k: MetricMeaning.from_json(v)
            for k, v in (self.tasks[task].get("metric_meanings") or {}).items()
        }

    def predictions_path(self, task: str) -> Path:
        return RunDir(self.path).predictions(task)

    def item_scores(self, task: str, keys: list[str]) -> ItemScores:
        """The task's per-item scores under `keys` as compact arrays (see `ItemScores`)."""
        return read_item_scores(self.predictions_path(task), keys)

    def items(self, task: str) -> list[ItemResult]:
        """The task's saved predictions, read only (a torn last line, left by a killed
        run, is skipped; any other bad line is an error naming the file and line)."""
        if task not in self._items:
            self._items[task] = read_predictions(self.predictions_path(task))
        return self._items[task]


# What json.loads raises on a line that is no JSON (a 100,000-deep nesting is a RecursionError).
_NOT_JSON = (ValueError, UnicodeDecodeError, RecursionError)


@dataclass
class ItemScores:
    """One predictions file reduced to what the gate needs: per id, its per-item scores under
    the asked keys (float arrays, NaN where a line lacks the key: see `present`) and where its
    line starts, so that an item's full record is read again only when it is shown. A 214k-item
    file costs a few MB instead of an object per item. The last line of an id wins."""

    path: Path
    rows: dict[str, int]  # id -> row (the row of its last line)
    offsets: np.ndarray  # byte offset of each row's line
    line_numbers: np.ndarray
    values: dict[str, np.ndarray]
    present: dict[str, np.ndarray]  # key -> bool per row: the line has the key

    def items(self, rows: list[int]) -> list[ItemResult]:
        """The full records of `rows`, read again from the file (one open, in file order)."""
        out: dict[int, ItemResult] = {}
        with open(self.path, "rb") as f:
            for row in sorted(set(rows), key=lambda r: int(self.offsets[r])):
                f.seek(int(self.offsets[row]))
                out[row] = ItemResult.from_json(json.loads(f.readline()))
        return [out[r] for r in rows]


_MISSING = object()


def read_item_scores(path: Path, keys: list[str]) -> ItemScores:
    """Raises UserError with one line naming the file, line and field on a record that is not
    a prediction or a per-item score that is not a number (a string, null, a list). One pass
    that keeps each line's id, offset and raw scores in flat lists; the scores are checked and
    turned into arrays per key afterwards (the per-line work is json.loads and a few appends)."""
    ids: list[str] = []
    offsets: list[int] = []
    numbers: list[int] = []
    raw_values: dict[str, list[Any]] = {k: [] for k in keys}
    appends = [(k, raw_values[k].append) for k in keys]
    loads = json.loads
    check = check_record
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; read line by line, not whole
    except FileNotFoundError:
        raise UserError(f"{path}: predictions file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: unreadable predictions file ({exc})") from None
    with f:
        offset = 0
        for n, raw in enumerate(f, 1):
            start = offset
            offset += len(raw)
            try:
                rec = loads(raw)
                why = check(rec)  # the store's rule for a record (predictions.py)
            except _NOT_JSON as exc:
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n"):  # torn: the line a killed run was writing
                    break
                why = f"not a JSON line ({type(exc).__name__}: {str(exc)[:80]})"
            if why is not None:
                raise UserError(f"{path}, line {n}: not a prediction record ({why})")
            item_id = rec["id"]
            get = (rec.get("score") or {}).get
            ids.append(item_id)
            offsets.append(start)
            numbers.append(n)
            for k, append in appends:
                append(get(k, _MISSING))
    values: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for k, col in raw_values.items():
        if not all(type(v) is float for v in col):  # the common case is checked in one pass
            for i, v in enumerate(col):
                if v is _MISSING or (type(v) in (int, float)):
                    continue
                shown = json.dumps(v)[:40]
                raise UserError(
                    f"{path}, line {numbers[i]}: field score.{k}: expected a number, got {shown}"
                )
        present[k] = np.fromiter((v is not _MISSING for v in col), dtype=bool, count=len(col))
        nan = float("nan")
        values[k] = np.fromiter(
            (nan if v is _MISSING else v for v in col), dtype=np.float64, count=len(col)
        )
    return ItemScores(
        path=path,
        rows=dict(zip(ids, range(len(ids)), strict=True)),  # a later line of an id wins
        offsets=np.array(offsets, dtype=np.int64),
        line_numbers=np.array(numbers, dtype=np.int64),
        values=values,
        present=present,
    )


def load_run(path: Path) -> Run:
    """A run directory (or its results.json). Raises UserError with one line on anything
    it cannot read: missing, not JSON, a newer schema version, a field of the wrong type."""
    json_path = results_json_of(path)
    return Run(json_path.parent, read_results_file(json_path))
