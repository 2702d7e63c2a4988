"""A real vLLM engine against the transformers backend on the same tiny checkpoint. Skipped
where vLLM is not importable (CI installs no vLLM; see README "Backends" for the CPU build).

vLLM's CPU attention takes head sizes of 32 and up; the tiny models have 16, so the test
uses copies with 2 query heads and 1 key/value head (head size 32): the weight shapes are
unchanged, only how they are split into heads. Qwen3-VL cannot be reshaped so (its per-head
q/k norms have the head size as their shape), so it is not run here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from qwenvl_eval.evaluator import evaluate, prepare_task  # noqa: E402
from qwenvl_eval.model.base import RunnerOptions  # noqa: E402
from qwenvl_eval.model.loader import load_runner  # noqa: E402
from qwenvl_eval.model.presets import resolve_model  # noqa: E402
from qwenvl_eval.results.store import PredictionStore  # noqa: E402
from qwenvl_eval.tasks.data.locate import builtin_root  # noqa: E402
from qwenvl_eval.types import (  # noqa: E402
    GenerateRequest,
    Generation,
    Image,
    ImageRef,
    ScoreRequest,
    Text,
)


@pytest.fixture(scope="module", params=["tiny-qwen2-vl", "tiny-qwen2.5-vl"])
def head32_model(request, model_cache, tmp_path_factory):
    src = resolve_model(request.param)
    dest = tmp_path_factory.mktemp("tiny32") / f"{request.param}-head32"
    shutil.copytree(src.path, dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg.update(num_attention_heads=2, num_key_value_heads=1)
    cfg["rope_scaling"]["mrope_section"] = [4, 6, 6]  # sums to head_size / 2
    (dest / "config.json").write_text(json.dumps(cfg))
    return resolve_model(str(dest))


@pytest.fixture(scope="module")
def runners(head32_model):
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    base = dict(device="cpu", dtype="fp32", batch_size=4)
    hf = load_runner(head32_model, RunnerOptions(**base))
    vl = load_runner(
        head32_model,
        RunnerOptions(
            **base,
            backend="vllm",
            backend_options={"max_model_len": 2048, "enforce_eager": True},
        ),
    )
    yield hf, vl
    vl.close()
    hf.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _requests(image_dir: Path) -> list[GenerateRequest]:
    gens = [Generation(max_new_tokens=8), Generation(max_new_tokens=6, min_new_tokens=4)]
    out = []
    for i in range(6):
        parts = (Image(ImageRef(f"img{i}", image_dir / f"img{i}.png")), Text("What is in it?"))
        out.append(GenerateRequest(f"g{i}", parts, gens[i % 2]))
    out.append(GenerateRequest("t", (Text("Describe a park in English:"),), gens[0], style="raw"))
    return out


def test_greedy_answers_equal_the_transformers_backend(runners, image_dir):
    hf, vl = runners
    reqs = _requests(image_dir)
    a = {r.id: r for r in hf.generate(reqs)}
    b = {r.id: r for r in vl.generate(reqs)}
    assert set(b) == {r.id for r in reqs}
    for r in reqs:
        assert b[r.id].error is None, b[r.id].error
        assert b[r.id].text == a[r.id].text, r.id
        assert b[r.id].meta["prompt_tokens"] == a[r.id].meta["prompt_tokens"]
        assert b[r.id].meta.get("input_sizes") == a[r.id].meta.get("input_sizes")
    assert vl.stats.items == len(reqs) and vl.stats.errors == 0


def test_option_scores_equal_the_transformers_backend(runners, image_dir):
    hf, vl = runners
    reqs = [
        ScoreRequest(
            f"s{i}",
            (Image(ImageRef(f"img{i}", image_dir / f"img{i}.png")), Text("Which? Answer:")),
            (" A", " the cat", " 42"),
        )
        for i in range(3)
    ]
    a = {r.id: r for r in hf.score_options(reqs)}
    b = {r.id: r for r in vl.score_options(reqs)}
    for r in reqs:
        assert b[r.id].meta["prompt_tokens"] == a[r.id].meta["prompt_tokens"]
        for x, y in zip(a[r.id].options, b[r.id].options, strict=True):
            assert x.num_tokens == y.num_tokens
            assert math.isclose(x.sum_logprob, y.sum_logprob, rel_tol=1e-3, abs_tol=1e-3)


def test_a_run_stopped_midway_leaves_the_engine_clean(runners, image_dir):
    """A killed consumer (the run stopped after two answers) must not leave requests in the
    engine that a later call would receive."""
    _, vl = runners
    reqs = _requests(image_dir)
    gen = vl.generate(reqs)
    first = [next(gen), next(gen)]
    gen.close()
    again = {r.id: r for r in vl.generate(reqs)}
    assert set(again) == {r.id for r in reqs}
    assert all(r.error is None for r in again.values())
    assert {r.id: r.text for r in first} == {r.id: again[r.id].text for r in first}


def test_a_bad_item_fails_alone(runners, image_dir):
    _, vl = runners
    reqs = _requests(image_dir)[:2] + [
        GenerateRequest(
            "bad", (Image(ImageRef("broken", image_dir / "broken.png")), Text("?")), Generation()
        )
    ]
    got = {r.id: r for r in vl.generate(reqs)}
    assert got["bad"].error.startswith("ImageDecodeError")
    assert "UnidentifiedImageError" in got["bad"].error
    assert got["g0"].error is None and got["g1"].error is None


def test_task_run_writes_as_it_goes_and_prompt_hashes_match(runners, tmp_path):
    hf, vl = runners
    results = {}
    for name, runner in (("hf", hf), ("vllm", vl)):
        run = prepare_task("vqav2", builtin_root(), runner.family.info, limit=4, seed=1)
        store = PredictionStore(tmp_path / name)
        (results[name],) = evaluate([run], runner, store)
        rows = (tmp_path / name / "vqav2.predictions.jsonl").read_text().splitlines()
        results[name + "_rows"] = [json.loads(x) for x in rows]
    assert [r["prompt_hash"] for r in results["hf_rows"]] == [
        r["prompt_hash"] for r in results["vllm_rows"]
    ]
    assert [r["output"] for r in results["hf_rows"]] == [r["output"] for r in results["vllm_rows"]]
    assert any(n.startswith("vllm: greedy") for n in results["vllm"].notes)
    assert results["vllm"].counts == {"items": 4, "errors": 0, "resumed": 0}
