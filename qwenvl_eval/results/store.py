"""The predictions store: one JSONL file per task, appended as each answer arrives, so a
killed run loses at most the line being written and resumes where it stopped.

Layout of a run directory:
    run.json                   what produced the run (fingerprint checked on resume)
    <task>.predictions.jsonl   one line per item (id, prompt_hash, output, answer, score)
    <task>.submission.json     server submission file for splits without public answers
    results.json, results.md   written at the end
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..types import ItemResult
from .atomic import write_json_atomic, write_text_atomic


def _safe_name(task: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in task)


class PredictionStore:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._handles: dict[str, Any] = {}
        self._last_sync = 0.0

    # -- run identity -------------------------------------------------------------------------
    def check_fingerprint(self, fingerprint: dict[str, Any], *, resume: bool) -> None:
        """A run directory belongs to one model and config: refuse to mix answers of two."""
        path = self.run_dir / "run.json"
        if path.exists() and resume:
            try:
                existing = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise UserError(f"{path}: unreadable run file ({exc})") from None
            if existing != fingerprint:
                diff = sorted(
                    k
                    for k in set(existing) | set(fingerprint)
                    if existing.get(k) != fingerprint.get(k)
                )
                raise UserError(
                    f"{path}: this run directory was made by a different model or config "
                    f"(differs in: {', '.join(diff)}); use another --output-dir or --no-resume"
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, fingerprint)

    # -- predictions --------------------------------------------------------------------------
    def predictions_path(self, task: str) -> Path:
        return self.run_dir / f"{_safe_name(task)}.predictions.jsonl"

    def load(self, task: str) -> dict[str, ItemResult]:
        """Items already answered. A torn last line (killed mid-write) is dropped."""
        path = self.predictions_path(task)
        if not path.exists():
            return {}
        items: dict[str, ItemResult] = {}
        good_bytes = 0
        with open(path, "rb") as f:
            for raw in f:
                try:
                    item = ItemResult.from_json(json.loads(raw))
                except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                    break
                items[item.id] = item
                good_bytes += len(raw)
        if good_bytes != path.stat().st_size:
            with open(path, "r+b") as f:
                f.truncate(good_bytes)
        return items

    def append(self, task: str, item: ItemResult) -> None:
        handle = self._handles.get(task)
        if handle is None:
            path = self.predictions_path(task)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._handles[task] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        handle.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
        handle.flush()  # in the OS after every item: a killed process loses nothing
        now = time.monotonic()
        if now - self._last_sync >= 1.0:  # on disk at least every second: a power cut loses <1 s
            os.fsync(handle.fileno())
            self._last_sync = now

    def finalize(self, task: str, items: Iterable[ItemResult]) -> None:
        """Rewrite the task's file in dataset order (answers arrive in batch order)."""
        self.close(task)
        lines = "".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items)
        write_text_atomic(self.predictions_path(task), lines)

    def write_submission(self, task: str, rows: list[dict]) -> Path:
        path = self.run_dir / f"{_safe_name(task)}.submission.json"
        write_json_atomic(path, rows)
        return path

    def close(self, task: str | None = None) -> None:
        for name in [task] if task else list(self._handles):
            handle = self._handles.pop(name, None) if name else None
            if handle is not None:
                os.fsync(handle.fileno())
                handle.close()
