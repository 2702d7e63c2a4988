"""The whole Qwen-VL model (`transformer.*` + `lm_head`) and its batched forward steps.

Left padding and positions. The original code gives each token the position of its index in
the key/value sequence, pads included, and derives the NTK alpha from the padded length and
the log-n factor from the padded index. A row's result would then depend on how long the
other rows of its batch are (bf16 rounding of the rotary angles below 2048 tokens; the NTK
alpha and the log-n factors beyond). Here each row counts positions from its own first real
token and takes its NTK alpha from its own real length; rotary, NTK and log-n all use these
positions. Each row therefore sees exactly what the original code computes for that prompt at
batch size 1, and batch size 1 and N give the same outputs. Pad tokens never serve as keys
(a pad query attends only to itself, which keeps its row free of NaNs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import N_QUERIES, QwenVLConfig
from .language import LognTable, QWenBlock, RMSNorm, StepInputs, ntk_alpha, rotary_inv_freq
from .vision import VisionTransformer, normalize_pixels


@dataclass
class PromptInputs:
    """One tokenised prompt: ids (image slots included), where each `<img>` tag sits, and the
    images' resized pixels (uint8 [3, S, S]) in the order of the tags."""

    ids: list[int]
    image_offsets: list[int]
    pixels: list[torch.Tensor] = field(default_factory=list)


class KVCache:
    """Preallocated keys/values for B rows, plus each row's pad mask, next position and
    rotary frequencies (fixed at prefill: decoding reuses the prefill's NTK alpha)."""

    def __init__(self, cfg: QwenVLConfig, batch: int, capacity: int, dtype, device) -> None:
        shape = (batch, cfg.num_attention_heads, capacity, cfg.kv_channels)
        self.k = [
            torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.num_hidden_layers)
        ]
        self.v = [
            torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.num_hidden_layers)
        ]
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool, device=device)
        self.next_pos = torch.zeros(batch, dtype=torch.long, device=device)
        self.inv_freq = torch.empty(0, device=device)  # [B, rotary_dim / 2]
        self.length = 0
        # Host-side facts, so that decoding steps need no device sync to know them:
        self.pos_bound = 0  # every position so far is below this
        self.all_valid = True  # no pad slot among the keys

    @property
    def capacity(self) -> int:
        return self.valid.size(1)

    def select(self, rows: torch.Tensor, extra: int) -> KVCache:
        """A new cache holding `rows` (repeats allowed) with room for `extra` more tokens."""
        new = KVCache.__new__(KVCache)
        n = self.length

        def take(t: torch.Tensor) -> torch.Tensor:
            out = t.new_empty((rows.numel(), t.size(1), n + extra, t.size(3)))
            out[:, :, :n] = t[rows, :, :n]
            return out

        new.k = [take(t) for t in self.k]
        new.v = [take(t) for t in self.v]
        new.valid = torch.zeros(rows.numel(), n + extra, dtype=torch.bool, device=self.valid.device)
        new.valid[:, :n] = self.valid[rows, :n]
        new.next_pos = self.next_pos[rows].clone()
        new.inv_freq = self.inv_freq[rows]
        new.length = n
        new.pos_bound = self.pos_bound
        new.all_valid = self.all_valid
        return new


class QWenModel(nn.Module):
    def __init__(self, cfg: QwenVLConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.h = nn.ModuleList(QWenBlock(cfg) for _ in range(cfg.num_hidden_layers))
        self.ln_f = RMSNorm(cfg.hidden_size, cfg.layer_norm_epsilon)
        self.visual = VisionTransformer(cfg.visual)


class QwenVLModel(nn.Module):
    """Parameter names and shapes are exactly the published checkpoint's."""

    # Images encoded per vision-tower call: bounds activation memory on few-shot batches.
    vision_chunk: int = 32

    def __init__(self, cfg: QwenVLConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transformer = QWenModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.logn = LognTable(cfg.seq_length)
        self._inv_freq: dict[tuple[int, str], torch.Tensor] = {}

    # ---- pieces --------------------------------------------------------------------------
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, S, S] -> [N, 256, hidden] in the model's dtype."""
        device = self.lm_head.weight.device
        outs = [
            self.transformer.visual(normalize_pixels(chunk.to(device)))
            for chunk in pixels.split(self.vision_chunk)
        ]
        return torch.cat(outs).to(self.lm_head.weight.dtype)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm + lm_head on the positions asked for only (never a full [L, vocab])."""
        return self.lm_head(self.transformer.ln_f(hidden))

    def _row_inv_freq(self, lengths: Sequence[int], device: torch.device) -> torch.Tensor:
        cfg = self.config
        rows = []
        for n in lengths:
            alpha = ntk_alpha(n, cfg.seq_length) if cfg.use_dynamic_ntk else 1
            key = (alpha, str(device))
            if key not in self._inv_freq:
                self._inv_freq[key] = rotary_inv_freq(
                    cfg.rotary_emb_base, alpha, cfg.rotary_dim, device
                )
            rows.append(self._inv_freq[key])
        return torch.stack(rows)

    def _step(self, x: torch.Tensor, positions: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Run all layers over T new tokens (embeddings `x` [B, T, H]) appended to `cache`;
        `positions` [B, T] must be below `cache.pos_bound`."""
        b, t, _ = x.shape
        start, end = cache.length, cache.length + t
        if end > cache.capacity:
            raise RuntimeError(f"KV cache overflow: {end} > {cache.capacity}")
        freqs = positions.float()[..., None] * cache.inv_freq[:, None, :]  # [B, T, rot/2]
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [B, 1, T, rot]
        logn = None
        if self.config.use_logn_attn:
            logn = self.logn.factors(positions, cache.pos_bound)[:, None, :, None]
        if (start == 0 or t == 1) and cache.all_valid:
            # No pads: plain causal attention (the fast kernels), or one query seeing all.
            mask, is_causal = None, t > 1
        else:
            q_idx = torch.arange(start, end, device=x.device)
            k_idx = torch.arange(end, device=x.device)
            causal = k_idx[None, :] <= q_idx[:, None]
            itself = k_idx[None, :] == q_idx[:, None]
            valid = cache.valid[:, None, :end]
            mask = (causal[None] & (valid | itself[None]))[:, None]
            is_causal = False
        step = StepInputs(emb.cos(), emb.sin(), logn, mask, is_causal, start, end)
        for i, block in enumerate(self.transformer.h):
            x = block(x, step, cache.k[i], cache.v[i])
        cache.length = end
        cache.next_pos = cache.next_pos + t
        return x

    # ---- steps ---------------------------------------------------------------------------
    def prefill(
        self, prompts: Sequence[PromptInputs], pad_id: int, extra: int, last: int = 0
    ) -> tuple[torch.Tensor, KVCache]:
        """Left-pad and run the prompts; returns the last position's hidden state [B, H] (or,
        with `last` > 0, the last `last` positions' [B, last, H]) and a cache with room for
        `extra` more tokens."""
        device = self.lm_head.weight.device
        dtype = self.lm_head.weight.dtype
        lengths = [len(p.ids) for p in prompts]
        b, width = len(prompts), max(lengths)
        pads = torch.tensor([width - n for n in lengths], device=device)
        ids = torch.full((b, width), pad_id, dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p.ids) :] = torch.tensor(p.ids, dtype=torch.long)
        ids = ids.to(device)
        x = self.transformer.wte(ids)
        pixels = [px for p in prompts for px in p.pixels]
        if pixels:
            feats = self.encode_images(torch.stack(pixels))
            slots = [
                r * width + (width - len(p.ids)) + off + 1 + s
                for r, p in enumerate(prompts)
                for off in p.image_offsets
                for s in range(N_QUERIES)
            ]
            index = torch.tensor(slots, dtype=torch.long, device=device)
            x = x.reshape(b * width, -1).index_copy(0, index, feats.reshape(-1, x.size(-1)))
            x = x.view(b, width, -1)
        cache = KVCache(self.config, b, width + extra, dtype, device)
        cache.valid[:, :width] = torch.arange(width, device=device)[None, :] >= pads[:, None]
        cache.inv_freq = self._row_inv_freq(lengths, device)
        cache.all_valid = min(lengths) == width
        cache.pos_bound = width
        positions = (torch.arange(width, device=device)[None, :] - pads[:, None]).clamp(min=0)
        hidden = self._step(x, positions, cache)
        cache.next_pos = torch.tensor(lengths, device=device)
        return (hidden[:, -last:] if last > 0 else hidden[:, -1]), cache

    def extend(
        self, cache: KVCache, ids: torch.Tensor, real: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Append tokens ids [B, T] (right-padded where the CPU bool tensor `real` is False)
        after the cache; returns their hidden states [B, T, H]."""
        b, t = ids.shape
        start = cache.length
        if real is None:
            cache.valid[:, start : start + t] = True
        else:
            cache.all_valid = cache.all_valid and bool(real.all())
            cache.valid[:, start : start + t] = real.to(cache.valid.device)
        cache.pos_bound += t
        positions = cache.next_pos[:, None] + torch.arange(t, device=ids.device)[None, :]
        return self._step(self.transformer.wte(ids), positions, cache)
