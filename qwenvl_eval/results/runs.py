"""The one reader of run directories: `table`, `compare` and `report` see runs only through
`load_run`. It validates results.json against the packaged JSON Schema, upgrades older
versions in memory, and refuses what it cannot read with one line naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..types import ItemResult
from .store import PredictionStore

# The version this reader reads natively; older ones are upgraded by `_upgrade`.
CURRENT_VERSION = 1


@cache
def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (package data `results/data/results.schema.json`)."""
    return json.loads(files(__package__).joinpath("data/results.schema.json").read_text())


@dataclass
class Run:
    """One run directory as the table, compare and report commands see it."""

    path: Path  # the run directory
    results: dict[str, Any]
    _items: dict[str, list[ItemResult]] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """The model as the user named it; a local checkpoint by its folder name."""
        spec = str(self.results["config"]["model"])
        return Path(spec).name if spec.startswith(("/", ".", "~")) else spec

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.results["tasks"]

    @property
    def family(self) -> str:
        return str(self.results["model"]["family"])

    @property
    def limit(self) -> int | None:
        return self.results["config"].get("limit")

    def headline(self, task: str) -> str | None:
        r = self.tasks[task]
        return r.get("headline") or next(iter(r["metrics"]), None)

    def items(self, task: str) -> list[ItemResult]:
        """The task's saved predictions, read only (a torn last line, left by a killed
        run, is skipped; any other bad line is an error naming the file and line)."""
        if task not in self._items:
            self._items[task] = read_predictions(PredictionStore(self.path).predictions_path(task))
        return self._items[task]


def read_predictions(path: Path) -> list[ItemResult]:
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        raise UserError(f"{path}: predictions file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: unreadable predictions file ({exc})") from None
    items = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            items.append(ItemResult.from_json(json.loads(raw)))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            if n == len(lines):  # no newline after it: the line a killed run was writing
                break
            raise UserError(f"{path}, line {n}: not a prediction record") from None
    return items


def load_run(path: Path) -> Run:
    """A run directory (or its results.json). Raises UserError with one line on anything
    it cannot read: missing, not JSON, a newer schema version, a field of the wrong type."""
    path = Path(path)
    json_path = path / "results.json" if path.is_dir() else path
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
    data = _upgrade(json_path, data)
    _validate(json_path, data)
    return Run(json_path.parent, data)


def _upgrade(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or "tasks" not in data:
        raise UserError(f"{path}: not a qwenvl-eval results file (no 'tasks' object)")
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise UserError(f"{path}: field 'schema_version' missing or not an integer")
    if version > CURRENT_VERSION:
        raise UserError(
            f"{path}: schema_version {version} was written by a newer qwenvl-eval; this one "
            f"reads versions up to {CURRENT_VERSION}: upgrade qwenvl-eval"
        )
    if version < 1:
        raise UserError(f"{path}: schema_version {version} is not a version qwenvl-eval wrote")
    # Version 1 files written before tasks recorded their headline metric: the first metric
    # is the headline (the order the task declares them).
    for task in data["tasks"].values() if isinstance(data["tasks"], dict) else ():
        if isinstance(task, dict) and "headline" not in task:
            task["headline"] = next(iter(task.get("metrics") or {}), None)
    return data


def _validate(path: Path, data: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(results_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UserError(f"{path}: field {where}: {error.message}")
