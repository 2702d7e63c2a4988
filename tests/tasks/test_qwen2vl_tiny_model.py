"""The Qwen2-VL report's tasks on the real tiny Qwen2-VL and the bundled mini sets, as the
paper's tasks are held: batch size does not change any answer or score (batch 1 vs 3), and a
run killed part way (its predictions file cut after some lines, as a kill leaves it) and run
again computes only the missing items and ends with the same saved answers, per-item scores
and metrics as an uninterrupted run."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from qwenvl_eval import registry
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.model.loader import load_runner
from qwenvl_eval.model.presets import resolve_model
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.locate import builtin_root

LIMIT = 4
KEPT = 2  # lines left by the "kill"
# The report's group and every MMBench variant (V1.1 CN is outside the group).
TASKS = list(dict.fromkeys(registry.resolve(["qwen2vl-image", "mmbench"])))
# The tiny random model never stops on its own: a short budget keeps this test quick while
# answers stay long enough to differ from item to item.
SHORT = {"max_new_tokens": 12}


class Counting:
    """The real runner, counting the requests it is asked to answer."""

    def __init__(self, runner) -> None:
        self._runner = runner
        self.asked: list[str] = []

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def generate(self, requests: Sequence) -> Iterator:
        self.asked += [r.id for r in requests]
        return self._runner.generate(requests)

    def score_options(self, requests: Sequence) -> Iterator:
        self.asked += [r.id for r in requests]
        return self._runner.score_options(requests)


_RUNNERS: dict[int, object] = {}


def _tiny(batch_size: int):
    if batch_size not in _RUNNERS:
        options = RunnerOptions(device="cpu", dtype="fp32", batch_size=batch_size)
        _RUNNERS[batch_size] = load_runner(resolve_model("tiny-qwen2-vl"), options)
    return _RUNNERS[batch_size]


def _prepared(name: str, limit: int):
    return prepare_task(
        name, builtin_root(), QWEN2_VL.info, limit=limit, seed=3, gen_overrides=SHORT
    )


@pytest.mark.parametrize("name", TASKS)
def test_batch_size_does_not_change_answers(name, tmp_path):
    def run(batch_size):
        store = PredictionStore(tmp_path / f"b{batch_size}")
        (result,) = evaluate([_prepared(name, 6)], _tiny(batch_size), store)
        return result, {i: r.output for i, r in store.load(name).items()}

    one, out_one = run(1)
    three, out_three = run(3)
    assert one.counts["errors"] == 0 and one.counts["items"] == 6
    assert out_one == out_three and all(isinstance(t, str) for t in out_one.values())
    assert one.metrics == three.metrics
    assert set(registry.get_task(name).metrics) <= set(one.metrics)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _saved(lines: list[dict]) -> dict[str, tuple]:
    return {d["id"]: (d["output"], d["answer"], d["score"]) for d in lines}


@pytest.mark.parametrize("name", TASKS)
def test_a_killed_run_resumes_to_the_uninterrupted_result(name, tmp_path):
    runner = _tiny(4)

    def prepared():
        return _prepared(name, LIMIT)

    whole = tmp_path / "whole"
    (reference,) = evaluate([prepared()], runner, PredictionStore(whole))
    ref_lines = _lines(whole / f"{name}.predictions.jsonl")
    assert len(ref_lines) == LIMIT

    killed = tmp_path / "killed"
    killed.mkdir()
    kept = ref_lines[:KEPT]
    (killed / f"{name}.predictions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept))
    counting = Counting(runner)
    (resumed,) = evaluate([prepared()], counting, PredictionStore(killed))

    assert resumed.counts["resumed"] == KEPT
    assert counting.asked and not {a.split("#")[0] for a in counting.asked} & {
        d["id"] for d in kept
    }
    assert _saved(_lines(killed / f"{name}.predictions.jsonl")) == _saved(ref_lines)
    assert resumed.metrics == reference.metrics
