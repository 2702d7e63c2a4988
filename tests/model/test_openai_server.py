"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (tests/openai_server.py:
chat completions answered by the project's transformers runner on the tiny Qwen2-VL; see its
docstring for why not `transformers serve`). Whole runs through `app.run`: the answers equal
the in-process backend's item for item; injected 500/429/timeouts are retried and counted; a
server killed mid-run leaves a run that resumes without losing or repeating an item; option
scoring is refused before any request; the API key never reaches the run's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.errors import UserError
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.openai_api import EndpointError
from tests.openai_server import FailingProxy, get_json, start_server, stop_server

SERVED = "tiny-qwen2-vl-served"
KEY_ENV = "QWENVL_TEST_API_KEY"
SECRET = "sk-test-0123456789-do-not-write"
LIMITS = {"vqav2": 10, "refcoco_val": 3, "scienceqa_img_gen": 4}


@pytest.fixture(scope="module")
def tiny_path() -> str:
    from qwenvl_eval.model.presets import resolve_model

    return str(resolve_model("tiny-qwen2-vl").path)


@pytest.fixture(scope="module")
def server(tiny_path):
    proc, port = start_server(tiny_path, SERVED, api_key=SECRET)
    yield port
    stop_server(proc)


def _config(out: Path, tasks: list[str], limit: int, **kw) -> RunConfig:
    return RunConfig(
        model="tiny-qwen2-vl",
        tasks=tasks,
        data_dir="builtin",
        limit=limit,
        output_dir=out,
        runner=RunnerOptions(seed=1234, **kw),
    )


def _api(out: Path, port: int, tasks: list[str], limit: int, **kw) -> RunConfig:
    options = {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_model": SERVED,
        "api_key_env": KEY_ENV,
        "api_min_tokens": True,
        "concurrency": 3,
        "max_retries": 2,
        **kw,
    }
    return _config(out, tasks, limit, backend="openai", backend_options=options)


def _items(run_dir: Path, task: str) -> list[dict]:
    path = run_dir / f"{task}.predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, list[dict]]:
    """The in-process transformers backend's answers on the same model, tasks and items."""
    out = tmp_path_factory.mktemp("hf")
    refs = {}
    for task, limit in LIMITS.items():
        outcome = app.run(_config(out, [task], limit, batch_size=4))
        assert outcome.results["model"]["backend"] == "hf-transformers"
        refs[task] = _items(outcome.run_dir, task)
    return refs


def _same_answers(got: list[dict], want: list[dict]) -> None:
    assert [i["id"] for i in got] == [i["id"] for i in want]
    for g, w in zip(got, want, strict=True):
        assert (g["prompt_hash"], g["output"], g["answer"], g["score"]) == (
            w["prompt_hash"],
            w["output"],
            w["answer"],
            w["score"],
        ), g["id"]
        assert g["extra"]["meta"]["prompt_tokens"] == w["extra"]["meta"]["prompt_tokens"]


def test_full_run_equals_the_in_process_backend(server, reference, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    before = get_json(server, "/stats")["completions"]
    outcome = None
    for task, limit in LIMITS.items():
        outcome = app.run(_api(tmp_path, server, [task], limit))
        _same_answers(_items(outcome.run_dir, task), reference[task])
        assert not any("not applied" in n for n in outcome.results["tasks"][task]["notes"])
    total = sum(LIMITS.values())
    stats = get_json(server, "/stats")
    assert stats["completions"] - before == total
    # Requests overlap, never more than --concurrency (3, the most any test here uses).
    assert 2 <= stats["max_in_flight"] <= 3

    model = outcome.results["model"]
    assert model["backend"] == "openai" and model["family"] == "qwen2-vl"
    assert model["base_url"] == f"http://127.0.0.1:{server}/v1"
    assert model["api_model"] == SERVED and model["response_models"] == [SERVED]
    assert model["server_model"]["id"] == SERVED
    assert model["client"] == "openai" and model["client_version"]
    assert model["api_key_env"] == KEY_ENV and model["retries"] == 0
    assert model["requests_sent"] == LIMITS["scienceqa_img_gen"]
    run_json = json.loads((outcome.run_dir / "run.json").read_text())
    assert run_json["backend_base_url"] == model["base_url"]
    assert run_json["backend_api_model"] == SERVED

    # The key was sent (the server accepts nothing else) and written nowhere.
    assert get_json(server, "/stats")["auth_failures"] == 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_what_the_server_cannot_apply_is_noted(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    outcome = app.run(_api(tmp_path, server, ["vqav2"], 2, api_min_tokens=False))
    notes = outcome.results["tasks"]["vqav2"]["notes"]
    assert any(n.startswith("min_new_tokens=1 not applied") for n in notes), notes
    # Another decoding request, another run directory.
    with_min = app.run(_api(tmp_path, server, ["vqav2"], 2))
    assert with_min.run_dir != outcome.run_dir


def test_option_scoring_is_refused_before_any_request(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    before = get_json(server, "/stats")["completions"]
    with pytest.raises(UserError, match="use scienceqa_img_gen") as err:
        app.run(_api(tmp_path, server, ["vqav2", "scienceqa_img"], 3))
    assert "'scienceqa_img' scores options by log-probability" in str(err.value)
    assert get_json(server, "/stats")["completions"] == before
    assert not list(tmp_path.rglob("*.predictions.jsonl"))


def test_wrong_key_and_unknown_model_fail_up_front(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with pytest.raises(EndpointError, match=f"refused the API key from \\${KEY_ENV}") as err:
        app.run(_api(tmp_path, server, ["vqav2"], 2))
    assert "sk-wrong" not in str(err.value)
    monkeypatch.setenv(KEY_ENV, SECRET)
    with pytest.raises(EndpointError, match=f"'nope' is not served \\(served: {SERVED}\\)"):
        app.run(_api(tmp_path, server, ["vqav2"], 2, api_model="nope"))
    assert not list(tmp_path.rglob("*.predictions.jsonl"))


def test_500_429_and_timeouts_are_retried(server, reference, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    plan = [500, 429, "stall", 503]
    with FailingProxy(server, plan, stall_s=10.0) as proxy:
        config = _api(
            tmp_path, proxy.port, ["vqav2"], 6, concurrency=2, max_retries=4, request_timeout=5
        )
        outcome = app.run(config)
    assert proxy.injected == plan
    _same_answers(_items(outcome.run_dir, "vqav2"), reference["vqav2"][:6])
    model = outcome.results["model"]
    assert model["retries"] == len(plan)
    assert model["requests_sent"] == 6 + len(plan)
    retried = [i["extra"]["meta"].get("retries", 0) for i in _items(outcome.run_dir, "vqav2")]
    assert sum(retried) == len(plan)
    assert outcome.results["tasks"]["vqav2"]["counts"] == {"items": 6, "errors": 0, "resumed": 0}


class _KillServerAfter:
    """Progress hook that kills the server process after `n` answers were saved."""

    def __init__(self, proc, n: int) -> None:
        self.proc, self.n, self.seen = proc, n, 0

    def start(self, task: str, total: int, done: int) -> None:
        pass

    def advance(self, task: str, n: int, stats: dict) -> None:
        self.seen += n
        if self.seen == self.n:
            stop_server(self.proc)

    def finish(self, task: str) -> None:
        pass


def test_server_killed_mid_run_then_resumed(tiny_path, reference, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    n = LIMITS["vqav2"]
    proc, port = start_server(tiny_path, SERVED)
    try:
        config = _api(tmp_path, port, ["vqav2"], n, concurrency=2, max_retries=1)
        with pytest.raises(EndpointError, match="run the same command again to resume"):
            app.run(config, _KillServerAfter(proc, 3))
    finally:
        stop_server(proc)
    run_dir = next(tmp_path.glob("tiny-qwen2-vl-*"))
    saved = _items(run_dir, "vqav2")
    ids = [i["id"] for i in saved]
    assert len(set(ids)) == len(ids) and 3 <= len(ids) < n
    assert not any(i.get("error") for i in saved)  # the outage is not recorded as answers

    proc, port2 = start_server(tiny_path, SERVED, port=port)
    try:
        assert port2 == port  # same URL: same run directory
        outcome = app.run(config)
        assert get_json(port, "/stats")["completions"] == n - len(ids)
    finally:
        stop_server(proc)
    assert outcome.run_dir == run_dir
    assert outcome.results["tasks"]["vqav2"]["counts"] == {
        "items": n,
        "errors": 0,
        "resumed": len(ids),
    }
    _same_answers(_items(run_dir, "vqav2"), reference["vqav2"])


def test_option_scoring_through_prompt_logprobs(server, tmp_path, monkeypatch):
    """With a server that returns prompt log-probs (vLLM's extension), scienceqa_img runs and
    its option scores equal the transformers backend's (KV-cache continuation there, one
    forward pass over prompt + option on the server)."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    hf = app.run(_config(tmp_path / "hf", ["scienceqa_img"], 4, batch_size=4))
    before = get_json(server, "/stats")["completions"]
    api = app.run(_api(tmp_path / "api", server, ["scienceqa_img"], 4, api_prompt_logprobs=True))
    want, got = _items(hf.run_dir, "scienceqa_img"), _items(api.run_dir, "scienceqa_img")
    assert [i["id"] for i in got] == [i["id"] for i in want]
    n_options = 0
    for g, w in zip(got, want, strict=True):
        assert (g["prompt_hash"], g["answer"], g["score"]) == (
            w["prompt_hash"],
            w["answer"],
            w["score"],
        )
        assert "error" not in g
        for go, wo in zip(g["extra"]["options"], w["extra"]["options"], strict=True):
            assert go["num_tokens"] == wo["num_tokens"] == 1
            assert go["sum_logprob"] == pytest.approx(wo["sum_logprob"], abs=1e-4)
            n_options += 1
    assert get_json(server, "/stats")["completions"] - before == n_options
    assert (
        api.results["tasks"]["scienceqa_img"]["metrics"]
        == hf.results["tasks"]["scienceqa_img"]["metrics"]
    )
