"""results.json and results.md for one run."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..types import TaskResult
from .atomic import write_json_atomic, write_text_atomic
from .tables import run_table

SCHEMA_VERSION = 1


def build_results(
    *,
    config: dict[str, Any],
    model: dict[str, Any],
    environment: dict[str, Any],
    runner_stats: dict[str, Any],
    tasks: list[TaskResult],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "model": model,
        "environment": environment,
        "seeds": {"seed": config.get("seed")},
        "throughput": runner_stats,
        "tasks": {t.task: asdict(t) for t in tasks},
    }


def write_results(run_dir: Path, results: dict[str, Any]) -> tuple[Path, Path]:
    json_path = run_dir / "results.json"
    md_path = run_dir / "results.md"
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
