"""repetition_penalty: the Qwen2/2.5-VL Instruct checkpoints ship 1.05, the harness's neutral
greedy settings drop it, `--gen-kwargs repetition_penalty=1.05` restores it in the HF backend
(what reaches `generate` is checked against a hand-written greedy loop with the penalty), and
the value used is recorded."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from qwenvl_eval.config import parse_gen_kwargs
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.types import GenerateRequest, Generation, Text
from tests.fakes import FakeRunner

from .conftest import set_batching

PROMPT = "Describe a park in English:"


def generate_ids(runner, prompt: str, penalty: float, n: int = 12) -> list[int]:
    set_batching(runner, 1, output_token_ids=True)
    gen = Generation(max_new_tokens=n, repetition_penalty=penalty)
    (resp,) = list(runner.generate([GenerateRequest("r", (Text(prompt),), gen, style="raw")]))
    assert resp.error is None
    return resp.meta["output_token_ids"]


@pytest.fixture(scope="module")
def echo_prompt(hf_runners) -> str:
    """A prompt holding most of the tiny vocabulary (691 tokens), so that whatever the model
    says next is a repeat the penalty acts on (random weights rarely repeat on their own)."""
    tok = hf_runners["qwen2-vl"].tokenizer
    return PROMPT + tok.decode(list(range(300, 600)), skip_special_tokens=True)


def reference_greedy(runner, ids: list[int], n: int, penalty: float) -> list[int]:
    """Greedy decoding by full forwards, with transformers' documented repetition penalty:
    the logit of every token already in the sequence (prompt included) is divided by the
    penalty when positive and multiplied by it when negative."""
    model = runner.model
    seq = list(ids)
    out = []
    with torch.no_grad():
        for _ in range(n):
            x = torch.tensor([seq])
            logits = (
                model(
                    input_ids=x,
                    attention_mask=torch.ones_like(x),
                    mm_token_type_ids=torch.zeros_like(x),
                    use_cache=False,
                )
                .logits[0, -1]
                .float()
            )
            seen = torch.tensor(sorted(set(seq)))
            s = logits[seen]
            logits[seen] = torch.where(s < 0, s * penalty, s / penalty)
            tok = int(logits.argmax())
            out.append(tok)
            if tok in runner.stop_ids:
                break
            seq.append(tok)
    return out


@pytest.mark.parametrize("penalty", [1.0, 1.05, 4.0])
def test_hf_generate_applies_the_penalty(hf_runners, echo_prompt, penalty):
    runner = hf_runners["qwen2-vl"]
    set_batching(runner, 1, output_token_ids=True)
    gen = Generation(max_new_tokens=12).replace(**parse_gen_kwargs(f"repetition_penalty={penalty}"))
    assert gen.repetition_penalty == penalty
    req = GenerateRequest("r", (Text(echo_prompt),), gen, style="raw")
    (resp,) = list(runner.generate([req]))
    assert resp.error is None
    ids = runner.prepare(req, 0).inputs.ids
    assert resp.meta["output_token_ids"] == reference_greedy(runner, ids, 12, penalty)


def test_a_penalty_changes_the_tiny_models_output(hf_runners, echo_prompt):
    runner = hf_runners["qwen2-vl"]
    outs = [generate_ids(runner, echo_prompt, p) for p in (1.0, 1.05, 4.0)]
    assert outs[0] != outs[1] and outs[1] != outs[2]  # 1.05 already changes greedy output


def test_penalty_is_recorded_in_the_request_and_prompt_hash(tmp_path):
    root = builtin_root()
    plain = prepare_task("vqav2", root, QWEN2_VL.info, limit=1)
    restored = prepare_task(
        "vqav2",
        root,
        QWEN2_VL.info,
        limit=1,
        gen_overrides=parse_gen_kwargs("repetition_penalty=1.05"),
    )
    assert plain.requests[0].generation.repetition_penalty == 1.0
    assert restored.requests[0].generation.repetition_penalty == 1.05
    assert plain.prompt_hash != restored.prompt_hash
    assert plain.requests[0].fingerprint() != restored.requests[0].fingerprint()
    (result,) = evaluate([restored], FakeRunner(family=QWEN2_VL), PredictionStore(tmp_path))
    assert result.generation["repetition_penalty"] == 1.05  # results.json, per task


def test_checkpoint_penalty_is_noted_in_provenance(hf_runners, tmp_path):
    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.hf import HFRunner
    from qwenvl_eval.model.presets import ResolvedModel

    src = hf_runners["qwen2-vl"].resolved
    folder = tmp_path / "ckpt"
    shutil.copytree(src.path, folder)
    cfg = folder / "generation_config.json"
    data = json.loads(cfg.read_text()) if cfg.is_file() else {}
    cfg.write_text(
        json.dumps(data | {"repetition_penalty": 1.05, "do_sample": True, "top_p": 0.001})
    )
    resolved = ResolvedModel(src.spec, folder, src.family, src.revision, src.preset)
    runner = HFRunner(resolved, RunnerOptions(device="cpu", dtype="fp32"))
    prov = runner.provenance()
    assert prov["checkpoint_generation_config_ignored"]["repetition_penalty"] == 1.05
    assert any("repetition_penalty 1.05" in n for n in prov["notes"])
    assert runner.model.generation_config.repetition_penalty in (None, 1.0)
    plain = hf_runners["qwen2-vl"].provenance()
    assert not any("repetition_penalty" in n for n in plain.get("notes", []))


def test_default_penalty_keeps_stored_fingerprints():
    # The request fingerprint of stored answers from before the setting existed: the same
    # hash of the same list, without the field.
    import dataclasses
    import hashlib

    req = GenerateRequest("r", (Text("Q?"),), Generation(max_new_tokens=7), style="raw")
    old_gen = {
        k: v for k, v in dataclasses.asdict(req.generation).items() if k != "repetition_penalty"
    }
    blob = json.dumps(
        ["generate", "raw", None, [["text", "Q?"]], old_gen], sort_keys=True, ensure_ascii=False
    )
    assert req.fingerprint() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    set_ = dataclasses.replace(req, generation=req.generation.replace(repetition_penalty=1.05))
    assert set_.fingerprint() != req.fingerprint()
