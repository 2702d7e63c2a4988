"""`--backend openai` through a real engine no one in this project wrote: `transformers serve`
(transformers' own OpenAI-compatible server) on 127.0.0.1, in its own virtual environment,
serving the tiny Qwen2-VL. Every built-in item of vqav2, refcoco_val and scienceqa_img (as
its generation variant: `transformers serve` returns no prompt log-probs) must give the same
saved output and the same scores as `--backend hf` in this process.

The engine's environment (torch 2.14.1 + torchvision 0.29.1 + transformers[serving], about
2.7 GB) is built by scripts/real_server_check.sh, which then runs this file with
QWENVL_EVAL_REAL_SERVER=1. Without that variable the test is skipped (the plain test command
needs no second environment); with it, a missing engine is a failure, never a skip."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.model.base import RunnerOptions

REQUESTED = os.environ.get("QWENVL_EVAL_REAL_SERVER", "") not in ("", "0")
pytestmark = pytest.mark.skipif(
    not REQUESTED, reason="real engine: run scripts/real_server_check.sh"
)
ROOT = Path(__file__).resolve().parents[2]
# scienceqa_img scores options by prompt log-probs, which `transformers serve` does not
# return: its generation variant (the same items) is compared.
TASKS = ["vqav2", "refcoco_val", "scienceqa_img_gen"]
START_TIMEOUT_S = 600


def _serve_command() -> list[str]:
    venv = Path(os.environ.get("QWENVL_EVAL_SERVE_VENV", ROOT / ".venv-serve"))
    exe = venv / "bin" / "transformers"
    if not exe.is_file():
        pytest.fail(
            f"QWENVL_EVAL_REAL_SERVER is set but {exe} does not exist: build the engine's "
            "environment with scripts/real_server_check.sh"
        )
    return [str(exe), "serve"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(port, model name as the server knows it): `transformers serve` names a local model by
    its path exactly as given, so that string is what --api-model must send."""
    from qwenvl_eval.model.presets import resolve_model

    path = str(resolve_model("tiny-qwen2-vl").path)
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [*_serve_command(), path, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--device", "cpu", "--dtype", "float32"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="2")
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start: {log.read_text()[-3000:]}")
            time.sleep(1.0)
        yield port, path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _run(out: Path, task: str, **runner) -> Path:
    config = RunConfig(
        model="tiny-qwen2-vl",
        tasks=[task],
        data_dir="builtin",
        output_dir=out,
        runner=RunnerOptions(seed=1234, **runner),
    )
    return app.run(config).run_dir


def _lines(run_dir: Path, task: str) -> dict[str, dict]:
    path = run_dir / f"{task}.predictions.jsonl"
    return {d["id"]: d for d in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize("task", TASKS)
def test_transformers_serve_gives_the_in_process_answers(served, task, tmp_path):
    port, name = served
    hf_dir = _run(tmp_path / "hf", task, batch_size=4)
    options = {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_model": name,
        "concurrency": 2,
        "max_retries": 1,
    }
    api_dir = _run(tmp_path / "api", task, backend="openai", backend_options=options)
    hf, api = _lines(hf_dir, task), _lines(api_dir, task)
    assert len(hf) >= 10 and set(api) == set(hf)
    for item_id, ref in hf.items():
        got = api[item_id]
        assert got.get("error") is None, (item_id, got.get("error"))
        assert got["output"] == ref["output"], item_id
        assert got["score"] == ref["score"], item_id
    hf_results = json.loads((hf_dir / "results.json").read_text())["tasks"][task]
    api_results = json.loads((api_dir / "results.json").read_text())["tasks"][task]
    assert api_results["metrics"] == hf_results["metrics"]
    model = json.loads((api_dir / "results.json").read_text())["model"]
    assert model["images_sent"].startswith("PNG resized by the image processor")
