"""ScienceQA in bf16 end to end on the tiny Qwen-VL: the runner reports the logits dtype and
each option's token log-probs, and the paper-mode task compares options as eval_mm does on
bf16 logits (a near tie goes to the first option), float32 otherwise."""

from __future__ import annotations

import pytest
import torch

from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.families import QWEN_VL
from qwenvl_eval.model.presets import ResolvedModel
from qwenvl_eval.model.qwen_vl.runner import QwenVLRunner
from qwenvl_eval.tasks.scienceqa import option_losses
from qwenvl_eval.types import Image, ScoreRequest, Text


def runner_for(resolved, dtype):
    r = ResolvedModel(resolved.spec, resolved.path, QWEN_VL, resolved.revision, resolved.preset)
    return QwenVLRunner(r, RunnerOptions(device="cpu", dtype=dtype, batch_size=2))


@pytest.fixture(scope="module")
def bf16_runner(tiny_resolved):
    return runner_for(tiny_resolved, "bf16")


def request(images, i=0):
    prompt = "Context: N/A\nQuestion: Which one?\nOptions: A. dog\nB. cat\nAnswer:"
    return ScoreRequest(f"s{i}", (Image(images[i]), Text(prompt)), (" A", " B"), style="raw")


@torch.no_grad()
def test_bf16_runner_reports_dtype_and_token_logprobs(bf16_runner, images, tokenizer):
    req = request(images)
    (resp,) = list(bf16_runner.score_options([req]))
    assert resp.error is None
    assert resp.meta["logits_dtype"] == "bfloat16"
    tokens = resp.meta["option_token_logprobs"]
    assert [len(t) for t in tokens] == [o.num_tokens for o in resp.options] == [1, 1]
    # The float32 log-softmax of the model's bf16 logits at the prompt's last position.
    prompt = bf16_runner.prepare(req, 0).inputs["prompt"]
    hidden, _ = bf16_runner.model.prefill([prompt], bf16_runner.pad_id, extra=0)
    logits = bf16_runner.model.logits(hidden)[0]
    assert logits.dtype == torch.bfloat16
    logp = torch.log_softmax(logits.float(), dim=-1)
    ids = [tokenizer.encode(o)[0] for o in req.options]
    assert tokens == [[logp[i].item()] for i in ids]
    assert [o.sum_logprob for o in resp.options] == [t[0] for t in tokens]


def test_fp32_runner_reports_no_tokens(tiny_resolved, images):
    (resp,) = list(runner_for(tiny_resolved, "fp32").score_options([request(images)]))
    assert resp.meta["logits_dtype"] == "float32"
    assert "option_token_logprobs" not in resp.meta
    _, mode = option_losses(resp.options, resp.meta, QWEN_VL.info)
    assert mode == "float32"


@torch.no_grad()
def test_planted_near_tie_in_the_weights(tiny_resolved, images, tokenizer):
    """lm_head rows of " A" and " B" planted so that B's logit is a hair above A's (far
    below a bf16 step of the loss): eval_mm's bf16 comparison ties and picks A, float32
    picks B."""
    runner = runner_for(tiny_resolved, "bf16")
    req = request(images, 1)
    prompt = runner.prepare(req, 0).inputs["prompt"]
    w = runner.model.lm_head.weight
    a, b = (tokenizer.encode(o)[0] for o in req.options)
    hidden, _ = runner.model.prefill([prompt], runner.pad_id, extra=0)
    top = int(runner.model.logits(hidden)[0].float().argmax())
    w[a] = 0
    w[b] = w[top] * 2**-9  # logit_B = logit_top / 512 > 0 = logit_A
    (resp,) = list(runner.score_options([req]))
    (ta,), (tb,) = resp.meta["option_token_logprobs"]
    assert tb > ta  # float32: B has the lower loss
    losses, mode = option_losses(resp.options, resp.meta, QWEN_VL.info)
    assert mode == "bf16-eval_mm" and losses[0] == losses[1]  # one bf16 value
    assert (-ta, -tb) != (losses[0], losses[1])
    from qwenvl_eval.metrics import argmin_option

    assert argmin_option(losses) == 0
    assert argmin_option([-ta, -tb]) == 1
