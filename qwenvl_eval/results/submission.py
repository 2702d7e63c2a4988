"""`submission record`: the score an evaluation server returned for a submission file
(VQAv2 test-dev, VizWiz test, DocVQA and InfographicVQA test), kept in results.json with where
it came from, so `table --paper` can be regenerated whole from run directories."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UserError
from .atomic import write_json_atomic
from .rundir import RunDir
from .runs import load_run


def record_server_score(run_dir: Path, task: str, score: float, source: str) -> dict[str, Any]:
    """Add `server_score` {score, source, recorded} to the task's entry; the run's own
    metrics are left as they are (the harness computed none: the answers are hidden)."""
    run = load_run(run_dir)  # one-line errors for a missing, newer or malformed file
    path = RunDir(run.path).results_json
    if task not in run.tasks:
        have = ", ".join(t for t, r in run.tasks.items() if r.get("submission_file")) or "none"
        raise UserError(f"{path}: task {task!r} is not in this run (its submission files: {have})")
    entry = run.tasks[task]
    if entry.get("metrics") or not entry.get("submission_file"):
        raise UserError(
            f"{path}: task {task!r} has public answers and was scored by qwenvl-eval; only a "
            "submission-only split takes a server score"
        )
    if not math.isfinite(score) or not 0 <= score <= 100:
        raise UserError(f"--score {score}: expected the server's score in percent, 0 to 100")
    if not source.strip():
        raise UserError("--source: say where the score comes from (e.g. 'EvalAI submission 123')")
    record = {
        "score": float(score),
        "source": " ".join(source.split()),
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "submission_file": entry["submission_file"],
    }
    # Rewrite the file as written (not the reader's in-memory upgrade), adding one field.
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tasks"][task]["server_score"] = record
    write_json_atomic(path, data)
    return record
