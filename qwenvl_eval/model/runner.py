"""The shared batching runner: backends say how to prepare one item and how to run one batch;
this class does everything else (overlapped preprocessing, grouping, length-sorted batches
under a token budget, OOM back-off, per-item error isolation, stats).

Determinism: batch composition depends only on the requests and the options, never on thread
timing. Requests are taken in fixed windows; a window is fully prepared (in parallel, results
collected in request order) before it is grouped, sorted and cut into batches, while the next
window is prepared in the background.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..types import GenerateRequest, Generation, OptionScore, Request, Response, ScoreRequest
from .base import (
    Runner,
    RunnerOptions,
    RunnerStats,
    check_generate_requests,
    check_score_requests,
)
from .families import Family

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    request: Request  # GenerateRequest or ScoreRequest
    index: int  # position in the caller's list
    num_tokens: int  # prompt length in tokens INCLUDING image tokens (budgets/sorting)
    inputs: Any = None  # backend-specific (token ids, pixel tensors, grids, ...)
    meta: dict = field(default_factory=dict)  # goes to Response.meta
    error: str | None = None  # preparation failed: the item gets an error Response


@dataclass
class GenOutput:
    text: str
    new_tokens: int
    meta: dict = field(default_factory=dict)  # merged over Prepared.meta in the Response


def is_oom(exc: BaseException) -> bool:
    """CUDA OOM, or the generic RuntimeError some kernels/backends raise instead."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def _free_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover  (best effort only)
        pass


def padded_tokens(batch: Sequence[Prepared]) -> int:
    """Tokens a left-padded batch occupies: longest prompt x rows."""
    return max((p.num_tokens for p in batch), default=0) * len(batch)


def plan_batches(
    items: Sequence[Prepared],
    batch_size: int,
    max_batch_tokens: int | None,
    key: Callable[[Prepared], Hashable],
) -> list[list[Prepared]]:
    """Group by `key` (never mixing groups in a batch), sort each group longest first (so that
    rows of a batch have similar lengths and an OOM shows up on the first batch), then cut
    batches bounded by rows and padded tokens. A single item over the budget still runs alone."""
    groups: dict[Hashable, list[Prepared]] = {}
    for p in items:  # dict keeps first-appearance order: deterministic
        groups.setdefault(key(p), []).append(p)
    batches: list[list[Prepared]] = []
    for group in groups.values():
        group = sorted(group, key=lambda p: (-p.num_tokens, p.index))
        cur: list[Prepared] = []
        longest = 0
        for p in group:
            new_longest = max(longest, p.num_tokens)
            fits_rows = len(cur) < batch_size
            fits_tokens = (
                max_batch_tokens is None or new_longest * (len(cur) + 1) <= max_batch_tokens
            )
            if cur and not (fits_rows and fits_tokens):
                batches.append(cur)
                cur, new_longest = [], p.num_tokens
            cur.append(p)
            longest = new_longest
        if cur:
            batches.append(cur)
    return batches


class BatchedRunner(Runner):
    """Subclasses implement `prepare`, `generate_batch` and `score_batch`; they may override
    `batch_key` to forbid mixing more kinds of items in one batch."""

    # Items prepared ahead and then sorted together (in batches' worth). Larger windows pad
    # less but hold more preprocessed pixels: two windows are in memory at once.
    window_batches: int = 4
    # The model's maximum sequence length (prompt + new tokens); None: unbounded. A longer
    # item gets an error Response instead of a batch that tries to allocate its attention.
    max_context: int | None = None

    def __init__(self, family: Family, options: RunnerOptions) -> None:
        if options.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if options.max_batch_tokens is not None and options.max_batch_tokens < 1:
            raise ValueError("max_batch_tokens must be >= 1")
        self.family = family
        self.options = options
        self.stats = RunnerStats()
        # Padded-token size that is known to fit after an OOM: later batches are split to it
        # up front instead of failing again.
        self._oom_cap: int | None = None

    # ---- backend hooks -------------------------------------------------------------------
    @abstractmethod
    def prepare(self, request: Request, index: int) -> Prepared:
        """Runs on a worker thread: open images, preprocess, tokenise. May raise: the item then
        gets an error Response."""

    @abstractmethod
    def generate_batch(self, batch: list[Prepared], generation: Generation) -> list[GenOutput]:
        """One output per item, in the batch's order. All items share `generation`."""

    @abstractmethod
    def score_batch(self, batch: list[Prepared]) -> list[tuple[OptionScore, ...]]:
        """One tuple of option scores per item (in its options' order), in the batch's order."""

    def batch_key(self, p: Prepared) -> Hashable:
        if isinstance(p.request, GenerateRequest):
            return ("generate", p.request.generation)
        return ("score",)

    # ---- Runner API ----------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[Response]:
        check_generate_requests(requests)
        return self._run(list(requests))

    def score_options(self, requests: Sequence[ScoreRequest]) -> Iterator[Response]:
        check_score_requests(requests)
        return self._run(list(requests))

    # ---- machinery -----------------------------------------------------------------------
    def _safe_prepare(self, request: Request, index: int) -> Prepared:
        try:
            p = self.prepare(request, index)
        except Exception as exc:  # one bad item (unreadable image, ...) never stops the run
            log.warning("item %s: preparation failed: %s", request.id, exc)
            return Prepared(request, index, 0, error=f"{type(exc).__name__}: {exc}")
        if p.index != index or p.request is not request:
            raise RuntimeError("prepare() must return the request and index it was given")
        over = self._over_budget(p)
        if over:
            log.warning("item %s: %s", request.id, over)
            return Prepared(request, index, 0, meta=dict(p.meta), error=over)
        return p

    def _over_budget(self, p: Prepared) -> str | None:
        if not self.max_context:
            return None
        new = p.request.generation.max_new_tokens if isinstance(p.request, GenerateRequest) else 0
        if p.num_tokens + new <= self.max_context:
            return None
        return (
            f"prompt too long: {p.num_tokens} tokens + {new} new tokens is over the model's "
            f"maximum length of {self.max_context}"
        )

    def _run(self, requests: list[Request]) -> Iterator[Response]:
        if not requests:
            return
        window = max(1, self.options.batch_size * self.window_batches)
        starts = list(range(0, len(requests), window))
        workers = max(1, int(self.options.preprocess_workers or 1))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwenvl-prep")

        def submit(start: int) -> list[Future[Prepared]]:
            return [
                pool.submit(self._safe_prepare, requests[i], i)
                for i in range(start, min(start + window, len(requests)))
            ]

        try:
            pending = submit(starts[0])
            for n, _start in enumerate(starts):
                t0 = time.perf_counter()
                prepared = [f.result() for f in pending]
                # Prepare the next window while this one computes.
                pending = submit(starts[n + 1]) if n + 1 < len(starts) else []
                self.stats.seconds += time.perf_counter() - t0
                ok = []
                for p in prepared:
                    if p.error is not None:
                        self.stats.items += 1
                        self.stats.errors += 1
                        yield Response(p.request.id, meta=dict(p.meta), error=p.error)
                    else:
                        ok.append(p)
                plan = plan_batches(
                    ok, self.options.batch_size, self.options.max_batch_tokens, self.batch_key
                )
                for batch in plan:
                    yield from self._execute(batch)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _execute(self, batch: list[Prepared]) -> Iterator[Response]:
        """Run one batch; split it on OOM (or to the known-safe size) and isolate failures."""
        if len(batch) > 1 and self._oom_cap is not None and padded_tokens(batch) > self._oom_cap:
            half = (len(batch) + 1) // 2
            yield from self._execute(batch[:half])
            yield from self._execute(batch[half:])
            return
        t0 = time.perf_counter()
        try:
            responses = self._compute(batch)
        except Exception as exc:
            self.stats.seconds += time.perf_counter() - t0
            oom = is_oom(exc)
            if oom:
                _free_memory()
            if len(batch) == 1:
                p = batch[0]
                kind = "out of memory at batch size 1" if oom else f"{type(exc).__name__}"
                log.warning("item %s failed: %s: %s", p.request.id, kind, exc)
                self.stats.items += 1
                self.stats.errors += 1
                p.inputs = None
                yield Response(p.request.id, meta=dict(p.meta), error=f"{kind}: {exc}")
                return
            if oom:
                self.stats.oom_retries += 1
                cap = padded_tokens(batch) // 2
                self._oom_cap = cap if self._oom_cap is None else min(self._oom_cap, cap)
                log.warning("out of memory on a batch of %d; retrying in halves", len(batch))
            else:
                # Find the failing item instead of failing the whole batch.
                log.warning("batch of %d failed (%r); isolating the item", len(batch), exc)
            half = (len(batch) + 1) // 2
            yield from self._execute(batch[:half])
            yield from self._execute(batch[half:])
            return
        self.stats.seconds += time.perf_counter() - t0
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.prompt_tokens += sum(p.num_tokens for p in batch)
        for p in batch:
            p.inputs = None  # free pixel tensors early
        yield from responses

    def _compute(self, batch: list[Prepared]) -> list[Response]:
        first = batch[0].request
        if isinstance(first, GenerateRequest):
            outs = self.generate_batch(batch, first.generation)
            if len(outs) != len(batch):
                raise RuntimeError(f"generate_batch returned {len(outs)} outputs for {len(batch)}")
            self.stats.new_tokens += sum(o.new_tokens for o in outs)
            return [
                Response(p.request.id, text=o.text, meta={**p.meta, **o.meta})
                for p, o in zip(batch, outs, strict=True)
            ]
        scores = self.score_batch(batch)
        if len(scores) != len(batch):
            raise RuntimeError(f"score_batch returned {len(scores)} results for {len(batch)}")
        out = []
        for p, s in zip(batch, scores, strict=True):
            n_opt = len(p.request.options)  # type: ignore[union-attr]
            if len(s) != n_opt:
                raise RuntimeError(f"score_batch returned {len(s)} scores for {n_opt} options")
            out.append(Response(p.request.id, options=tuple(s), meta=dict(p.meta)))
        return out
