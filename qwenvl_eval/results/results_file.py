"""results.json, in one place: built from a typed `ResultsFile` (the run writes it, with
results.md beside it), and read back (`read_results_file`: older versions upgraded in
memory, then validated against the packaged JSON Schema). `runs` reads run directories
through it; nothing else spells results.json's fields when writing it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..semantics import MetricMeaning, declare_meanings
from ..types import TaskResult
from .atomic import write_json_atomic, write_text_atomic
from .rundir import RunDir
from .tables import run_table

# The version written, and the newest one read (older ones are upgraded by `upgrade`).
SCHEMA_VERSION = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class ModelRecord:
    """results.json's `model`: what was evaluated, and what the engine said about itself."""

    spec: str  # the model as the user named it
    path: str
    revision: str | None
    preset: str | None
    family: str
    weights_id: str | None  # the checkpoint's content (model/weights.py); None when served
    engine: dict[str, Any] = field(default_factory=dict)  # backend and runner provenance

    def to_json(self) -> dict[str, Any]:
        fixed = {k: v for k, v in asdict(self).items() if k != "engine"}
        return {**fixed, **self.engine}


@dataclass
class ResultsFile:
    """One run's results.json (schema_version SCHEMA_VERSION)."""

    config: dict[str, Any]
    model: dict[str, Any]  # a ModelRecord's JSON (rescore keeps the run's own)
    environment: dict[str, Any]
    throughput: dict[str, Any]  # the runner's stats
    tasks: list[TaskResult]
    created: str = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "config": self.config,
            "model": self.model,
            "environment": self.environment,
            "seeds": {"seed": self.config.get("seed")},
            "throughput": self.throughput,
            "tasks": {t.task: asdict(t) for t in self.tasks},
        }


def write_results(run_dir: Path, results: dict[str, Any]) -> tuple[Path, Path]:
    files_ = RunDir(run_dir)
    json_path, md_path = files_.results_json, files_.results_md
    write_json_atomic(json_path, results)
    header = (
        f"# {results['config']['model']}\n\n"
        f"- harness {results['environment']['harness_version']} "
        f"(commit {results['environment']['harness_commit']})\n"
        f"- dtype {results['model'].get('dtype')}, device {results['model'].get('device')}, "
        f"backend {results['model'].get('backend')}\n\n"
    )
    write_text_atomic(md_path, header + run_table(results) + "\n")
    return json_path, md_path


@cache
def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (package data `results/data/results.schema.json`)."""
    return json.loads(files(__package__).joinpath("data/results.schema.json").read_text())


def read_results_file(json_path: Path) -> dict[str, Any]:
    """results.json as this version reads it: upgraded in memory from older versions and
    validated against the JSON Schema. Raises UserError with one line naming the file on
    anything it cannot read: missing, not JSON, a newer schema version, a wrong field."""
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{json_path}: not found; expected a run directory with results.json"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{json_path}: unreadable results file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{json_path}: not a JSON file (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise UserError(f"{json_path}: not a results file (JSON nested too deeply)") from None
    data = upgrade(json_path, data)
    validate(json_path, data)
    return data


def upgrade(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or "tasks" not in data:
        raise UserError(f"{path}: not a qwenvl-eval results file (no 'tasks' object)")
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise UserError(f"{path}: field 'schema_version' missing or not an integer")
    if version > SCHEMA_VERSION:
        raise UserError(
            f"{path}: schema_version {version} was written by a newer qwenvl-eval; this one "
            f"reads versions up to {SCHEMA_VERSION}: upgrade qwenvl-eval"
        )
    if version < 1:
        raise UserError(f"{path}: schema_version {version} is not a version qwenvl-eval wrote")
    # Version 1 files written before tasks recorded their headline metric: the first metric
    # is the headline (the order the task declares them). Files written before tasks recorded
    # their metrics' meaning: the task's declaration today.
    for name, task in data["tasks"].items() if isinstance(data["tasks"], dict) else ():
        if isinstance(task, dict) and "headline" not in task:
            task["headline"] = next(iter(task.get("metrics") or {}), None)
        if isinstance(task, dict) and "metric_meanings" not in task:
            task["metric_meanings"] = {
                k: m.to_json() for k, m in _declared_meanings(name, task).items()
            }
    return data


def _declared_meanings(name: str, task: dict[str, Any]) -> dict[str, MetricMeaning]:
    from .. import registry

    metrics = task.get("metrics") if isinstance(task.get("metrics"), dict) else {}
    try:
        return registry.get_task(name).metric_meanings(metrics)
    except UserError:  # a plug-in task no longer installed: each metric its own item score
        return declare_meanings(metrics, metrics, {})


def validate(path: Path, data: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(results_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UserError(f"{path}: field {where}: {error.message}")
