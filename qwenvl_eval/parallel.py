"""Data-parallel ranks: `torchrun` / `accelerate launch` split a run's items across processes.

Every process runs the same command. Each rank answers its part of every task and appends
its answers to its own file (results/shards.py); rank 0 then waits for the others, merges
the files in item order into the normal `<task>.predictions.jsonl` and scores once, exactly
as a single process would. Nothing here is a home-made engine: torchrun starts and watches
the processes, torch.distributed (gloo, on CPU and GPU machines alike) carries the few
small synchronisations.

The split. Per task, the items still missing (in the task's dataset order, after resume)
are dealt out round robin: rank r takes positions r, r+K, r+2K, ... Round robin rather than
contiguous blocks keeps the ranks' loads equal when item cost drifts along the dataset
(datasets are often grouped by image or question type); splitting what is MISSING rather than
all items keeps a rerun after a crash balanced too (a hash of the item id would send all of
a dead rank's items to one rank again). All ranks must agree on what is missing, so they read
the saved answers before anyone writes and compare a digest of the list (which also catches
an output directory that is not shared between nodes).

A dead rank. Its answers are on disk as they were produced. The other ranks notice at their
next synchronisation (the broken connection, or a timeout of QWENVL_EVAL_RANK_TIMEOUT seconds,
default 3600, for a hung one), stop with a clear message, and a rerun of the same command
with any number of processes does only the missing items.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import UserError
from .evaluator import FailureBudget, NullProgress, Progress, TaskRun, evaluate, evaluate_task
from .model.base import Runner, RunnerOptions, RunnerStats
from .results.rundir import RunDir
from .results.shards import ShardedStore
from .types import Request, TaskResult

TIMEOUT_ENV = "QWENVL_EVAL_RANK_TIMEOUT"
_MAX_TIMEOUT_S = 7 * 24 * 3600  # a week: beyond it, a hung rank is never noticed
_RETRY_HINT = (
    "answers finished so far are saved; rerun the same command (with any number of "
    "processes) to do only the missing items"
)


def _env_int(env: dict[str, str], name: str, default: int | None = None) -> int:
    raw = env.get(name)
    if raw is None:
        if default is None:
            raise UserError(f"{name} is not set: launch with torchrun or accelerate launch")
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"environment variable {name}={raw!r}: expected an integer") from None


@dataclass
class Ranks:
    """This process's place in a data-parallel run (world_size 1: a plain single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    run_id: str | None = None  # torchrun's rendezvous id: the same on every rank of one run
    timeout_s: float = 3600.0
    _group: Any = field(default=None, repr=False)
    _todo: dict[str, int] = field(default_factory=dict, repr=False)
    _rank_stats: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Ranks:
        """RANK, WORLD_SIZE, LOCAL_RANK as torchrun and accelerate launch set them."""
        env = dict(os.environ if env is None else env)
        world = _env_int(env, "WORLD_SIZE", 1)
        if world <= 1:
            return cls()
        rank = _env_int(env, "RANK")
        local = _env_int(env, "LOCAL_RANK")
        if not 0 <= rank < world or local < 0:
            raise UserError(f"RANK={rank}, LOCAL_RANK={local}: out of range for WORLD_SIZE={world}")
        raw = env.get(TIMEOUT_ENV, "3600")
        try:
            timeout = float(raw)
        except ValueError:
            timeout = math.nan
        # nan, inf (timedelta overflows) and <= 0 would each fail deep inside torch.distributed
        if not (math.isfinite(timeout) and 0 < timeout <= _MAX_TIMEOUT_S):
            raise UserError(
                f"environment variable {TIMEOUT_ENV}={raw!r}: expected a number of seconds "
                f"above 0 and at most {_MAX_TIMEOUT_S}"
            )
        return cls(rank, world, local, env.get("TORCHELASTIC_RUN_ID"), timeout)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that merges, scores and writes results.json (and holds any
        run-directory lock on behalf of the whole run)."""
        return self.rank == 0

    # -- devices ------------------------------------------------------------------------------
    def device(self, name: str | None) -> str | None:
        """One GPU per process: `auto` and `cuda` become cuda:<LOCAL_RANK>; an explicit
        `cuda:N` or `cpu` is kept."""
        if not self.distributed or name not in ("auto", "", None, "cuda"):
            return name
        import torch

        if not torch.cuda.is_available():
            return name
        if self.local_rank >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK={self.local_rank} but this node has {torch.cuda.device_count()} "
                "GPU(s): start at most one process per GPU (--nproc-per-node), or pass --device"
            )
        return f"cuda:{self.local_rank}"

    def runner_options(self, options: RunnerOptions) -> RunnerOptions:
        return dataclasses.replace(options, device=self.device(options.device))

    # -- the run directory --------------------------------------------------------------------
    def store(self, run_dir: Path) -> ShardedStore:
        """The predictions store of this process. All ranks must compute the same run
        directory and see it on one filesystem: both are checked here, before any work."""
        if not self.distributed:
            return ShardedStore(run_dir)
        self.agree("the run directory (model path and output-affecting flags)", run_dir.name)
        self._check_shared(run_dir)
        return ShardedStore(run_dir, self.rank, self.world_size)

    def discard(self, store: ShardedStore, tasks: list[str]) -> None:
        """`--no-resume`: rank 0 removes every saved answer, the others wait for it."""
        if self.is_main:
            for task in tasks:
                store.discard(task)
        self.barrier("removing the saved answers (--no-resume)")

    def _check_shared(self, run_dir: Path) -> None:
        import torch
        import torch.distributed as dist

        run_dir.mkdir(parents=True, exist_ok=True)
        nonce = torch.tensor([secrets.randbits(62) if self.is_main else 0], dtype=torch.int64)
        self._collective("checking the output directory", dist.broadcast, nonce, 0, self._pg())
        marker = RunDir(run_dir).rank_check(int(nonce.item()))
        if self.is_main:
            marker.touch()
        self.barrier("checking the output directory")
        seen = torch.tensor([1 if marker.exists() else 0], dtype=torch.int64)
        self._collective("checking the output directory", dist.all_reduce, seen, group=self._pg())
        if self.is_main:
            marker.unlink(missing_ok=True)
        if int(seen.item()) != self.world_size:
            raise UserError(
                f"{run_dir}: not every rank sees this run directory; give all nodes an "
                "--output-dir on a filesystem they share"
            )

    # -- the evaluation -----------------------------------------------------------------------
    def evaluate(
        self,
        runs: list[TaskRun],
        runner: Runner,
        store: ShardedStore,
        progress: Progress | None = None,
        budget: FailureBudget | None = None,
    ) -> list[TaskResult] | None:
        """Every rank answers its part of every task; rank 0 then merges and scores and
        returns the task results, the other ranks return None."""
        if not self.distributed:
            return evaluate(runs, runner, store, progress, budget)
        # Rank 0 shows its own part; K progress bars on one terminal would be unreadable.
        shown = _ShareProgress(progress, self) if progress and self.is_main else NullProgress()
        for run in runs:
            evaluate_task(run, runner, store, shown, budget, share=self.share)
        store.close()  # on disk (and visible to the other nodes) before the others are told
        self.barrier("waiting for every rank to finish its items")
        self._gather_stats(runner)
        self.close()
        if not self.is_main:
            return None
        merged = ShardedStore(store.run_dir)
        # Every item is answered by now; one that failed on a rank is kept as failed, not
        # answered again by rank 0 alone (a rerun retries it, as any resume does).
        results = evaluate(runs, runner, merged, NullProgress(), retry_failed=False)
        for run, result in zip(runs, results, strict=True):
            # What a single process would report: the items saved before this run started.
            result.counts["resumed"] = len(run.requests) - self._todo[run.task.name]
        return results

    def share(self, task: str, todo: list[Request]) -> list[Request]:
        """This rank's part of the items still to do (see the module docstring)."""
        self.agree(f"the items of task {task!r} still to do", "\n".join(r.id for r in todo))
        self._todo[task] = len(todo)
        return todo[self.rank :: self.world_size]

    def mine(self, task: str) -> int:
        todo = self._todo.get(task, 0)
        return len(range(self.rank, todo, self.world_size))

    def describe(self) -> dict[str, Any]:
        """What the results record about the ranks (nothing for a single process)."""
        if not self.distributed:
            return {}
        return {
            "data_parallel": {
                "world_size": self.world_size,
                "run_id": self.run_id,
                "rank_throughput": self._rank_stats,
            }
        }

    def _gather_stats(self, runner: Runner) -> None:
        """Every rank's counters; rank 0's runner then reports the whole run's throughput
        (counts summed, time of the slowest rank)."""
        import torch
        import torch.distributed as dist

        names = [f.name for f in dataclasses.fields(RunnerStats)]
        mine = torch.tensor([float(getattr(runner.stats, n)) for n in names], dtype=torch.float64)
        rows = [torch.empty_like(mine) for _ in range(self.world_size)]
        self._collective("collecting throughput", dist.all_gather, rows, mine, group=self._pg())
        stats = [
            RunnerStats(
                **{
                    n: type(getattr(runner.stats, n))(v)
                    for n, v in zip(names, row.tolist(), strict=True)
                }
            )
            for row in rows
        ]
        self._rank_stats = [s.as_dict() for s in stats]
        for n in names:
            values = [getattr(s, n) for s in stats]
            setattr(runner.stats, n, max(values) if n == "seconds" else sum(values))

    # -- synchronisation ----------------------------------------------------------------------
    def _pg(self) -> Any:
        import torch.distributed as dist

        if self._group is None:
            timeout = timedelta(seconds=self.timeout_s)
            if not dist.is_initialized():
                try:
                    self._collective(
                        "waiting for every rank to start",
                        dist.init_process_group,
                        "gloo",
                        rank=self.rank,
                        world_size=self.world_size,
                        timeout=timeout,
                    )
                except ValueError as exc:  # MASTER_ADDR / MASTER_PORT missing
                    raise UserError(f"data parallel: {exc}") from None
                self._group = dist.group.WORLD
            else:  # the caller's own group (e.g. NCCL): ours is a separate gloo one
                self._group = dist.new_group(backend="gloo", timeout=timeout)
        return self._group

    def _collective(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:  # a rank died (broken connection) or hung (timeout)
            # gloo prefixes its messages with "[source.cc:line]": keep only the words
            lines = re.sub(r"\[[^\]]*\]:?\s*", "", str(exc)).strip().splitlines()
            reason = lines[0] if lines else type(exc).__name__
            raise UserError(
                f"rank {self.rank} of {self.world_size}: {what}: another rank failed or did "
                f"not answer within {self.timeout_s:g} s ({reason}); {_RETRY_HINT}"
            ) from None

    def barrier(self, what: str) -> None:
        import torch.distributed as dist

        if not self.distributed:
            return
        group = self._pg()
        self._collective(
            what,
            dist.monitored_barrier,
            group=group,
            timeout=timedelta(seconds=self.timeout_s),
            wait_all_ranks=True,
        )

    def agree(self, what: str, value: str) -> None:
        """Stop unless every rank computed the same `value`."""
        import torch
        import torch.distributed as dist

        digest = hashlib.sha256(value.encode()).digest()[:8]
        mine = torch.tensor([int.from_bytes(digest, "big", signed=True)], dtype=torch.int64)
        rows = [torch.empty_like(mine) for _ in range(self.world_size)]
        self._collective(f"comparing {what}", dist.all_gather, rows, mine, group=self._pg())
        differ = [r for r, row in enumerate(rows) if not torch.equal(row, rows[0])]
        if differ:
            raise UserError(
                f"rank {self.rank} of {self.world_size}: ranks {differ} disagree with rank 0 "
                f"on {what}; every rank must run the same command on the same data and model"
            )

    def close(self) -> None:
        """Leave the process group: nothing after the merge needs the other ranks."""
        import torch.distributed as dist

        if self._group is not None and dist.is_initialized():
            if self._group is dist.group.WORLD:
                dist.destroy_process_group()
            self._group = None


class _ShareProgress:
    """Rank 0's progress bar counts its own part of each task."""

    def __init__(self, inner: Progress, ranks: Ranks) -> None:
        self._inner = inner
        self._ranks = ranks

    def _label(self, task: str) -> str:
        return f"{task} (rank {self._ranks.rank} of {self._ranks.world_size})"

    def start(self, task: str, total: int, done: int) -> None:
        self._inner.start(self._label(task), total=self._ranks.mine(task), done=0)

    def advance(self, task: str, n: int, stats: dict[str, Any]) -> None:
        self._inner.advance(self._label(task), n, stats)

    def finish(self, task: str) -> None:
        self._inner.finish(self._label(task))
