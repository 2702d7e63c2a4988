"""Every registered task, end to end on the real tiny models and the bundled mini data."""

from __future__ import annotations

import pytest

from qwenvl_eval import registry
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.loader import load_runner
from qwenvl_eval.model.presets import resolve_model
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.locate import builtin_root

LIMIT = 2
TASKS = registry.task_names()
_runners: dict[str, object] = {}


def runner_for(preset: str):
    if preset not in _runners:
        _runners[preset] = load_runner(
            resolve_model(preset), RunnerOptions(device="cpu", dtype="fp32", batch_size=4)
        )
    return _runners[preset]


def run_task(preset: str, name: str, tmp_path):
    runner = runner_for(preset)
    run = prepare_task(name, builtin_root(), runner.family.info, limit=LIMIT, seed=3)
    (result,) = evaluate([run], runner, PredictionStore(tmp_path))
    return run, result


def check(run, result, tmp_path) -> None:
    assert result.counts["items"] == LIMIT
    assert result.counts["errors"] == 0, tmp_path / f"{run.task.name}.predictions.jsonl"
    if result.submission_file:
        assert (tmp_path / result.submission_file).exists()
        assert result.metrics == {}
    else:
        assert set(run.task.metrics) <= set(result.metrics)
        for value in result.metrics.values():
            assert value == value  # not NaN


@pytest.mark.parametrize("name", TASKS)
def test_task_on_tiny_qwen2_vl(name, tmp_path):
    run, result = run_task("tiny-qwen2-vl", name, tmp_path)
    check(run, result, tmp_path)


@pytest.mark.parametrize("name", TASKS)
def test_task_on_tiny_qwen_vl(name, tmp_path):
    run, result = run_task("tiny-qwen-vl", name, tmp_path)
    check(run, result, tmp_path)


@pytest.mark.parametrize("preset", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
@pytest.mark.parametrize("name", ["vqav2", "refcoco_val", "scienceqa_img"])
def test_other_families_on_core_tasks(preset, name, tmp_path):
    run, result = run_task(preset, name, tmp_path)
    check(run, result, tmp_path)
