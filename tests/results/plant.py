"""Planted run directories (results.json + predictions) with chosen scores, written the way
the harness writes them, for the table, compare and report tests."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qwenvl_eval import registry
from qwenvl_eval.model.families import FAMILIES


def paper_protocol(
    task: str, family: str = "qwen-vl", seed: int = 1234
) -> tuple[str, dict[str, Any]]:
    """The prompt hash and generation settings the paper's protocol gives `task` under the
    run's seed (a few-shot prompt depends on it; planted runs have seed 1234)."""
    t = registry.get_task(task)
    t.seed = seed
    info = FAMILIES[family].info
    return t.prompt_hash(info), asdict(t.generation_for(info))


def plant_run(
    run_dir: Path,
    *,
    model: str,
    family: str = "qwen-vl",
    metrics: dict[str, dict[str, float]] | None = None,
    items: dict[str, list[dict[str, Any]]] | None = None,
    limit: int | None = None,
    prompt_hash: dict[str, str] | None = None,
    generation: dict[str, dict[str, Any]] | None = None,
    backend: str = "hf-transformers",
    gen_kwargs: dict[str, Any] | None = None,
    model_extra: dict[str, Any] | None = None,
) -> Path:
    """`metrics`: task -> {metric: value} (first is the headline); `items`: task -> rows of
    {id, score, output, answer}. Tasks registered here get the paper's prompt hash and
    generation unless overridden."""
    metrics = dict(metrics or {})
    items = items or {}
    for task, rows in items.items():
        if task not in metrics:
            keys = list(rows[0]["score"])
            metrics[task] = {k: 100 * sum(r["score"][k] for r in rows) / len(rows) for k in keys}
    tasks = {}
    for task, values in metrics.items():
        try:
            p_hash, gen = paper_protocol(task, family if family in FAMILIES else "qwen-vl")
        except Exception:
            p_hash, gen = "0" * 16, {"max_new_tokens": 10}
        p_hash = (prompt_hash or {}).get(task, p_hash)
        gen = (generation or {}).get(task, gen)
        n = len(items.get(task, [])) or 100
        tasks[task] = {
            "task": task,
            "metrics": values,
            "counts": {"items": n, "errors": 0, "resumed": 0},
            "prompt_hash": p_hash,
            "generation": gen,
            "notes": [],
            "submission_file": None,
            "headline": next(iter(values), None),
        }
    results = {
        "schema_version": 1,
        "created": "2026-11-30T12:00:00+00:00",
        "config": {
            "model": model,
            "tasks": list(tasks),
            "data_dir": "builtin",
            "limit": limit,
            "seed": 1234,
            "gen_kwargs": gen_kwargs or {},
        },
        "model": {"spec": model, "family": family, "backend": backend, "dtype": "bf16"}
        | (model_extra or {}),
        "environment": {"harness_version": "0.1.0"},
        "seeds": {"seed": 1234},
        "throughput": {},
        "tasks": tasks,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    for task, rows in items.items():
        lines = []
        for r in rows:
            rec = {
                "id": r["id"],
                "prompt_hash": "h",
                "output": r.get("output", ""),
                "answer": r.get("answer", r.get("output", "")),
                "score": r["score"],
            }
            lines.append(json.dumps(rec) + "\n")
        (run_dir / f"{task}.predictions.jsonl").write_text("".join(lines))
    return run_dir


REAL_TASKS = ("vqav2", "refcoco_val", "scienceqa_img", "flickr30k")


def real_run(out_dir: Path, *, limit: int = 16) -> Path:
    """A real run of the tiny model on the bundled data (the CLI in a subprocess, as a user
    runs it): results.json and predictions written by the harness itself."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "qwenvl_eval", "run", "--model", "tiny-qwen2-vl"]
    cmd += ["--tasks", ",".join(REAL_TASKS), "--data-dir", "builtin", "--limit", str(limit)]
    done = subprocess.run(
        [*cmd, "--output-dir", str(out_dir)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = out_dir.iterdir()
    return run_dir


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def edit_predictions(run_dir: Path, task: str, edit) -> None:
    """Rewrites each line of the task's predictions as `edit(index, record)` returns it."""
    path = run_dir / f"{task}.predictions.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(edit(i, r)) + "\n" for i, r in enumerate(rows)))


def edit_results(run_dir: Path, edit) -> None:
    path = run_dir / "results.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def plant_right(run_dir: Path, task: str, keys: tuple[str, ...], which) -> None:
    """Plants right answers (score 1 on `keys`) on the items whose index is in `which`."""

    def edit(i: int, r: dict) -> dict:
        if i in which:
            r["score"] |= {k: 1.0 for k in keys}
            r["output"] = r["answer"] = "planted right answer"
        return r

    edit_predictions(run_dir, task, edit)
