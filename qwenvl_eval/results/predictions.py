"""The one parser of `<task>.predictions.jsonl` lines, for the store (run, rescore) and the
offline readers (table, compare, report) alike: `check_line` is the rule a line must meet,
`parse_predictions` reads a whole file with it.

Two modes. The store, resuming, is lenient: a bad line is set aside (the item is computed
again) and `Parsed.rejected` says why. Rescore (`PredictionStore.load(strict=True)`) and the
offline readers (`read_predictions`; `compare`'s compact reader in runs.py checks each line
with `check_record`) are strict: the first bad line is an error naming the file, line and
field. Both drop a torn last line (no newline after it: a killed run was writing it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..types import ItemResult


@dataclass
class Parsed:
    """A predictions file read line by line."""

    items: dict[str, ItemResult] = field(default_factory=dict)  # the last valid line per id
    rejected: list[tuple[int, bytes, str]] = field(default_factory=list)  # (line, raw, why)
    torn_at: int | None = None  # byte offset of a torn last line
    missing_newline: bool = False  # the last line is complete JSON but has no "\n"
    lines: dict[str, int] = field(default_factory=dict)  # line number of each item's answer
    superseded: list[tuple[int, bytes, str]] = field(default_factory=list)
    raws: dict[str, bytes] = field(default_factory=dict)  # the line of each item's answer

    def raw_lines(self) -> list[tuple[str, int, bytes]]:
        """(id, line number, raw line) of each item's kept answer."""
        return [(k, self.lines[k], self.raws[k]) for k in self.items]


# Ints beyond this are no float (math.isfinite would overflow on them): not a number here.
_BIG_INT = 2**1023
_NONE = type(None)


def _scores_ok(score: dict) -> bool:
    """Every per-item score a finite number or null (type() checks: this runs on every line
    that `compare` reads, and parsed JSON holds no subclasses)."""
    for k, v in score.items():
        t = type(v)
        if t is float:
            if v - v != 0:  # NaN or an infinity
                return False
        elif t is int:
            if not -_BIG_INT < v < _BIG_INT:
                return False
        elif v is not None or type(k) is not str:  # (parsed JSON's keys are strings)
            return False
    return True


def _kind(row: dict, name: str) -> str:
    return type(row[name]).__name__ if name in row else "nothing"


_OPTIONAL = (
    ("output", (str, _NONE), "a string or null"),
    ("error", (str, _NONE), "a string or null"),
    ("extra", (dict, _NONE), "an object"),
)


def check_record(row: Any) -> str | None:
    """Why a parsed line is no prediction record, or None: every field but the values of its
    per-item scores, which `check_line` adds (`compare` reads those as numbers itself, a
    non-finite one there being a verdict, not a broken line). Names the field."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    get = row.get
    rid = get("id")
    if type(rid) is not str or not rid:
        return f"field 'id': expected a non-empty string, got {type(rid).__name__}"
    if type(get("prompt_hash")) is not str:
        return (
            f"item {rid}, field 'prompt_hash': expected a string, got {_kind(row, 'prompt_hash')}"
        )
    for name, types, label in _OPTIONAL:
        if type(get(name)) not in types:
            return f"item {rid}, field {name!r}: expected {label}, got {_kind(row, name)}"
    score = get("score", _EMPTY)
    if type(score) is not dict:
        return (
            f"item {rid}, field 'score': expected an object of numbers, got {_kind(row, 'score')}"
        )
    return None


def check_line(row: Any, run_id: str | None) -> str | None:
    """Why a parsed predictions line cannot be used by the store, or None. Names the field.
    `run_id`: the line must have been written by that run (None: not checked)."""
    why = check_record(row)
    if why is not None:
        return why
    rid = row["id"]
    if not _scores_ok(row.get("score", _EMPTY)):
        return (
            f"item {rid}, field 'score': expected an object of numbers, "
            "got an object with non-numbers"
        )
    if run_id is not None and row.get("run") != run_id:
        other = row.get("run")
        whose = f"run {other}" if isinstance(other, str) else "no run fingerprint"
        return (
            f"item {rid}, field 'run': written by another run ({whose}; this run is {run_id}); "
            "refused"
        )
    return None


_EMPTY: dict = {}


def parse_predictions(
    data: bytes, run_id: str | None, stale_runs: set[str] | frozenset[str] = frozenset()
) -> Parsed:
    """`stale_runs`: run ids whose lines are answers for other weights: set aside quietly
    (the run said so once) with the superseded lines."""
    out = Parsed()
    offset = 0
    raw_of = out.raws
    lines = data.split(b"\n")
    last = len(lines) - 1  # lines[last] is what follows the final "\n" (b"" when complete)
    for n, raw in enumerate(lines, start=1):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
            why = check_line(row, run_id)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # ValueError covers JSONDecodeError and ints of more than 4300 digits.
            row, why = None, f"not a JSON line ({type(exc).__name__}: {str(exc)[:80]})"
        if n - 1 == last:  # no newline after it: the process may have died mid-write
            if why is not None and row is None:
                out.torn_at = start
                continue
            out.missing_newline = True
        if why is not None and isinstance(row, dict) and row.get("run") in stale_runs:
            why = f"item {row.get('id')}: answer for other weights (run {row['run']}); redone"
            out.superseded.append((n, raw, why))
            continue
        if why is not None:
            out.rejected.append((n, raw, why))
            continue
        item = ItemResult.from_json(row)
        earlier = out.items.get(item.id)
        if (
            earlier is not None
            and earlier.error is None
            and earlier.request_hash != item.request_hash
        ):
            # An answer to another prompt, replaced by a later run: kept aside, not lost.
            why = f"item {item.id}: superseded by line {n} (another prompt or generation setting)"
            out.superseded.append((out.lines[item.id], raw_of[item.id], why))
        out.items[item.id] = item
        out.lines[item.id] = n
        raw_of[item.id] = raw
    return out


def strict_items(path: Path, parsed: Parsed) -> dict[str, ItemResult]:
    """The items of a file read in strict mode: the first bad line is a UserError."""
    for n, _raw, why in parsed.rejected:
        raise UserError(f"{path}, line {n}: not a prediction record ({why})")
    return parsed.items


def read_predictions(path: Path) -> list[ItemResult]:
    """A finished run's predictions, read only, strict (the last line of an id wins)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: predictions file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: unreadable predictions file ({exc})") from None
    return list(strict_items(path, parse_predictions(data, None)).values())
