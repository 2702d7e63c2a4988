"""Batched greedy generation and option scoring on a `QwenVLModel`: token ids in, token ids
(or log-probabilities) out. No text, no requests: those live in the runner."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from .modeling import PromptInputs, QwenVLModel


@torch.inference_mode()
def greedy_generate(
    model: QwenVLModel,
    prompts: Sequence[PromptInputs],
    max_new_tokens: int,
    min_new_tokens: int,
    stop_ids: Sequence[Collection[int]],
    pad_id: int,
) -> list[list[int]]:
    """New tokens per prompt, cut before the first stop id. Stop ids are suppressed until
    `min_new_tokens` tokens exist (like transformers' MinNewTokensLength for eos); ties go to
    the lowest id (torch.argmax), as in transformers' greedy search."""
    b = len(prompts)
    if max_new_tokens <= 0:
        return [[] for _ in range(b)]
    hidden, cache = model.prefill(prompts, pad_id, extra=max_new_tokens - 1)
    device = hidden.device
    vocab = model.config.vocab_size
    stop_mask = torch.zeros(b, vocab, dtype=torch.bool)
    for r, ids in enumerate(stop_ids):
        stop_mask[r, [i for i in ids if 0 <= i < vocab]] = True
    stop_mask = stop_mask.to(device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    steps: list[torch.Tensor] = []
    logits = model.logits(hidden)
    for step in range(max_new_tokens):
        scores = logits.float()
        if step < min_new_tokens:
            scores = scores.masked_fill(stop_mask, float("-inf"))
        nxt = torch.where(done, pad_id, scores.argmax(dim=-1))
        steps.append(nxt)
        done = done | stop_mask.gather(1, nxt[:, None]).squeeze(1)
        if step + 1 == max_new_tokens or bool(done.all()):
            break
        logits = model.logits(model.extend(cache, nxt[:, None])[:, -1])
    rows = torch.stack(steps, dim=1).tolist()
    out = []
    for r, row in enumerate(rows):
        stops = stop_ids[r]
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        out.append(row[:cut])
    return out


@torch.inference_mode()
def score_continuations(
    model: QwenVLModel,
    prompts: Sequence[PromptInputs],
    options: Sequence[Sequence[Sequence[int]]],
    pad_id: int,
) -> list[list[tuple[float, int]]]:
    """(sum of log-probs, token count) of each option's tokens after its prompt.

    Each prompt (images included) runs once. The first token of every option is scored from
    the prompt's last position; the remaining tokens run as one right-padded batch of
    continuations over copies of their prompt's cache rows. Option tokens continue the
    prompt's positions and keep the prompt's NTK alpha, as decoding does."""
    for r, opts in enumerate(options):
        if not opts or any(len(o) == 0 for o in opts):
            raise ValueError(f"prompt {r}: every option needs at least one token")
    longest = max(len(o) for opts in options for o in opts)
    hidden, cache = model.prefill(prompts, pad_id, extra=0)
    first = torch.log_softmax(model.logits(hidden).float(), dim=-1)  # [B, V]
    flat = [(r, list(o)) for r, opts in enumerate(options) for o in opts]
    device = hidden.device
    rows = torch.tensor([r for r, _ in flat], device=device)
    firsts = torch.tensor([o[0] for _, o in flat], device=device)
    totals = first[rows, firsts]
    if longest > 1:
        t = longest - 1
        ids = torch.full((len(flat), t), pad_id, dtype=torch.long)
        real = torch.zeros(len(flat), t, dtype=torch.bool)
        targets = torch.zeros(len(flat), t, dtype=torch.long)
        for i, (_, o) in enumerate(flat):
            n = len(o) - 1
            ids[i, :n] = torch.tensor(o[:-1])
            targets[i, :n] = torch.tensor(o[1:])
            real[i, :n] = True
        ids, targets = ids.to(device), targets.to(device)
        sub = cache.select(rows, extra=t)
        logp = torch.log_softmax(model.logits(model.extend(sub, ids, real)).float(), dim=-1)
        picked = logp.gather(2, targets[..., None]).squeeze(-1)
        totals = totals + (picked * real.to(device)).sum(dim=1)
    sums = totals.tolist()
    out: list[list[tuple[float, int]]] = []
    i = 0
    for opts in options:
        out.append([(sums[i + j], len(o)) for j, o in enumerate(opts)])
        i += len(opts)
    return out
