"""The evaluator: task -> documents -> requests -> runner -> scores -> results.

It knows no task and no model: it calls the task declaration for everything benchmark-
specific and the runner interface for everything model-specific, and hands each answer to
the predictions store the moment it arrives.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import registry
from .errors import UserError
from .model.base import Runner
from .results.store import PredictionStore
from .tasks.base import Task
from .types import (
    Document,
    FamilyInfo,
    GenerateRequest,
    ItemResult,
    Request,
    Response,
    ScoreRequest,
    TaskResult,
)


class Progress(Protocol):
    def start(self, task: str, total: int, done: int) -> None: ...

    def advance(self, task: str, n: int, stats: dict[str, Any]) -> None: ...

    def finish(self, task: str) -> None: ...


class NullProgress:
    def start(self, task: str, total: int, done: int) -> None:
        pass

    def advance(self, task: str, n: int, stats: dict[str, Any]) -> None:
        pass

    def finish(self, task: str) -> None:
        pass


@dataclass
class TaskRun:
    """One task's documents and requests, built before any model work."""

    task: Task
    docs: list[Document]
    requests: list[Request]
    prompt_hash: str
    limited: bool = False  # --limit cut the split short
    by_id: dict[str, Document] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {d.id: d for d in self.docs}
        if len(self.by_id) != len(self.docs):
            seen: set[str] = set()
            dup = next(d.id for d in self.docs if d.id in seen or seen.add(d.id))
            raise UserError(f"task {self.task.name!r}: duplicate item id {dup!r} in its data")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_task(
    name: str,
    data_root: Path,
    family: FamilyInfo,
    *,
    limit: int | None = None,
    seed: int = 0,
    gen_overrides: dict[str, Any] | None = None,
    data_layout: str = "auto",
) -> TaskRun:
    task = registry.get_task(name)
    task.seed = seed  # few-shot draws are seeded from (seed, task, item id)
    task.data_layout = data_layout
    docs = task.load(data_root)
    limited = limit is not None and len(docs) > limit
    if limit is not None:
        docs = docs[:limit]
    try:
        requests = [task.request(d, family, gen_overrides) for d in docs]
        prompt_hash = task.prompt_hash(family, gen_overrides)
    except KeyError as exc:
        raise UserError(f"--gen-kwargs: {exc.args[0]}") from None
    return TaskRun(task, docs, requests, prompt_hash, limited)


def _answer(runner: Runner, requests: Sequence[Request]) -> Iterator[Response]:
    gen = [r for r in requests if isinstance(r, GenerateRequest)]
    score = [r for r in requests if isinstance(r, ScoreRequest)]
    if gen:
        yield from runner.generate(gen)
    if score:
        yield from runner.score_options(score)


def score_item(
    run: TaskRun, request: Request, response: Response, family: FamilyInfo
) -> ItemResult:
    """Turn one response into one stored item. A scoring failure is recorded on the item
    (with zero scores), never raised: one bad item must not lose the run."""
    doc = run.by_id[response.id]
    error = response.error
    try:
        if error is None:
            scored = run.task.score(doc, response, family)
        else:
            scored = run.task.failed(doc, error)
    except Exception as exc:  # noqa: BLE001  (a task bug on one item)
        error = f"scoring failed: {type(exc).__name__}: {exc}"
        scored = run.task.failed(doc, error)
    extra = dict(scored.extra)
    if response.meta:
        extra["meta"] = response.meta
    if response.options is not None:
        extra["options"] = [asdict(o) for o in response.options]
    return ItemResult(
        id=response.id,
        prompt_hash=request.fingerprint(),
        output=response.text,
        answer=scored.answer,
        score=scored.scores,
        error=error,
        extra=extra,
    )


def evaluate_task(
    run: TaskRun,
    runner: Runner,
    store: PredictionStore,
    progress: Progress,
) -> TaskResult:
    family = runner.family.info
    name = run.task.name
    done = store.load(name)
    requests_by_id = {r.id: r for r in run.requests}
    # Resume only answers to the very same request (prompt, images, generation settings).
    reused = {
        i: item
        for i, item in done.items()
        if i in requests_by_id and item.prompt_hash == requests_by_id[i].fingerprint()
    }
    todo = [r for r in run.requests if r.id not in reused]
    progress.start(name, total=len(run.requests), done=len(reused))
    fresh: dict[str, ItemResult] = {}
    for response in _answer(runner, todo):
        item = score_item(run, requests_by_id[response.id], response, family)
        store.append(name, item)
        fresh[item.id] = item
        progress.advance(name, 1, runner.stats.as_dict())
    progress.finish(name)

    items = [fresh.get(d.id) or reused[d.id] for d in run.docs]
    result = summarise(run, items, store, resumed=len(reused))
    store.finalize(name, items)  # after aggregate: corpus metrics may add per-item scores
    return result


def summarise(
    run: TaskRun, items: list[ItemResult], store: PredictionStore, *, resumed: int
) -> TaskResult:
    task = run.task
    submission = task.submission(items, run.by_id)
    submission_file = None
    if submission is not None:
        submission_file = store.write_submission(task.name, submission).name
        metrics: dict[str, float] = {}
    else:
        metrics = task.aggregate(items, run.by_id)
    errors = sum(1 for it in items if it.error)
    gen = (
        run.requests[0].generation
        if run.requests and isinstance(run.requests[0], GenerateRequest)
        else None
    )
    return TaskResult(
        task=task.name,
        metrics=metrics,
        counts={"items": len(items), "errors": errors, "resumed": resumed},
        prompt_hash=run.prompt_hash,
        generation=asdict(gen) if gen else None,
        notes=task.notes(limited=run.limited),
        submission_file=submission_file,
        headline=task.metrics[0] if task.metrics else None,
        data=task.data_info,
    )


def evaluate(
    runs: list[TaskRun],
    runner: Runner,
    store: PredictionStore,
    progress: Progress | None = None,
) -> list[TaskResult]:
    progress = progress or NullProgress()
    return [evaluate_task(run, runner, store, progress) for run in runs]


def rescore_task(run: TaskRun, store: PredictionStore, family: FamilyInfo) -> TaskResult:
    """Score saved outputs again with the current task code: no model, no GPU. Items whose
    request changed since they were answered are refused, not silently mixed."""
    saved = store.load(run.task.name)
    requests_by_id = {r.id: r for r in run.requests}
    missing = [d.id for d in run.docs if d.id not in saved]
    if missing:
        raise UserError(
            f"{store.predictions_path(run.task.name)}: no saved answer for "
            f"{len(missing)} item(s), e.g. {missing[0]!r}; run the model first"
        )
    items = []
    for doc in run.docs:
        old = saved[doc.id]
        request = requests_by_id[doc.id]
        if old.prompt_hash != request.fingerprint():
            raise UserError(
                f"{store.predictions_path(run.task.name)}, item {doc.id}: saved for another "
                f"prompt or generation setting (prompt_hash {old.prompt_hash})"
            )
        meta = dict(old.extra.get("meta") or {})
        response = Response(id=doc.id, text=old.output, meta=meta, error=old.error)
        if old.error is None and old.output is None and "options" in old.extra:
            response = Response(id=doc.id, options=_options_from(old.extra["options"]), meta=meta)
        items.append(score_item(run, request, response, family))
    result = summarise(run, items, store, resumed=len(items))
    store.finalize(run.task.name, items)
    return result


def _options_from(rows: list[dict[str, Any]]):
    from .types import OptionScore

    return tuple(OptionScore(**r) for r in rows)
