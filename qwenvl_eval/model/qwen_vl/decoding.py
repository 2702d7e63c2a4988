"""Batched greedy generation and option scoring on a `QwenVLModel`: token ids in, token ids
(or log-probabilities) out. No text, no requests: those live in the runner."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from .language import ntk_alpha
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


def needs_full_forward(model: QwenVLModel, prompt_len: int, option_len: int) -> bool:
    """Whether scoring an option by continuing its prompt's cache would differ from the
    paper's full forward over prompt + option: eval_mm runs `(prompt + option)[:-1]`, whose
    dynamic-NTK alpha comes from that length, while a continued cache keeps the prompt's."""
    cfg = model.config
    if not cfg.use_dynamic_ntk:
        return False
    full = prompt_len + option_len - 1
    return ntk_alpha(full, cfg.seq_length) != ntk_alpha(prompt_len, cfg.seq_length)


@torch.inference_mode()
def score_continuations(
    model: QwenVLModel,
    prompts: Sequence[PromptInputs],
    options: Sequence[Sequence[Sequence[int]]],
    pad_id: int,
) -> list[list[list[float]]]:
    """The log-probability (float32, from the model's logits) of each token of each option
    after its prompt: `[prompt][option][token]`.

    Each prompt (images included) runs once. The first token of every option is scored from
    the prompt's last position; the remaining tokens run as one right-padded batch of
    continuations over copies of their prompt's cache rows (option tokens continue the
    prompt's positions, like decoding). That equals a full forward over prompt + option
    except when the option pushes the length over an NTK boundary (2048, 4096, ... tokens):
    the alpha, hence every rotary angle, would differ. Those options get their own full
    forward over `(prompt + option)[:-1]`, as the paper's ScienceQA script runs them."""
    for r, opts in enumerate(options):
        if not opts or any(len(o) == 0 for o in opts):
            raise ValueError(f"prompt {r}: every option needs at least one token")
    flat = [(r, list(o)) for r, opts in enumerate(options) for o in opts]
    full = [
        i for i, (r, o) in enumerate(flat) if needs_full_forward(model, len(prompts[r].ids), len(o))
    ]
    full_set = set(full)
    cached = [i for i in range(len(flat)) if i not in full_set]
    tokens: list[list[float]] = [[] for _ in flat]
    if cached:
        rows = sorted({flat[i][0] for i in cached})
        got = _continue_prompts(model, [prompts[r] for r in rows], rows, flat, cached, pad_id)
        for i, values in zip(cached, got, strict=True):
            tokens[i] = values
    if full:
        got = _full_forwards(model, prompts, flat, full, pad_id)
        for i, values in zip(full, got, strict=True):
            tokens[i] = values
    out: list[list[list[float]]] = []
    i = 0
    for opts in options:
        out.append(tokens[i : i + len(opts)])
        i += len(opts)
    return out


def _continue_prompts(
    model: QwenVLModel,
    prompts: Sequence[PromptInputs],
    rows: Sequence[int],
    flat: Sequence[tuple[int, list[int]]],
    which: Sequence[int],
    pad_id: int,
) -> list[list[float]]:
    """Token log-probs of the options `which` (indices into `flat`) by one prefill of their
    prompts and one batched continuation of the prompts' caches."""
    slot = {r: k for k, r in enumerate(rows)}
    opts = [(slot[flat[i][0]], flat[i][1]) for i in which]
    longest = max(len(o) for _, o in opts)
    hidden, cache = model.prefill(prompts, pad_id, extra=0)
    first = torch.log_softmax(model.logits(hidden).float(), dim=-1)  # [B, V]
    device = hidden.device
    sel = torch.tensor([k for k, _ in opts], device=device)
    firsts = first[sel, torch.tensor([o[0] for _, o in opts], device=device)]
    picked = torch.zeros(len(opts), 0, device=device)
    if longest > 1:
        t = longest - 1
        ids = torch.full((len(opts), t), pad_id, dtype=torch.long)
        real = torch.zeros(len(opts), t, dtype=torch.bool)
        targets = torch.zeros(len(opts), t, dtype=torch.long)
        for i, (_, o) in enumerate(opts):
            n = len(o) - 1
            ids[i, :n] = torch.tensor(o[:-1])
            targets[i, :n] = torch.tensor(o[1:])
            real[i, :n] = True
        ids, targets = ids.to(device), targets.to(device)
        sub = cache.select(sel, extra=t)
        logp = torch.log_softmax(model.logits(model.extend(sub, ids, real)).float(), dim=-1)
        picked = logp.gather(2, targets[..., None]).squeeze(-1)
    values = torch.cat([firsts[:, None], picked], dim=1).tolist()
    return [row[: len(o)] for row, (_, o) in zip(values, opts, strict=True)]


def _full_forwards(
    model: QwenVLModel,
    prompts: Sequence[PromptInputs],
    flat: Sequence[tuple[int, list[int]]],
    which: Sequence[int],
    pad_id: int,
) -> list[list[float]]:
    """Token log-probs of the options `which` by a forward over each `(prompt + option)[:-1]`.
    Sequences of equal length share a forward (no padding: the fast causal kernels)."""
    seqs = {}
    for i in which:
        r, o = flat[i]
        p = prompts[r]
        seqs[i] = PromptInputs(p.ids + o[:-1], p.image_offsets, p.pixels)
    by_len: dict[int, list[int]] = {}
    for i in which:
        by_len.setdefault(len(seqs[i].ids), []).append(i)
    out: dict[int, list[float]] = {}
    for group in by_len.values():
        tail = max(len(flat[i][1]) for i in group)
        hidden, _ = model.prefill([seqs[i] for i in group], pad_id, extra=0, last=tail)
        logp = torch.log_softmax(model.logits(hidden).float(), dim=-1)  # [B, tail, V]
        for k, i in enumerate(group):
            o = flat[i][1]
            rows = logp[k, tail - len(o) :]
            target = torch.tensor(o, device=rows.device)[:, None]
            out[i] = rows.gather(1, target)[:, 0].tolist()
    return [out[i] for i in which]
