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
from .judge import Judge, JudgeOptions
from .model import backends
from .model.loader import load_runner
from .parallel import Ranks
from .results.provenance import environment
from .results.results_file import ModelRecord, ResultsFile, write_results
from .results.rundir import RunDir
from .results.store import PredictionStore
from .tasks.data.locate import resolve_data_root


@dataclass
class RunOutcome:
    run_dir: Path
    results: dict[str, Any]
    results_json: Path
    results_md: Path
    primary: bool = True  # False on data-parallel ranks other than 0: rank 0 writes results


def run(config: RunConfig, progress: Progress | None = None) -> RunOutcome:
    config.validate()
    ranks = Ranks.from_env()  # torchrun / accelerate launch: this process's part of the items
    settings = config.runner
    seed_everything(settings.seed)
    names = registry.resolve(config.tasks)  # validate() refused an empty --tasks
    data_root = resolve_data_root(config.data_dir)
    family = backends.family(settings.backend, config.model, config.family).info
    judge = Judge(config.judge) if config.judge is not None else None
    runs = [
        prepare_task(
            n,
            data_root,
            family,
            limit=config.limit,
            seed=settings.seed,
            gen_overrides=config.gen_kwargs,
            data_layout=config.data_layout,
            item_set=config.item_set,
            judge=judge,
        )
        for n in names
    ]
    budget = FailureBudget(
        failure_limit(config.max_failures, sum(len(r.requests) for r in runs)),
        config.max_failures,
    )
    model = backends.resolve(settings.backend, config.model, config.family)
    weights = checkpoint_id(settings.backend, model.path)

    runner = load_runner(model, ranks.runner_options(settings))
    check_supported(runs, runner)  # before any request: tasks this engine cannot answer
    store: PredictionStore | None = None
    try:
        prov = runner.provenance()
        fingerprint = output_affecting(
            config, model.revision, str(model.path), str(prov.get("dtype")), str(prov.get("device"))
        )
        store = ranks.store(Path(config.output_dir) / run_dir_name(config.model, fingerprint))
        # One writer per run directory; the ranks of one distributed run each hold their own.
        store.lock(None if ranks.is_main else ranks.rank)
        ranks.barrier("run directory lock")
        store.check_fingerprint(fingerprint, resume=config.resume, weights_id=weights)
        if not config.resume:
            ranks.discard(store, names)  # the normal file and every rank file
        task_results = ranks.evaluate(runs, runner, store, progress, budget)
        if task_results is None:  # a data-parallel rank other than 0
            files = store.files
            return RunOutcome(
                store.run_dir, {}, files.results_json, files.results_md, primary=False
            )
        record = ModelRecord(
            spec=model.spec,
            path=str(model.path),
            revision=model.revision,
            preset=model.preset,
            family=model.family.name,
            weights_id=weights,
            # After the run: remote backends learn as they go.
            engine=backends.provenance(settings.backend) | runner.provenance(),
        )
        results = ResultsFile(
            config=config.to_json(),
            model=record.to_json(),
            environment=environment() | ranks.describe(),
            throughput=runner.stats.as_dict(),
            tasks=task_results,
        ).to_json()
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
        if judge is not None:
            judge.close()
        if store is not None:
            store.close()
            store.unlock()
    return RunOutcome(store.run_dir, results, json_path, md_path)


def checkpoint_id(backend: str, path: Path) -> str | None:
    """The content identity of the weights the engine loads (None for a served model):
    hashed before the load, which then reads the files from the page cache."""
    if not backends.get_backend(backend).local_weights:
        return None
    from .model.weights import weights_id

    return weights_id(Path(path))


def _write_results(run_dir: Path, results: dict[str, Any]) -> tuple[Path, Path]:
    try:
        return write_results(run_dir, results)
    except OSError as exc:
        raise storage_error(RunDir(run_dir).results_json, exc) from None


def merge_previous_tasks(store: PredictionStore, results: dict[str, Any]) -> dict[str, Any]:
    """A run on a subset of tasks keeps the other tasks' entries of the same run directory's
    results.json (their predictions are still there)."""
    path = store.files.results_json
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


def rescore(
    run_dir: Path, data_dir: str | None = None, judge_options: JudgeOptions | None = None
) -> RunOutcome:
    """Re-score a finished run's saved outputs with the current task and metric code (and
    the judge, if one is given: its replies saved in the run are reused, not asked again)."""
    from .evaluator import prepare_saved_task, rescore_task
    from .model.families import get_family
    from .results.runs import load_run

    # Read as table and compare read it: a newer schema_version is refused, never rewritten
    # as this version (which would drop the fields this version does not know).
    path = RunDir(run_dir).results_json
    previous = load_run(run_dir).results
    try:
        config = previous["config"]
        family = get_family(previous["model"]["family"]).info
    except (KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable results file ({exc})") from None
    store = PredictionStore(run_dir)
    judge = Judge(judge_options) if judge_options is not None else None
    runs = [prepare_saved_task(previous, n, data_dir, judge) for n in previous["tasks"]]
    try:
        task_results = [rescore_task(r, store, family) for r in runs]
    finally:
        if judge is not None:
            judge.close()
    if judge_options is not None:
        config = config | {"judge": judge_options.to_json()}
    else:
        config = {k: v for k, v in config.items() if k != "judge"}
    results = ResultsFile(
        config=config,
        model=previous["model"],
        environment=environment() | {"rescored_from": previous.get("environment")},
        throughput=previous.get("throughput", {}),
        tasks=task_results,
    ).to_json()
    json_path, md_path = _write_results(run_dir, results)
    return RunOutcome(run_dir, results, json_path, md_path)
