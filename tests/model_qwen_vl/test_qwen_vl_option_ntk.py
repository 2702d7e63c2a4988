"""Option scoring across the dynamic-NTK boundary (2048 tokens) on the tiny Qwen-VL checkpoint.

eval_mm's ScienceQA script scores an option by one forward over `(prompt + option)[:-1]`, and
the original model code takes its NTK alpha from that length. Continuing the prompt's cache
would keep the prompt's alpha; `score_continuations` must give what the full forward gives at
every prompt length around the boundary."""

from __future__ import annotations

import torch

from qwenvl_eval.model.qwen_vl.decoding import needs_full_forward, score_continuations
from qwenvl_eval.model.qwen_vl.modeling import PromptInputs
from tests.model_qwen_vl.test_qwen_vl_quirks import reference_logits

PAD = 151643
LENGTHS = range(2040, 2061)
OPTION_LENGTHS = (1, 3, 9)


def full_forward_logprobs(model, prompt: PromptInputs, option: list[int]) -> list[float]:
    """Log-probs of the option's tokens from ONE forward over `(prompt + option)[:-1]` at batch
    size 1 (the eval_mm ScienceQA input); `prefill` is the original code's forward
    (test_qwen_vl_quirks checks it around seq_length)."""
    seq = PromptInputs(prompt.ids + option[:-1], prompt.image_offsets, prompt.pixels)
    hidden, _ = model.prefill([seq], PAD, extra=0, last=len(option))
    logp = torch.log_softmax(model.logits(hidden)[0].float(), dim=-1)
    return [logp[j, t].item() for j, t in enumerate(option)]


def original_logprobs(model, prompt: list[int], option: list[int], alpha=None) -> list[float]:
    """The same from the hand-written transcription of the original modeling_qwen.py."""
    logits = reference_logits(model, prompt + option[:-1], alpha=alpha, tail=len(option))
    logp = torch.log_softmax(logits.float(), dim=-1)
    return [logp[j, t].item() for j, t in enumerate(option)]


def close(a, b, atol=5e-4):
    torch.testing.assert_close(torch.tensor(a), torch.tensor(b), rtol=0, atol=atol)


@torch.no_grad()
def test_option_scores_equal_the_full_forward_at_2040_to_2060(model):
    assert model.config.seq_length == 2048 and model.config.use_dynamic_ntk
    gen = torch.Generator().manual_seed(11)
    base = torch.randint(0, 600, (max(LENGTHS),), generator=gen).tolist()
    opts = [torch.randint(0, 600, (n,), generator=gen).tolist() for n in OPTION_LENGTHS]
    crossing = 0
    for n in LENGTHS:
        prompt = PromptInputs(base[:n], [])
        (got,) = score_continuations(model, [prompt], [opts], PAD)
        for o, tokens in zip(opts, got, strict=True):
            assert len(tokens) == len(o)
            close(tokens, full_forward_logprobs(model, prompt, o))
            crossing += needs_full_forward(model, n, len(o))
    # P + n - 1 > 2048 >= P: n=3 at P 2047-2048, n=9 at P 2041-2048.
    assert crossing == 2 + 8


@torch.no_grad()
def test_batched_prompts_around_the_boundary_agree_with_batch_size_one(model):
    gen = torch.Generator().manual_seed(13)
    base = torch.randint(0, 600, (2050,), generator=gen).tolist()
    opts = [torch.randint(0, 600, (n,), generator=gen).tolist() for n in (1, 4)]
    prompts = [PromptInputs(base[:n], []) for n in (2045, 2046, 2050)]
    batched = score_continuations(model, prompts, [opts] * 3, PAD)
    for p, per_option in zip(prompts, batched, strict=True):
        for o, tokens in zip(opts, per_option, strict=True):
            close(tokens, full_forward_logprobs(model, p, o))


@torch.no_grad()
def test_the_prompts_alpha_would_be_wrong_across_the_boundary(model):
    # The case: a 2046-token prompt whose option crosses 2048. Checked against the
    # transcription of the original code; keeping the prompt's alpha (1) differs measurably.
    gen = torch.Generator().manual_seed(12)
    prompt = torch.randint(0, 600, (2046,), generator=gen).tolist()
    option = torch.randint(0, 600, (5,), generator=gen).tolist()
    assert needs_full_forward(model, 2046, 5) and not needs_full_forward(model, 2046, 3)
    (got,) = score_continuations(model, [PromptInputs(prompt, [])], [[option]], PAD)
    full = original_logprobs(model, prompt, option)
    kept = original_logprobs(model, prompt, option, alpha=1)
    close(got[0], full, atol=2e-4)
    assert abs(sum(kept) - sum(full)) > 1e-2


@torch.no_grad()
def test_mixed_batch_keeps_each_option_on_its_own_path(model, tokenizer, images):
    # A short prompt (cache continuation) and a boundary prompt with an image (full forward
    # for its long option) in one call give what each gives alone, and the full forward.
    from qwenvl_eval.model.qwen_vl.vision import resize_image

    ids = tokenizer.encode(f"<img>{images[0].key}</img>Question: which? Answer:")
    pixels = [resize_image(images[0].open(), model.config.visual.image_size)]
    short = PromptInputs(ids, tokenizer.image_offsets(ids), pixels)
    filler = torch.randint(0, 600, (2046 - len(ids),), generator=torch.Generator().manual_seed(3))
    long = PromptInputs(ids + filler.tolist(), tokenizer.image_offsets(ids), pixels)
    options = [tokenizer.encode(o) for o in (" A", " the red car on the street")]
    assert needs_full_forward(model, len(long.ids), len(options[1]))
    assert not needs_full_forward(model, len(long.ids), len(options[0]))
    both = score_continuations(model, [short, long], [options, options], PAD)
    for p, per_option in zip((short, long), both, strict=True):
        for o, tokens in zip(options, per_option, strict=True):
            close(tokens, full_forward_logprobs(model, p, o))
