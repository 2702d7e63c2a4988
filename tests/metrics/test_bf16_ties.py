"""ScienceQA option choice in bf16 as the Qwen-VL eval_mm script makes it: each option's mean
cross-entropy on bf16 logits, compared as bf16, the first option winning a tie."""

from __future__ import annotations

import math
import random

import torch

from qwenvl_eval.metrics import argmin_option, bf16_round, eval_mm_bf16_loss


def test_bf16_round_is_torchs_conversion():
    rng = random.Random(0)
    values = [rng.uniform(-20, 20) for _ in range(5000)]
    values += [rng.uniform(0, 1e-3) for _ in range(500)]
    values += [0.0, -0.0, 1.0, 8.0, 7.984375, 3.4e38, -3.4e38, math.inf, -math.inf, 1e-40]
    expected = torch.tensor(values, dtype=torch.float32).bfloat16().float().tolist()
    assert [bf16_round(v) for v in values] == expected
    assert math.isnan(bf16_round(math.nan))


def test_exact_values():
    # 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0); just above rounds up.
    assert bf16_round(1 + 2**-8) == 1.0
    assert bf16_round(1 + 2**-8 + 2**-20) == 1 + 2**-7
    assert eval_mm_bf16_loss([-8.0006]) == 8.0
    assert eval_mm_bf16_loss([-7.985]) == 8.0  # ulp 2^-5 below 8: 7.985 rounds up to 8
    # Two tokens: 1.0 and 2.0 -> mean 1.5 exactly; 1.0 and 2.01 -> bf16 2.0 first, so 1.5.
    assert eval_mm_bf16_loss([-1.0, -2.0]) == 1.5
    assert eval_mm_bf16_loss([-1.0, -2.005]) == 1.5
    # 2.01 rounds to 2.015625 first: (1 + 2.015625) / 2 = 1.5078125, a bf16 value.
    assert eval_mm_bf16_loss([-1.0, -2.01]) == 1.5078125
    assert math.isnan(eval_mm_bf16_loss([]))


def eval_mm_choice(logits_bf16: torch.Tensor, targets: list[int]) -> int:
    """The eval_mm ScienceQA lines on one question whose options are one token each, with the
    CUDA kernels' arithmetic (the paper ran on GPUs): `cross_entropy(..., reduction="none")` on
    bf16 logits is log-softmax in float32 rounded once to bf16 (CUDA's LogSoftMaxForwardEpilogue
    returns `(OutT)(input - max - logsum)`), the mean of one bf16 loss is itself, `argmin`
    takes the first minimum. (torch's CPU bf16 log-softmax rounds intermediates instead.)"""
    logp = torch.log_softmax(logits_bf16.float(), dim=1)
    losses = (-logp.gather(1, torch.tensor(targets)[:, None])[:, 0]).bfloat16()
    assert losses.dtype == torch.bfloat16
    target_loss = torch.stack([row.reshape(1).mean() for row in losses])
    return int(target_loss.argmin().item())


def harness_choice(logits_bf16: torch.Tensor, targets: list[int], bf16: bool) -> int:
    """The harness: float32 log-softmax of the bf16 logits (the runner), then the task's
    comparison (bf16 eval_mm rounding, or float32 means)."""
    logp = torch.log_softmax(logits_bf16.float(), dim=-1)
    tokens = [[logp[i, t].item()] for i, t in enumerate(targets)]
    losses = [eval_mm_bf16_loss(t) if bf16 else -t[0] for t in tokens]
    return argmin_option(losses)


def planted(winner_logit: float) -> torch.Tensor:
    """Logits of one question's 2 option rows (identical prompt, so identical rows): the
    option tokens are ids 1 (A) and 2 (B), B one bf16 step above A: a near-tie."""
    row = torch.full((16,), -4.0)
    row[0] = 10.0
    row[1] = 2.0
    row[2] = winner_logit
    return row.repeat(2, 1).bfloat16()


def test_planted_near_tie_goes_to_the_first_option_as_in_eval_mm():
    logits = planted(2.015625)  # 2 + 2^-6: the next bf16 after 2.0
    assert eval_mm_choice(logits, [1, 2]) == 0  # both losses round to bf16 8.0: A
    assert harness_choice(logits, [1, 2], bf16=True) == 0
    assert harness_choice(logits, [1, 2], bf16=False) == 1  # float32 sees B's lower loss


def test_clear_winner_is_the_same_in_both_modes():
    logits = planted(3.0)
    assert eval_mm_choice(logits, [1, 2]) == 1
    assert harness_choice(logits, [1, 2], bf16=True) == 1
    assert harness_choice(logits, [1, 2], bf16=False) == 1


def test_random_bf16_logits_agree_with_the_eval_mm_lines():
    gen = torch.Generator().manual_seed(1)
    ties = 0
    for _ in range(300):
        row = (torch.randn(1, 64, generator=gen) * 3).bfloat16()
        targets = torch.randperm(64, generator=gen)[:4].tolist()
        # Near ties: copy one option's logit to another, one bf16 step apart.
        row[0, targets[1]] = (row[0, targets[0]].float() * (1 + 2**-7)).bfloat16()
        logits = row.repeat(4, 1)
        ref = eval_mm_choice(logits, targets)
        assert harness_choice(logits, targets, bf16=True) == ref
        ties += ref != harness_choice(logits, targets, bf16=False)
    assert ties > 0  # the two comparisons do differ on near ties
