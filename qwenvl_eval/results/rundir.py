"""The layout of a run directory: every file name in one place, for the writers (store,
shards, results file, submission) and the readers (runs, compare, report, the gate's
output checks) alike.

    run.json                                what produced the run (fingerprint checked on resume)
    <task>.predictions.jsonl                one line per item (id, prompt_hash, run, output, ...)
    <task>.rank<r>-of-<K>.predictions.jsonl rank r's answers during a data-parallel run
    <task>.rejected.jsonl                   lines refused on resume, kept
    <task>.submission.json                  server submission file (splits without answers)
    <task>.judge.jsonl                      the optional LLM judge's calls, one line per item
    results.json, results.md                written at the end
    .lock, .lock-rank<r>                    held by the process writing into the directory
    .rank-check-<nonce>                     a data-parallel run's shared-filesystem check
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_FILE = "run.json"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
LOCK = ".lock"
PREDICTIONS_SUFFIX = ".predictions.jsonl"
REJECTED_SUFFIX = ".rejected.jsonl"
SUBMISSION_SUFFIX = ".submission.json"
JUDGE_SUFFIX = ".judge.jsonl"

# Temporary files of atomic writes (`.<name>.<random>`) that a killed process leaves behind.
STALE_TEMP = re.compile(
    r"^\.(results\.json|results\.md|run\.json|.+\.predictions\.jsonl|.+\.rejected\.jsonl"
    r"|.+\.submission\.json)\.\w+$"
)


def safe_name(task: str) -> str:
    """A task name as a file name (a plug-in task may name itself with any character)."""
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in task)


def is_run_file(path: Path) -> bool:
    """A file another command must not write over: results, predictions, hidden state."""
    name = path.name
    return (
        name in (RESULTS_JSON, RESULTS_MD)
        or name.endswith((PREDICTIONS_SUFFIX, REJECTED_SUFFIX, JUDGE_SUFFIX))
        or name.startswith(".")
    )


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory's files (nothing is read or written here)."""

    path: Path

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def results_json(self) -> Path:
        return self.path / RESULTS_JSON

    @property
    def results_md(self) -> Path:
        return self.path / RESULTS_MD

    def lock(self, rank: int | None = None) -> Path:
        """The lock of the run's writer; the ranks of a data-parallel run other than 0 each
        hold their own (they write only their own rank files)."""
        return self.path / (LOCK if rank is None else f"{LOCK}-rank{rank}")

    def rank_check(self, nonce: int) -> Path:
        return self.path / f".rank-check-{nonce:x}"

    def predictions(self, task: str, rank: int | None = None, world_size: int = 1) -> Path:
        """The task's predictions file; with `rank`, that rank's file of a data-parallel run
        of `world_size` processes."""
        stem = safe_name(task)
        if rank is not None:
            stem = f"{stem}.rank{rank}-of-{world_size}"
        return self.path / f"{stem}{PREDICTIONS_SUFFIX}"

    def rank_predictions(self, task: str) -> list[Path]:
        """Every rank file of the task, of any world size, sorted by name."""
        if not self.path.is_dir():
            return []
        pattern = re.compile(re.escape(safe_name(task)) + r"\.rank\d+-of-\d+")
        return sorted(
            p
            for p in self.path.iterdir()
            if p.name.endswith(PREDICTIONS_SUFFIX)
            and pattern.fullmatch(p.name.removesuffix(PREDICTIONS_SUFFIX))
        )

    def rejected(self, task: str) -> Path:
        return self.path / f"{safe_name(task)}{REJECTED_SUFFIX}"

    def submission(self, task: str) -> Path:
        return self.path / f"{safe_name(task)}{SUBMISSION_SUFFIX}"

    def judge(self, task: str) -> Path:
        return self.path / f"{safe_name(task)}{JUDGE_SUFFIX}"

    def stale_temporaries(self) -> list[Path]:
        """Temporary files that killed runs left (`.results.json.x1y2`, ...)."""
        return [p for p in self.path.iterdir() if STALE_TEMP.match(p.name) and p.is_file()]


def results_json_of(path: Path) -> Path:
    """The results file a user pointed at: a run directory, or its results.json itself."""
    path = Path(path)
    return RunDir(path).results_json if path.is_dir() else path
