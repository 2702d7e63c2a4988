"""The evaluator: task -> documents -> requests -> runner -> scores -> results.

It knows no task and no model: it calls the task declaration for everything benchmark-
specific and the runner interface for everything model-specific, and hands each answer to
the predictions store the moment it arrives.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from . import registry
from .errors import RunFailed, UserError
from .judge import Judge, judge_items
from .model.base import Runner
from .results.store import PredictionStore
from .tasks.base import Aggregate, Task
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

log = logging.getLogger(__name__)


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
    """One task's documents and requests, built before any model work, with everything the
    results say about them that is known by then."""

    task: Task
    docs: list[Document]
    requests: list[Request]
    prompt_hash: str
    limited: bool = False  # --limit cut the split short
    data: dict[str, Any] | None = None  # what was read (the split's `info`), for results.json
    notes: list[str] = field(default_factory=list)  # the task's notes for this run
    # Every item id of the split, --limit or not: a saved answer to any other id is set aside.
    dataset_ids: frozenset[str] | None = None
    # The optional LLM judge asked, at scoring time, about answers the task's rules cannot
    # read (--judge-*); None: rules only, nothing is sent.
    judge: Judge | None = None
    by_id: dict[str, Document] = field(init=False)
    # Request fingerprints, computed (and so validated) before any model loads; the one
    # place they are kept.
    fingerprints: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {d.id: d for d in self.docs}
        self.fingerprints = {r.id: _fingerprint(self.task.name, r) for r in self.requests}
        if len(self.by_id) != len(self.docs):
            seen: set[str] = set()
            dup = next(d.id for d in self.docs if d.id in seen or seen.add(d.id))
            raise UserError(f"task {self.task.name!r}: duplicate item id {dup!r} in its data")


def _bad_text(text: str) -> str | None:
    """Where a string cannot be written as UTF-8 (a lone surrogate), in words."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{text[exc.start]!r} at character {exc.start} is not valid Unicode"
    return None


def _fingerprint(task: str, request: Request) -> str:
    """The request's fingerprint; a request that cannot be hashed or stored (a lone surrogate
    in the question, say) is a data error named by task and item, found before model load."""
    from .types import Text

    problems = [("id", _bad_text(request.id))]
    problems += [("prompt", _bad_text(p.text)) for p in request.parts if isinstance(p, Text)]
    problems += [("options", _bad_text(o)) for o in getattr(request, "options", ())]
    for what, why in problems:
        if why:
            raise UserError(f"task {task!r}, item {request.id!r}, {what}: {why}")
    try:
        return request.fingerprint()
    except (TypeError, ValueError) as exc:
        raise UserError(f"task {task!r}, item {request.id!r}: bad request ({exc})") from None


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
    item_set: str = "all",
    judge: Judge | None = None,
) -> TaskRun:
    """Load a task's split and build its requests (no model yet). Everything the run decides
    (layout, seed, generation overrides) is passed to the task, which is never written to."""
    from .itemsets import select_items

    task = registry.get_task(name)
    split = task.load(data_root, data_layout)
    docs = split.docs
    if not docs:
        raise UserError(
            f"task {name!r}: no items in its data under {data_root}; nothing to evaluate"
        )
    # Every id of the split: answers outside --item-set or --limit are kept, not set aside.
    dataset_ids = frozenset(d.id for d in docs)
    docs = select_items(name, docs, item_set)  # before --limit: the first N of that set
    limited = limit is not None and len(docs) > limit
    if limit is not None:
        docs = docs[:limit]
    try:
        requests = [
            task.request(d, family, seed=seed, pool=split.pool, overrides=gen_overrides)
            for d in docs
        ]
        prompt_hash = task.prompt_hash(family, gen_overrides, seed=seed)
    except KeyError as exc:
        raise UserError(f"--gen-kwargs: {exc.args[0]}") from None
    gen = next((r.generation for r in requests if isinstance(r, GenerateRequest)), None)
    if gen is not None and gen.min_new_tokens > gen.max_new_tokens:
        raise UserError(
            f"task {name!r}: min_new_tokens {gen.min_new_tokens} is above max_new_tokens "
            f"{gen.max_new_tokens}; set both with --gen-kwargs"
        )
    notes = task.notes(limited, seed)
    return TaskRun(
        task, docs, requests, prompt_hash, limited, split.info, notes, dataset_ids, judge
    )


def prepare_saved_task(
    results: dict[str, Any], task: str, data_dir: str | None = None, judge: Judge | None = None
) -> TaskRun:
    """A task of a finished run prepared again as the run prepared it (its data root and
    layout, seed, generation overrides, and the task's own item count: tasks merged in from
    earlier runs may have had another --limit), for `rescore` and `report`."""
    from .model.families import get_family
    from .tasks.data.locate import resolve_data_root

    config = results["config"]
    root = resolve_data_root(data_dir if data_dir is not None else config.get("data_dir"))
    return prepare_task(
        task,
        root,
        get_family(results["model"]["family"]).info,
        limit=_task_limit(results["tasks"].get(task), config.get("limit")),
        seed=config.get("seed") or 0,
        gen_overrides=config.get("gen_kwargs") or {},
        data_layout=config.get("data_layout", "auto"),
        item_set=config.get("item_set") or "all",
        judge=judge,
    )


def _task_limit(entry: Any, default: int | None) -> int | None:
    try:
        return int(entry["counts"]["items"])
    except (KeyError, TypeError, ValueError):
        return default


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
        request_hash=run.fingerprints[request.id],  # computed once, before the model loaded
        output=response.text,
        answer=scored.answer,
        score=scored.scores,
        error=error,
        extra=extra,
    )


@dataclass
class FailureBudget:
    """`--max-failures`: the run stops once more items than `limit` failed in it."""

    limit: int | None = None
    spec: str | None = None
    failed: int = 0
    last: str = ""

    def record(self, item: ItemResult, task: str, store: PredictionStore) -> None:
        if item.error is None:
            return
        self.failed += 1
        self.last = f"{task}, item {item.id}: {item.error}"
        if self.limit is not None and self.failed > self.limit:
            raise RunFailed(
                f"stopped after {self.failed} failed items (--max-failures {self.spec}); "
                f"last: {self.last[:300]}; the answers so far are kept in {store.run_dir}: "
                "fix the cause and run the same command again to resume"
            )


def evaluate_task(
    run: TaskRun,
    runner: Runner,
    store: PredictionStore,
    progress: Progress,
    budget: FailureBudget | None = None,
    share: Callable[[str, list[Request]], list[Request]] | None = None,
    retry_failed: bool = True,
) -> TaskResult | None:
    family = runner.family.info
    name = run.task.name
    budget = budget or FailureBudget()
    done = store.load(name)
    requests_by_id = {r.id: r for r in run.requests}
    # Resume only answers to the very same request (prompt, images, generation settings);
    # failed items are tried again (the cause may be fixed: a broken image replaced), unless
    # they were answered moments ago by this very run (the data-parallel merge).
    reused = {
        i: item
        for i, item in done.items()
        if i in requests_by_id
        and item.request_hash == run.fingerprints[i]
        and (item.error is None or not retry_failed)
    }
    stale = sum(
        1
        for i, it in done.items()
        if i in requests_by_id and it.request_hash != run.fingerprints[i]
    )
    if stale:
        log.warning(
            "%s: %d saved answer(s) were made for another prompt or generation setting; "
            "they are computed again",
            store.predictions_path(name),
            stale,
        )
    todo = [r for r in run.requests if r.id not in reused]
    if share is not None:  # a data-parallel rank answers its part only (parallel.py)
        todo = share(name, todo)
    progress.start(name, total=len(run.requests), done=len(reused))
    fresh: dict[str, ItemResult] = {}
    for response in _answer(runner, todo):
        item = score_item(run, requests_by_id[response.id], response, family)
        store.append(name, item)
        fresh[item.id] = item
        progress.advance(name, 1, runner.stats.as_dict())
        budget.record(item, name, store)
    progress.finish(name)
    if share is not None:  # rank 0 merges and scores once every rank is done
        return None

    items = [fresh.get(d.id) or reused[d.id] for d in run.docs]
    return conclude(run, items, store, resumed=len(reused), notes=runner.notes(run.requests))


def conclude(
    run: TaskRun,
    items: list[ItemResult],
    store: PredictionStore,
    *,
    resumed: int,
    notes: Sequence[str] = (),
) -> TaskResult:
    """The task's result from all its items: aggregated (or written as a submission file),
    and the items, with any scores only the whole set gives, written in item order.
    `notes`: the runner's, after the task's own."""
    task = run.task
    submission = task.submission(items, run.by_id)
    submission_file = None
    judge_notes: list[str] = []
    if submission is not None:
        submission_file = store.write_submission(task.name, submission).name
        summary = Aggregate({})
    else:
        items, judge_notes = judge_items(task, items, run.by_id, run.judge, store)
        summary = task.aggregate(items, run.by_id)
    store.finalize(
        task.name, with_item_scores(items, summary.item_scores), dataset_ids=run.dataset_ids
    )
    errors = sum(1 for it in items if it.error)
    gen = (
        run.requests[0].generation
        if run.requests and isinstance(run.requests[0], GenerateRequest)
        else None
    )
    return TaskResult(
        task=task.name,
        metrics=summary.metrics,
        counts={"items": len(items), "errors": errors, "resumed": resumed},
        prompt_hash=run.prompt_hash,
        generation=asdict(gen) if gen else None,
        notes=[*run.notes, *summary.notes, *judge_notes, *notes],
        submission_file=submission_file,
        headline=task.metrics[0] if task.metrics else None,
        data=run.data,
        metric_meanings=task.metric_meanings(summary.metrics),
    )


def with_item_scores(
    items: list[ItemResult], scores: dict[str, dict[str, float]]
) -> list[ItemResult]:
    """`items` with the per-item scores an aggregate added (new items; the given ones are
    left as they were)."""
    return [
        replace(it, score={**it.score, **scores[it.id]}) if it.id in scores else it for it in items
    ]


def evaluate(
    runs: list[TaskRun],
    runner: Runner,
    store: PredictionStore,
    progress: Progress | None = None,
    budget: FailureBudget | None = None,
    retry_failed: bool = True,
) -> list[TaskResult]:
    progress = progress or NullProgress()
    budget = budget or FailureBudget()
    return [
        evaluate_task(run, runner, store, progress, budget, retry_failed=retry_failed)
        for run in runs
    ]


def check_supported(runs: list[TaskRun], runner: Runner) -> None:
    """Refuse, before any request, tasks the backend cannot answer (option scoring without
    log-probabilities), naming the generation variant to run instead."""
    if runner.supports_option_scoring:
        return
    for run in runs:
        if any(isinstance(r, ScoreRequest) for r in run.requests):
            name = run.task.name
            variant = f"{name}_gen"
            hint = (
                f"use {variant} (the same questions answered by generation) instead"
                if variant in registry.task_names()
                else "no generation variant of it is registered"
            )
            backend = runner.provenance().get("backend", type(runner).__name__)
            raise UserError(
                f"task {name!r} scores options by log-probability, which the {backend} backend "
                f"cannot compute (the server returns no prompt log-probs); {hint}"
            )


def rescore_task(run: TaskRun, store: PredictionStore, family: FamilyInfo) -> TaskResult:
    """Score saved outputs again with the current task code: no model, no GPU. Items whose
    request changed since they were answered are refused, not silently mixed."""
    saved = store.load(run.task.name, strict=True)  # no model to recompute a bad line
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
        if old.request_hash != run.fingerprints[doc.id]:
            raise UserError(
                f"{store.predictions_path(run.task.name)}, item {doc.id}: saved for another "
                f"prompt or generation setting (prompt_hash {old.request_hash})"
            )
        meta = dict(old.extra.get("meta") or {})
        response = Response(id=doc.id, text=old.output, meta=meta, error=old.error)
        if old.error is None and old.output is None and "options" in old.extra:
            response = Response(id=doc.id, options=_options_from(old.extra["options"]), meta=meta)
        items.append(score_item(run, request, response, family))
    return conclude(run, items, store, resumed=len(items))


def _options_from(rows: list[dict[str, Any]]):
    from .types import OptionScore

    return tuple(OptionScore(**r) for r in rows)
