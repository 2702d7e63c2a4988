"""The OpenAI-compatible backend against a misbehaving server: a real HTTP proxy on 127.0.0.1
(tests/openai_server.py's FailingProxy) in front of the real test server answers chosen
requests with garbage, HTML, deep or non-UTF-8 JSON, a wrong-type `content`, an HTTP 200
carrying an error or no choices, a body trickled a byte a second, a 64 MiB answer, extra
choices, special-token text, an echoed Authorization header or a refused vendor extension.
Each is one item's error with the server's words (retried on a rerun) or a noted answer;
nothing hangs, no traceback, the API key is written nowhere."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.errors import RunFailed
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.openai_api import EndpointError
from tests.openai_server import FailingProxy, start_server, stop_server

SERVED = "tiny-qwen2-vl-served"
KEY_ENV = "QWENVL_TEST_API_KEY"
SECRET = "sk-fault-0123456789-never-written"


@pytest.fixture(scope="module")
def server():
    from qwenvl_eval.model.presets import resolve_model

    proc, port = start_server(str(resolve_model("tiny-qwen2-vl").path), SERVED, api_key=SECRET)
    yield port
    stop_server(proc)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


def _config(out: Path, port: int, limit: int, **kw) -> RunConfig:
    max_failures = kw.pop("max_failures", None)
    options = {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_model": SERVED,
        "api_key_env": KEY_ENV,
        "concurrency": 1,
        "max_retries": 0,
        **kw,
    }
    return RunConfig(
        model="tiny-qwen2-vl",
        tasks=["vqav2"],
        data_dir="builtin",
        limit=limit,
        output_dir=out,
        runner=RunnerOptions(seed=1234, backend="openai", backend_options=options),
        max_failures=max_failures,
    )


def _items(run_dir: Path) -> list[dict]:
    lines = (run_dir / "vqav2.predictions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _no_secret_anywhere(root: Path, *texts: str) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    for text in texts:
        assert SECRET not in text


UNUSABLE = {
    "html": "502 Bad Gateway",
    "garbage": 'not JSON: {"choices": [{"message":',
    "deep": "nested too deeply",
    "not_utf8": "not UTF-8",
    "content_list": "content is a JSON list, not a string",
    "content_number": "content is a JSON int, not a string",
    "error_200": "CUDA out of memory while decoding",
    "no_choices": "has no choices",
}


def test_unusable_answers_are_item_errors_retried_on_rerun(server, tmp_path):
    plan = list(UNUSABLE)
    with FailingProxy(server, plan) as proxy:
        outcome = app.run(_config(tmp_path, proxy.port, 10))
        assert proxy.injected == plan
        errors = [i.get("error") for i in _items(outcome.run_dir) if i.get("error")]
        assert len(errors) == len(plan)
        for words in UNUSABLE.values():
            assert sum(words in e for e in errors) == 1, (words, errors)
        assert all("\n" not in e for e in errors)
        assert outcome.results["tasks"]["vqav2"]["counts"]["errors"] == len(plan)
        # The same command again, the server now sane: exactly the failed items are asked
        # (and the model list, checked before any item).
        forwarded = proxy.forwarded
        again = app.run(_config(tmp_path, proxy.port, 10))
        assert proxy.forwarded - forwarded == 1 + len(plan)
    assert again.run_dir == outcome.run_dir
    assert again.results["tasks"]["vqav2"]["counts"] == {
        "items": 10,
        "errors": 0,
        "resumed": 10 - len(plan),
    }


def test_max_failures_stops_a_run_of_unusable_answers(server, tmp_path):
    proxy = FailingProxy(server, ["html", "deep", "not_utf8"])
    with proxy, pytest.raises(RunFailed, match="--max-failures 1") as err:
        app.run(_config(tmp_path, proxy.port, 6, max_failures="1"))
    assert "not UTF-8" in str(err.value) or "nested too deeply" in str(err.value)


def test_a_trickling_server_meets_the_total_deadline(server, tmp_path):
    # One byte a second for up to 10 minutes: only a total deadline ends this request.
    with FailingProxy(server, ["trickle"], stall_s=600.0) as proxy:
        with pytest.raises(EndpointError, match=r"no complete answer within 2s") as err:
            app.run(_config(tmp_path, proxy.port, 2, request_timeout=2.0))
        assert proxy.trickled < 600
    assert "run the same command again to resume" in str(err.value)


def test_an_echoed_api_key_is_redacted_everywhere(server, tmp_path, caplog, capsys):
    caplog.set_level(logging.WARNING)
    with FailingProxy(server, ["echo_auth_400", "echo_auth_200"]) as proxy:
        outcome = app.run(_config(tmp_path, proxy.port, 3))
    items = _items(outcome.run_dir)
    errors = [i.get("error") for i in items if i.get("error")]
    assert len(errors) == 1 and "Authorization: Bearer [API key redacted]" in errors[0]
    echoed = [i for i in items if "your header" in (i["output"] or "")]
    assert len(echoed) == 1 and echoed[0]["output"] == "your header: Bearer [API key redacted]"
    assert (
        "the API key echoed in the answer was redacted"
        in echoed[0]["extra"]["meta"]["answer_notes"]
    )
    captured = capsys.readouterr()
    _no_secret_anywhere(tmp_path, caplog.text, captured.out, captured.err)
    assert "[API key redacted]" in caplog.text


def test_huge_answers_are_capped_extra_choices_and_special_text_noted(server, tmp_path):
    with FailingProxy(server, ["huge", "three_choices", "special_text"]) as proxy:
        outcome = app.run(_config(tmp_path, proxy.port, 3))
    items = _items(outcome.run_dir)
    assert all(i.get("error") is None for i in items)
    notes = {i["id"]: i["extra"]["meta"].get("answer_notes", []) for i in items}
    huge = next(i for i in items if (i["output"] or "").startswith("aaaa"))
    assert len(huge["output"]) == 4096
    assert any(
        n.startswith("answer cut to 4,096 of 67,108,864 characters") for n in notes[huge["id"]]
    )
    assert sum("3 choices for n=1; the first was kept" in " ".join(n) for n in notes.values()) == 1
    special = [i for i in items if any("<|im_end|>" in n for n in notes[i["id"]])]
    assert len(special) == 1 and special[0]["output"] == "yes"
    # Every saved file stays small: the 64 MiB answer is not stored.
    assert (outcome.run_dir / "vqav2.predictions.jsonl").stat().st_size < 100_000


def test_a_refused_vendor_extension_names_its_flag(server, tmp_path):
    with FailingProxy(server, ["min_tokens_422"]) as proxy:
        outcome = app.run(_config(tmp_path, proxy.port, 2, api_min_tokens=True))
    (error,) = [i.get("error") for i in _items(outcome.run_dir) if i.get("error")]
    assert error.startswith("UnprocessableEntityError 422: Unexpected fields in the request")
    assert "min_tokens" in error and "run without --api-min-tokens" in error


def test_bad_base_url_and_infinite_timeout_are_one_line(capsys):
    from tests.test_cli import assert_one_line_error, run_cli

    base = ["run", "--model", "tiny-qwen2-vl", "--tasks", "vqav2", "--data-dir", "builtin"]
    base += ["--backend", "openai"]
    for url in ("http://127.0.0.1:99999/v1", "http://[::1/v1", "http://exa mple/v1"):
        code, _, err = run_cli([*base, "--base-url", url], capsys)
        assert_one_line_error(code, err, "--base-url: expected http(s)://host[:port]/v1")
    url = ["--base-url", "http://127.0.0.1:9/v1"]
    code, _, err = run_cli([*base, *url, "--request-timeout", "inf"], capsys)
    assert_one_line_error(code, err, "--request-timeout: must be a finite number")
