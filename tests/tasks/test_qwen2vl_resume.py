"""Resume holds for the Qwen2-VL report's tasks as for the paper's: a run killed part way
(its predictions file cut after some lines, as a kill leaves it) and run again computes only
the missing items and ends with the same saved answers, per-item scores and metrics as an
uninterrupted run, on the real tiny Qwen2-VL and the bundled mini sets."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from qwenvl_eval import registry
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.loader import load_runner
from qwenvl_eval.model.presets import resolve_model
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.locate import builtin_root

LIMIT = 4
KEPT = 2  # lines left by the "kill"
TASKS = registry.resolve(["qwen2vl-image"])
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


@pytest.fixture(scope="module")
def runner():
    options = RunnerOptions(device="cpu", dtype="fp32", batch_size=4)
    return load_runner(resolve_model("tiny-qwen2-vl"), options)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _saved(lines: list[dict]) -> dict[str, tuple]:
    return {d["id"]: (d["output"], d["answer"], d["score"]) for d in lines}


@pytest.mark.parametrize("name", TASKS)
def test_a_killed_run_resumes_to_the_uninterrupted_result(runner, name, tmp_path):
    def prepared():
        return prepare_task(
            name, builtin_root(), runner.family.info, limit=LIMIT, seed=3, gen_overrides=SHORT
        )

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
