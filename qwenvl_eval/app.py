"""One evaluation run from a RunConfig: resolve, prepare every task (so data mistakes show
before the model loads), load the model, evaluate, write the results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import registry
from .config import RunConfig, output_affecting, run_dir_name
from .evaluator import Progress, evaluate, prepare_task, seed_everything
from .model.base import RunnerOptions
from .model.loader import load_runner
from .model.presets import family_of, resolve_model
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
    )


def run(config: RunConfig, progress: Progress | None = None) -> RunOutcome:
    seed_everything(config.seed)
    names = registry.resolve(config.tasks)
    data_root = resolve_data_root(config.data_dir)
    family = family_of(config.model, config.family).info
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
    model = resolve_model(config.model, config.family)

    runner = load_runner(model, runner_options(config))
    try:
        prov = runner.provenance()
        fingerprint = output_affecting(
            config, model.revision, str(model.path), str(prov.get("dtype")), str(prov.get("device"))
        )
        store = PredictionStore(Path(config.output_dir) / run_dir_name(config.model, fingerprint))
        store.check_fingerprint(fingerprint, resume=config.resume)
        if not config.resume:
            for n in names:
                store.predictions_path(n).unlink(missing_ok=True)
        task_results = evaluate(runs, runner, store, progress)
        results = build_results(
            config=config.to_json(),
            model={
                "spec": model.spec,
                "path": str(model.path),
                "revision": model.revision,
                "preset": model.preset,
                "family": model.family.name,
                **prov,
            },
            environment=environment(),
            runner_stats=runner.stats.as_dict(),
            tasks=task_results,
        )
        json_path, md_path = write_results(store.run_dir, results)
    finally:
        runner.close()
    return RunOutcome(store.run_dir, results, json_path, md_path)


def rescore(run_dir: Path, data_dir: str | None = None) -> RunOutcome:
    """Re-score a finished run's saved outputs with the current task and metric code."""
    from .errors import UserError
    from .evaluator import rescore_task
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
    data_root = resolve_data_root(data_dir if data_dir is not None else config["data_dir"])
    store = PredictionStore(run_dir)
    runs = [
        prepare_task(
            n,
            data_root,
            family,
            limit=config.get("limit"),
            seed=config["seed"],
            gen_overrides=config.get("gen_kwargs") or {},
            data_layout=config.get("data_layout", "auto"),
        )
        for n in previous["tasks"]
    ]
    task_results = [rescore_task(r, store, family) for r in runs]
    results = build_results(
        config=config,
        model=previous["model"],
        environment=environment() | {"rescored_from": previous.get("environment")},
        runner_stats=previous.get("throughput", {}),
        tasks=task_results,
    )
    json_path, md_path = write_results(run_dir, results)
    return RunOutcome(run_dir, results, json_path, md_path)
