"""One evaluation run from a RunConfig: resolve, prepare every task (so data mistakes show
before the model loads), load the model, evaluate, write the results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import registry
from .config import RunConfig, failure_limit, output_affecting, run_dir_name
from .errors import RunFailed, UserError, storage_error
from .evaluator import (
    FailureBudget,
    Progress,
    check_supported,
    prepare_task,
    seed_everything,
)
from .interrupt import Interrupted
from .model import backends
from .model.base import RunnerOptions
from .model.loader import load_runner
from .parallel import Ranks
from .results.provenance import environment
from .results.report import build_results, write_results
from .results.store import PredictionStore
from .tasks.data.locate import resolve_data_root


@dataclass
class RunOutcome:
    run_dir: Path
    results: dict[str, Any]
    results_json: Path
    results_md: Path
    primary: bool = True  # False on data-parallel ranks other than 0: rank 0 writes results


def runner_options(config: RunConfig) -> RunnerOptions:
    return RunnerOptions(
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        max_batch_tokens=config.max_batch_tokens,
        min_pixels=config.min_pixels,
        max_pixels=config.max_pixels,
        compile=config.compile,
        trust_remote_code=config.trust_remote_code,
        seed=config.seed,
        preprocess_workers=config.preprocess_workers,
        backend=config.backend,
        extra=dict(config.backend_options),
    )


def run(config: RunConfig, progress: Progress | None = None) -> RunOutcome:
    config.validate()
    ranks = Ranks.from_env()  # torchrun / accelerate launch: this process's part of the items
    seed_everything(config.seed)
    backends.check_options(config.backend, config.backend_options)
    names = registry.resolve(config.tasks)  # validate() refused an empty --tasks
    data_root = resolve_data_root(config.data_dir)
    family = backends.family(config.backend, config.model, config.family).info
    runs = [
        prepare_task(
            n,
            data_root,
            family,
            limit=config.limit,
            seed=config.seed,
            gen_overrides=config.gen_kwargs,
            data_layout=config.data_layout,
        )
        for n in names
    ]
    budget = FailureBudget(
        failure_limit(config.max_failures, sum(len(r.requests) for r in runs)),
        config.max_failures,
    )
    model = backends.resolve(config.backend, config.model, config.family)

    runner = load_runner(model, ranks.runner_options(runner_options(config)))
    check_supported(runs, runner)  # before any request: tasks this engine cannot answer
    store: PredictionStore | None = None
    try:
        prov = runner.provenance()
        fingerprint = output_affecting(
            config, model.revision, str(model.path), str(prov.get("dtype")), str(prov.get("device"))
        )
        store = ranks.store(Path(config.output_dir) / run_dir_name(config.model, fingerprint))
        # One writer per run directory; the ranks of one distributed run each hold their own.
        if ranks.is_main:
            store.lock()
        else:
            store.lock(f".lock-rank{ranks.rank}")
        ranks.barrier("run directory lock")
        store.check_fingerprint(fingerprint, resume=config.resume)
        if not config.resume:
            ranks.discard(store, names)  # the normal file and every rank file
        task_results = ranks.evaluate(runs, runner, store, progress, budget)
        if task_results is None:  # a data-parallel rank other than 0
            paths = store.run_dir / "results.json", store.run_dir / "results.md"
            return RunOutcome(store.run_dir, {}, *paths, primary=False)
        results = build_results(
            config=config.to_json(),
            model={
                "spec": model.spec,
                "path": str(model.path),
                "revision": model.revision,
                "preset": model.preset,
                "family": model.family.name,
                **backends.provenance(config.backend),
                **runner.provenance(),  # after the run: remote backends learn as they go
            },
            environment=environment() | ranks.describe(),
            runner_stats=runner.stats.as_dict(),
            tasks=task_results,
        )
        results = merge_previous_tasks(store, results)
        json_path, md_path = _write_results(store.run_dir, results)
        failed_everywhere = all(
            t.counts["errors"] == t.counts["items"] for t in task_results
        ) and any(t.counts["items"] for t in task_results)
        if failed_everywhere:
            raise RunFailed(
                f"every item failed ({sum(t.counts['errors'] for t in task_results)} items; "
                f"last: {budget.last[:300] or 'see the error field'}); results are in "
                f"{json_path}"
            )
    except Interrupted as exc:
        exc.run_dir = store.run_dir if store is not None else None
        raise
    finally:
        runner.close()
        if store is not None:
            store.close()
            store.unlock()
    return RunOutcome(store.run_dir, results, json_path, md_path)


def _write_results(run_dir: Path, results: dict[str, Any]) -> tuple[Path, Path]:
    try:
        return write_results(run_dir, results)
    except OSError as exc:
        raise storage_error(run_dir / "results.json", exc) from None


def merge_previous_tasks(store: PredictionStore, results: dict[str, Any]) -> dict[str, Any]:
    """A run on a subset of tasks keeps the other tasks' entries of the same run directory's
    results.json (their predictions are still there)."""
    path = store.run_dir / "results.json"
    if not store.same_run or not path.exists():
        return results
    try:
        previous = json.loads(path.read_text())
        old_tasks = previous["tasks"]
        if not isinstance(old_tasks, dict):
            raise TypeError("'tasks' is not an object")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        import logging

        logging.getLogger(__name__).warning(
            "%s: unreadable, its other tasks are not carried over (%s)", path, exc
        )
        return results
    return results | {"tasks": old_tasks | results["tasks"]}  # updated tasks keep their place


def rescore(run_dir: Path, data_dir: str | None = None) -> RunOutcome:
    """Re-score a finished run's saved outputs with the current task and metric code."""
    from .evaluator import prepare_saved_task, rescore_task
    from .model.families import get_family

    path = run_dir / "results.json"
    try:
        previous = json.loads(path.read_text())
        config = previous["config"]
        family = get_family(previous["model"]["family"]).info
    except FileNotFoundError:
        raise UserError(f"{path}: not found; expected a run directory") from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable results file ({exc})") from None
    store = PredictionStore(run_dir)
    runs = [prepare_saved_task(previous, n, data_dir) for n in previous["tasks"]]
    task_results = [rescore_task(r, store, family) for r in runs]
    results = build_results(
        config=config,
        model=previous["model"],
        environment=environment() | {"rescored_from": previous.get("environment")},
        runner_stats=previous.get("throughput", {}),
        tasks=task_results,
    )
    json_path, md_path = _write_results(run_dir, results)
    return RunOutcome(run_dir, results, json_path, md_path)
