"""The predictions store: one JSONL file per task, appended as each answer arrives, so a
killed run loses at most the line being written and resumes where it stopped.

Layout of a run directory:
    run.json                   what produced the run (fingerprint checked on resume)
    <task>.predictions.jsonl   one line per item (id, prompt_hash, run, output, answer, score)
    <task>.rejected.jsonl      lines refused on resume (malformed, or from another run), kept
    <task>.submission.json     server submission file for splits without public answers
    results.json, results.md   written at the end
    .lock                      held by the run writing into the directory

Nothing finished is ever deleted: a bad line is reported (file and line number) and set
aside, only a torn last line (the process died mid-write) is dropped, and answers to items
outside the current run (a smaller --limit, another task) stay in the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError, storage_error
from ..types import ItemResult, stable_hash
from .atomic import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

# Temporary files of atomic writes (`.<name>.<random>`) that a killed process leaves behind.
_STALE_TEMP = re.compile(
    r"^\.(results\.json|results\.md|run\.json|.+\.predictions\.jsonl|.+\.rejected\.jsonl"
    r"|.+\.submission\.json)\.\w+$"
)


def _safe_name(task: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in task)


@dataclass
class Parsed:
    """A predictions file read line by line."""

    items: dict[str, ItemResult] = field(default_factory=dict)  # the last valid line per id
    rejected: list[tuple[int, bytes, str]] = field(default_factory=list)  # (line, raw, why)
    torn_at: int | None = None  # byte offset of a torn last line
    missing_newline: bool = False  # the last line is complete JSON but has no "\n"
    lines: dict[str, int] = field(default_factory=dict)  # line number of each item's answer
    superseded: list[tuple[int, bytes, str]] = field(default_factory=list)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _kind(row: dict, name: str) -> str:
    return type(row[name]).__name__ if name in row else "nothing"


def check_line(row: Any, run_id: str | None) -> str | None:
    """Why a parsed predictions line cannot be used, or None. Names the field."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    rid = row.get("id")
    if not isinstance(rid, str) or not rid:
        return f"field 'id': expected a non-empty string, got {type(rid).__name__}"
    where = f"item {rid}, "
    if not isinstance(row.get("prompt_hash"), str):
        return f"{where}field 'prompt_hash': expected a string, got {_kind(row, 'prompt_hash')}"
    for name, types, label in (
        ("output", (str, type(None)), "a string or null"),
        ("error", (str, type(None)), "a string or null"),
        ("extra", (dict, type(None)), "an object"),
    ):
        if not isinstance(row.get(name), types):
            return f"{where}field {name!r}: expected {label}, got {_kind(row, name)}"
    score = row.get("score", {})
    if not isinstance(score, dict) or not all(
        isinstance(k, str) and (_number(v) or v is None) for k, v in score.items()
    ):
        bad = type(score).__name__ if not isinstance(score, dict) else "an object with non-numbers"
        return f"{where}field 'score': expected an object of numbers, got {bad}"
    if run_id is not None and row.get("run") != run_id:
        other = row.get("run")
        whose = f"run {other}" if isinstance(other, str) else "no run fingerprint"
        return (
            f"{where}field 'run': written by another run ({whose}; this run is {run_id}); refused"
        )
    return None


def parse_predictions(data: bytes, run_id: str | None) -> Parsed:
    out = Parsed()
    offset = 0
    raw_of: dict[str, bytes] = {}
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
        if why is not None:
            out.rejected.append((n, raw, why))
            continue
        item = ItemResult.from_json(row)
        earlier = out.items.get(item.id)
        if (
            earlier is not None
            and earlier.error is None
            and earlier.prompt_hash != item.prompt_hash
        ):
            # An answer to another prompt, replaced by a later run: kept aside, not lost.
            why = f"item {item.id}: superseded by line {n} (another prompt or generation setting)"
            out.superseded.append((out.lines[item.id], raw_of[item.id], why))
        out.items[item.id] = item
        out.lines[item.id] = n
        raw_of[item.id] = raw
    return out


class PredictionStore:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._handles: dict[str, Any] = {}
        self._last_sync = 0.0
        # Hash of the run fingerprint, written on every line: a line copied from another run
        # (another model or config) is refused. None: not known (no run.json), not checked.
        self.run_id: str | None = None
        self.same_run = True  # the directory held this very run before (or nothing)
        self.problems: list[str] = []  # everything reported while loading
        self._lock_fd: int | None = None

    # -- run identity -------------------------------------------------------------------------
    def check_fingerprint(self, fingerprint: dict[str, Any], *, resume: bool) -> None:
        """A run directory belongs to one model and config: refuse to mix answers of two."""
        path = self.run_dir / "run.json"
        existing = None
        if path.exists():
            try:
                existing = json.loads(path.read_text())
            except (OSError, ValueError, RecursionError) as exc:
                if resume:
                    raise UserError(f"{path}: unreadable run file ({exc})") from None
            if resume and existing != fingerprint:
                diff = sorted(
                    k
                    for k in set(existing if isinstance(existing, dict) else {}) | set(fingerprint)
                    if not isinstance(existing, dict) or existing.get(k) != fingerprint.get(k)
                )
                raise UserError(
                    f"{path}: this run directory was made by a different model or config "
                    f"(differs in: {', '.join(diff)}); use another --output-dir or --no-resume"
                )
        self.same_run = existing is None or existing == fingerprint
        self.mkdir()
        self.run_id = stable_hash(fingerprint)[:16]
        self._write(path, lambda: write_json_atomic(path, fingerprint))

    def _known_run_id(self) -> str | None:
        if self.run_id is None:
            try:
                self.run_id = stable_hash(json.loads((self.run_dir / "run.json").read_text()))[:16]
            except (OSError, ValueError, RecursionError):
                return None
        return self.run_id

    def mkdir(self) -> None:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise UserError(f"{self.run_dir}: the output directory is a file, not a folder")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(self.run_dir, exc, "creating the run directory") from None

    # -- one writer per run directory -----------------------------------------------------------
    def lock(self, name: str = ".lock") -> None:
        """Refuse a second process writing into this run directory, then clear what killed
        runs left behind (only safe while holding the lock). The OS drops the lock when the
        process dies, even by kill -9: no stale lock to clear by hand. Data-parallel ranks
        writing their own files pass a lock name of their own."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover  (Windows: no advisory locks)
            return
        self.mkdir()
        path = self.run_dir / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(path, exc, "creating the lock file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(
                f"{self.run_dir}: another run (pid {holder}) is writing into this run "
                "directory; wait for it to finish or use another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        if name == ".lock":
            self.clean_stale()

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def clean_stale(self) -> list[Path]:
        """Delete temporary files that killed runs left (`.results.json.x1y2`, ...)."""
        removed = []
        for p in self.run_dir.iterdir():
            if _STALE_TEMP.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    # -- predictions --------------------------------------------------------------------------
    def predictions_path(self, task: str) -> Path:
        return self.run_dir / f"{_safe_name(task)}.predictions.jsonl"

    def rejected_path(self, task: str) -> Path:
        return self.run_dir / f"{_safe_name(task)}.rejected.jsonl"

    def _read(self, task: str) -> Parsed:
        path = self.predictions_path(task)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Parsed()
        except OSError as exc:
            raise UserError(f"{path}: unreadable predictions file ({exc})") from None
        return parse_predictions(data, self._known_run_id())

    def load(self, task: str, *, strict: bool = False) -> dict[str, ItemResult]:
        """Items already answered, the last valid line per id. A torn last line (killed
        mid-write) is dropped; any other bad line is reported with its line number and kept in
        the file until `finalize` sets it aside. `strict`: a bad line is an error instead."""
        path = self.predictions_path(task)
        parsed = self._read(task)
        for n, _raw, why in parsed.rejected:
            msg = f"{path}, line {n}: {why}"
            if strict:
                raise UserError(msg)
            self.problems.append(msg)
            log.warning("%s; the line is set aside and the item computed again", msg)
        if parsed.torn_at is not None:
            self._write(path, lambda: os.truncate(path, parsed.torn_at))
            msg = f"{path}: dropped a torn last line (the run was killed while writing it)"
            self.problems.append(msg)
            log.info(msg)
        elif parsed.missing_newline:
            self._write(path, lambda: _append_bytes(path, b"\n"))
        return parsed.items

    def append(self, task: str, item: ItemResult) -> None:
        path = self.predictions_path(task)
        handle = self._handles.get(task)
        try:
            if handle is None:
                self.mkdir()
                handle = self._handles[task] = open(path, "a", encoding="utf-8")  # noqa: SIM115
            handle.write(self._line(item))
            handle.flush()  # in the OS after every item: a killed process loses nothing
            now = time.monotonic()
            if now - self._last_sync >= 1.0:  # on disk every second: a power cut loses <1 s
                os.fsync(handle.fileno())
                self._last_sync = now
        except OSError as exc:
            self._drop_handle(task)
            raise storage_error(path, exc) from None

    def _line(self, item: ItemResult) -> str:
        row = item.to_json()
        if self.run_id is not None:  # the run's fingerprint right after the request's
            row = {"id": row["id"], "prompt_hash": row["prompt_hash"], "run": self.run_id} | row
        text = json.dumps(row, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a task or model: escape, don't crash
            text = json.dumps(row)
        return text + "\n"

    def finalize(self, task: str, items: Iterable[ItemResult]) -> None:
        """Rewrite the task's file: `items` in the given (dataset) order, then every other
        answer already in the file (items outside this run's --limit stay), and set refused
        lines aside into `<task>.rejected.jsonl`."""
        self.close(task)
        items = list(items)
        given = {i.id for i in items}
        parsed = self._read(task)
        kept = [v for k, v in parsed.items.items() if k not in given]
        aside = sorted(parsed.rejected + parsed.superseded)
        if aside:
            side = self.rejected_path(task)
            old = side.read_text(encoding="utf-8", errors="replace") if side.exists() else ""
            new = "".join(
                json.dumps({"line": n, "why": why, "raw": raw.decode("utf-8", "replace")}) + "\n"
                for n, raw, why in aside
            )
            self._write(side, lambda: write_text_atomic(side, old + new))
        path = self.predictions_path(task)
        lines = "".join(self._line(i) for i in [*items, *kept])
        self._write(path, lambda: write_text_atomic(path, lines))

    def write_submission(self, task: str, rows: list[dict]) -> Path:
        path = self.run_dir / f"{_safe_name(task)}.submission.json"
        self._write(path, lambda: write_json_atomic(path, rows))
        return path

    def _write(self, path: Path, do) -> None:
        try:
            do()
        except OSError as exc:
            raise storage_error(path, exc) from None

    def _drop_handle(self, task: str) -> None:
        handle = self._handles.pop(task, None)
        if handle is not None:
            with contextlib.suppress(OSError):  # the write that failed is already reported
                handle.close()

    def close(self, task: str | None = None) -> None:
        for name in [task] if task else list(self._handles):
            handle = self._handles.pop(name, None) if name else None
            if handle is not None:
                try:
                    handle.flush()
                    os.fsync(handle.fileno())
                    handle.close()
                except OSError as exc:
                    self._handles[name] = handle
                    self._drop_handle(name)
                    raise storage_error(self.predictions_path(name), exc) from None


def _append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
