"""The file side of data-parallel runs: one predictions file per rank, merged on resume.

Each rank of a `torchrun` run appends its answers to its own file,
    <task>.rank<r>-of-<K>.predictions.jsonl
so ranks never write the same file (safe on a shared filesystem across nodes too). Whoever
loads a task reads the normal file AND every rank file of any world size: a rerun with any
number of processes (one included) does only the items that no file holds yet. When a run
finishes, rank 0 writes the normal file in item order and removes the rank files.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ..types import ItemResult
from .predictions import parse_predictions
from .store import PredictionStore

# Fault injection for the tests: "<rank>:<n>" makes that rank SIGKILL itself right after
# its n-th answer is written, the way a crashed GPU or an OOM-killed process dies.
FAULT_ENV = "QWENVL_EVAL_FAULT_KILL_RANK"


def read_items(path: Path, run_id: str | None = None) -> dict[str, ItemResult]:
    """Items of a predictions file that another process may still be appending to: read
    only, never repaired. A torn or bad line, or one from another run, is skipped (its item
    is simply done again)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    return parse_predictions(data, run_id).items


class ShardedStore(PredictionStore):
    """A PredictionStore that also sees the rank files.

    rank=None: its own file is the normal one (a single process, and rank 0's final merge);
    finalize removes the rank files once the normal file holds every item.
    rank=r: its own file is rank r's; the other files are only read.
    """

    def __init__(self, run_dir: Path, rank: int | None = None, world_size: int = 1) -> None:
        super().__init__(run_dir)
        self.rank = rank
        self.world_size = world_size
        self._appended = 0
        self._kill_after = _fault_for(rank)

    def normal_path(self, task: str) -> Path:
        return self.files.predictions(task)

    def predictions_path(self, task: str) -> Path:
        return self.files.predictions(task, self.rank, self.world_size)

    def load(self, task: str, *, strict: bool = False) -> dict[str, ItemResult]:
        own = self.predictions_path(task)
        merged: dict[str, ItemResult] = {}
        # The normal file after the rank files: it wins a tie; its own file wins over both.
        for path in [*self.files.rank_predictions(task), self.normal_path(task)]:
            if path != own:
                merged.update(read_items(path, self._known_run_id()))
        merged.update(super().load(task, strict=strict))  # its own file, repaired as usual
        return merged

    def append(self, task: str, item: ItemResult) -> None:
        super().append(task, item)
        self._appended += 1
        if self._kill_after is not None and self._appended >= self._kill_after:
            self.close()
            os.kill(os.getpid(), signal.SIGKILL)

    def finalize(self, task: str, items, dataset_ids: frozenset[str] | None = None) -> None:
        super().finalize(task, items, dataset_ids)
        if self.rank is None:  # the normal file now holds every item: the rank files go
            for path in self.files.rank_predictions(task):
                path.unlink(missing_ok=True)

    def discard(self, task: str) -> None:
        """Forget every saved answer of the task (`--no-resume`)."""
        for path in [*self.files.rank_predictions(task), self.normal_path(task)]:
            path.unlink(missing_ok=True)


def _fault_for(rank: int | None) -> int | None:
    spec = os.environ.get(FAULT_ENV)
    if not spec or rank is None:
        return None
    target, _, n = spec.partition(":")
    return int(n) if int(target) == rank else None
