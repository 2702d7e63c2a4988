"""The predictions store: one JSONL file per task, appended as each answer arrives, so a
killed run loses at most the line being written and resumes where it stopped.

The directory's file names are `rundir`'s.

Nothing finished is ever deleted: a bad line is reported (file and line number) and set
aside, only a torn last line (the process died mid-write) is dropped, and answers to items
outside the current run (a smaller --limit, another task) stay in the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import UserError, storage_error
from ..types import ItemResult, stable_hash
from .atomic import write_json_atomic, write_text_atomic
from .predictions import Parsed, parse_predictions
from .rundir import RunDir

log = logging.getLogger(__name__)


class PredictionStore:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.files = RunDir(run_dir)
        self._handles: dict[str, Any] = {}
        self._last_sync = 0.0
        # Hash of the run fingerprint, written on every line: a line copied from another run
        # (another model or config) is refused. None: not known (no run.json), not checked.
        self.run_id: str | None = None
        self.same_run = True  # the directory held this very run before (or nothing)
        self.problems: list[str] = []  # everything reported while loading
        self._lock_fd: int | None = None
        # Run ids of this directory's earlier runs on other weights: their answers are set
        # aside without a warning per line (check_fingerprint said it once).
        self.stale_run_ids: set[str] = set()

    # -- run identity -------------------------------------------------------------------------
    def check_fingerprint(
        self, fingerprint: dict[str, Any], *, resume: bool, weights_id: str | None = None
    ) -> None:
        """A run directory belongs to one model and config: refuse to mix answers of two.
        `weights_id` (model/weights.py) is the checkpoint's content: the same config on
        rewritten weights is the same directory, but every answer in it is computed again
        (said in one line) and the old ones are set aside, never reused."""
        path = self.files.run_file
        identity = fingerprint | ({WEIGHTS_KEY: weights_id} if weights_id is not None else {})
        existing = None
        earlier: list[str] = []
        if path.exists():
            try:
                existing, earlier = _split_history(json.loads(path.read_text()))
            except (OSError, ValueError, RecursionError) as exc:
                if resume:
                    raise UserError(f"{path}: unreadable run file ({exc})") from None
            diff = sorted(
                k
                for k in set(existing if isinstance(existing, dict) else {}) | set(identity)
                if not isinstance(existing, dict) or existing.get(k) != identity.get(k)
            )
            if resume and diff and diff != [WEIGHTS_KEY]:
                raise UserError(
                    f"{path}: this run directory was made by a different model or config "
                    f"(differs in: {', '.join(d for d in diff if d != WEIGHTS_KEY)}); use "
                    "another --output-dir or --no-resume"
                )
            if diff == [WEIGHTS_KEY]:  # the same run on other weights (--no-resume too)
                earlier.append(stable_hash(existing)[:16])
                if resume:
                    notice = _weights_notice(self.run_dir, fingerprint, existing, weights_id)
                    log.warning("%s", notice)
        self.same_run = existing is None or existing == identity
        self.mkdir()
        self.run_id = stable_hash(identity)[:16]
        # Earlier runs of this directory on other weights, remembered so that their answers
        # in task files not run today are set aside quietly whenever those tasks run.
        earlier = [r for r in dict.fromkeys(earlier) if r != self.run_id][-_HISTORY:]
        self.stale_run_ids = set(earlier)
        saved = identity | ({HISTORY_KEY: earlier} if earlier else {})
        self._write(path, lambda: write_json_atomic(path, saved))

    def _known_run_id(self) -> str | None:
        if self.run_id is None:
            try:
                saved = json.loads(self.files.run_file.read_text())
                self.run_id = stable_hash(_split_history(saved)[0])[:16]
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
    def lock(self, rank: int | None = None) -> None:
        """Refuse a second process writing into this run directory, then clear what killed
        runs left behind (only safe while holding the lock). The OS drops the lock when the
        process dies, even by kill -9: no stale lock to clear by hand. Data-parallel ranks
        other than 0 (`rank`), writing their own files, hold a lock of their own."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover  (Windows: no advisory locks)
            return
        self.mkdir()
        path = self.files.lock(rank)
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
        if rank is None:
            self.clean_stale()

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def clean_stale(self) -> list[Path]:
        """Delete temporary files that killed runs left (`.results.json.x1y2`, ...)."""
        removed = self.files.stale_temporaries()
        for p in removed:
            p.unlink(missing_ok=True)
        return removed

    # -- predictions --------------------------------------------------------------------------
    def predictions_path(self, task: str) -> Path:
        return self.files.predictions(task)

    def rejected_path(self, task: str) -> Path:
        return self.files.rejected(task)

    def _read(self, task: str) -> Parsed:
        path = self.predictions_path(task)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Parsed()
        except OSError as exc:
            raise UserError(f"{path}: unreadable predictions file ({exc})") from None
        return parse_predictions(data, self._known_run_id(), self.stale_run_ids)

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

    def finalize(
        self,
        task: str,
        items: Iterable[ItemResult],
        dataset_ids: frozenset[str] | None = None,
    ) -> None:
        """Rewrite the task's file: `items` in the given (dataset) order, then every other
        answer already in the file (items outside this run's --limit stay), and set refused
        lines aside into `<task>.rejected.jsonl`, with answers to ids that `dataset_ids`
        (every id of the split) does not hold: they belong to no item of this data."""
        self.close(task)
        items = list(items)
        given = {i.id for i in items}
        parsed = self._read(task)
        kept = [v for k, v in parsed.items.items() if k not in given]
        unknown = [
            (k, n, raw)
            for k, n, raw in parsed.raw_lines()
            if dataset_ids is not None and k not in given and k not in dataset_ids
        ]
        foreign = [(n, raw, f"item {k}: not an item of the task's data") for k, n, raw in unknown]
        kept = [v for v in kept if dataset_ids is None or v.id in dataset_ids]
        if unknown:
            msg = (
                f"{self.predictions_path(task)}: {len(unknown)} saved answer(s) to ids not in "
                f"the task's data (e.g. {unknown[0][0]!r}) set aside in "
                f"{self.rejected_path(task).name}"
            )
            self.problems.append(msg)
            log.warning("%s", msg)
        aside = sorted(parsed.rejected + parsed.superseded + foreign)
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

    def judge_file(self, task: str) -> Path:
        return self.files.judge(task)

    def load_judged(self, task: str) -> dict[str, dict[str, Any]]:
        """The judge's successful replies saved for the task, by question key (the last line
        per key). Failed calls are not kept for reuse (they are asked again); a line that
        cannot be read (a torn last line) is skipped: that item is asked again."""
        path = self.judge_file(task)
        out: dict[str, dict[str, Any]] = {}
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return out
        except OSError as exc:
            raise storage_error(path, exc) from None
        for n, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                log.warning("%s, line %d: unreadable, that item is judged again", path, n)
                continue
            ok = isinstance(row, dict) and isinstance(row.get("key"), str)
            if ok and isinstance(row.get("response"), str) and row.get("error") is None:
                out[row["key"]] = row
        return out

    def append_judged(self, task: str, row: dict[str, Any]) -> None:
        """One judged item, on disk at once (a killed run keeps every reply it paid for)."""
        path = self.judge_file(task)
        text = json.dumps(row, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(row)
        try:
            self.mkdir()
            with open(path, "a+b") as f:
                if f.tell() > 0:  # after a torn last line (a killed run), start a new one
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        text = "\n" + text
                f.write((text + "\n").encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise storage_error(path, exc) from None

    def write_submission(self, task: str, rows: list[dict]) -> Path:
        path = self.files.submission(task)
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


WEIGHTS_KEY = "weights_id"
HISTORY_KEY = "earlier_weights_runs"  # in run.json, outside the run's identity
_HISTORY = 64


def _split_history(saved: Any) -> tuple[Any, list[str]]:
    """run.json as (the run's identity, the run ids of earlier runs on other weights)."""
    if not isinstance(saved, dict) or HISTORY_KEY not in saved:
        return saved, []
    saved = dict(saved)
    earlier = saved.pop(HISTORY_KEY)
    ok = isinstance(earlier, list) and all(isinstance(r, str) for r in earlier)
    return saved, earlier if ok else []


def _weights_notice(
    run_dir: Path, fingerprint: dict[str, Any], existing: dict[str, Any], weights_id: str | None
) -> str:
    old = str(existing.get(WEIGHTS_KEY)) if existing.get(WEIGHTS_KEY) is not None else None
    model = fingerprint.get("model_path") or "the model"
    if old is None:
        what = "were written without a fingerprint of the weights"
    elif weights_id is None:
        what = f"were written for weights {old[:12]}, and these weights are unknown"
    else:
        what = f"were written for other weights ({old[:12]}; {model} is now {weights_id[:12]})"
    return (
        f"{run_dir}: the answers saved here {what}: every item is computed again "
        "(the old answers are set aside in <task>.rejected.jsonl)"
    )


def _append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
