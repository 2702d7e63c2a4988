"""The Qwen-7B decoder layers of Qwen-VL, with the original's inference-time position tricks.

Rotary: all `rotary_dim` dims (128), rotate-half with cat(freqs, freqs), computed in float32.
Dynamic NTK: at prefill, a prompt of L tokens > seq_length (2048) stretches the rotary base by
alpha = 2^ceil(log2(L / 2048) + 1) - 1, base' = base * alpha^(d / (d - 2)); decoding keeps the
prefill's alpha. Log-n: the query at 0-based position p is scaled by log_2048(p + 1) once
p + 1 > 2048.

Positions are given per row by the caller (see `modeling.py`): each row's count starts at its
first real token, so a left-padded row sees exactly what it would see alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import QwenVLConfig


def ntk_alpha(length: int, seq_length: int) -> int:
    """The original `get_ntk_alpha`: 1 up to seq_length, 3 up to 2x, 7 up to 4x, ..."""
    context_value = math.log(length / seq_length, 2) + 1
    return max(2 ** math.ceil(context_value) - 1, 1)


def rotary_inv_freq(base: float, alpha: float, dim: int, device: torch.device) -> torch.Tensor:
    """Inverse frequencies [dim/2] (float32) for an NTK alpha, with the original's expression."""
    scaled = base * alpha ** (dim / (dim - 2))
    return 1.0 / (scaled ** (torch.arange(0, dim, 2, device=device).float() / dim))


class LognTable:
    """Log-n factors per 0-based position, built like the original's `logn_list` (Python
    math.log, then a float32 tensor) and grown on demand instead of capped at 32767."""

    def __init__(self, seq_length: int) -> None:
        self.seq_length = seq_length
        self._tables: dict[str, torch.Tensor] = {}

    def factors(self, positions: torch.Tensor, bound: int) -> torch.Tensor:
        """Factors for `positions`, all of which are < `bound` (known on the host, so that no
        device sync is needed to size the table)."""
        key = str(positions.device)
        table = self._tables.get(key)
        if table is None or table.numel() < bound:
            n = max(bound, 4096, 2 * (0 if table is None else table.numel()))
            s = self.seq_length
            values = [math.log(i, s) if i > s else 1 for i in range(1, n + 1)]
            table = self._tables[key] = torch.tensor(values).to(positions.device)
        return table[positions]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The original's non-fused path: rotate the first rot_dim dims in float32, cast back."""
    rot = cos.size(-1)
    t_, t_pass = t[..., :rot].float(), t[..., rot:].float()
    t_ = t_ * cos + rotate_half(t_) * sin
    return torch.cat((t_, t_pass), dim=-1).type_as(t)


@dataclass
class StepInputs:
    """What every layer needs for one forward step over T new tokens."""

    cos: torch.Tensor  # [B, 1, T, rotary_dim] float32
    sin: torch.Tensor
    logn: torch.Tensor | None  # [B, 1, T, 1] float32, or None when log-n is off
    mask: torch.Tensor | None  # [B, 1, T, end] bool (True = attend), or None
    is_causal: bool  # with mask None: plain causal attention (unpadded prefill)
    start: int  # cache slot of the first new token
    end: int  # start + T


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return out.type_as(x) * self.weight


class QWenAttention(nn.Module):
    def __init__(self, cfg: QwenVLConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.kv_channels
        proj = self.heads * self.head_dim
        self.c_attn = nn.Linear(cfg.hidden_size, 3 * proj)  # q|k|v, with bias
        self.c_proj = nn.Linear(proj, cfg.hidden_size, bias=not cfg.no_bias)

    def forward(
        self, x: torch.Tensor, step: StepInputs, k_cache: torch.Tensor, v_cache: torch.Tensor
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (
            y.view(b, t, self.heads, self.head_dim).transpose(1, 2)
            for y in self.c_attn(x).chunk(3, dim=-1)
        )
        q = apply_rotary(q, step.cos, step.sin)
        k = apply_rotary(k, step.cos, step.sin)
        if step.logn is not None:
            q = q * step.logn.type_as(q)
        k_cache[:, :, step.start : step.end] = k
        v_cache[:, :, step.start : step.end] = v
        out = F.scaled_dot_product_attention(
            q,
            k_cache[:, :, : step.end],
            v_cache[:, :, : step.end],
            attn_mask=step.mask,
            is_causal=step.is_causal,
        )
        return self.c_proj(out.transpose(1, 2).reshape(b, t, -1))


class QWenMLP(nn.Module):
    def __init__(self, cfg: QwenVLConfig) -> None:
        super().__init__()
        bias = not cfg.no_bias
        self.w1 = nn.Linear(cfg.hidden_size, cfg.ffn_dim, bias=bias)
        self.w2 = nn.Linear(cfg.hidden_size, cfg.ffn_dim, bias=bias)
        self.c_proj = nn.Linear(cfg.ffn_dim, cfg.hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The SiLU is on w2, not w1: swapping them silently ruins a loaded checkpoint.
        return self.c_proj(self.w1(x) * F.silu(self.w2(x)))


class QWenBlock(nn.Module):
    def __init__(self, cfg: QwenVLConfig) -> None:
        super().__init__()
        self.ln_1 = RMSNorm(cfg.hidden_size, cfg.layer_norm_epsilon)
        self.attn = QWenAttention(cfg)
        self.ln_2 = RMSNorm(cfg.hidden_size, cfg.layer_norm_epsilon)
        self.mlp = QWenMLP(cfg)

    def forward(
        self, x: torch.Tensor, step: StepInputs, k_cache: torch.Tensor, v_cache: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), step, k_cache, v_cache)
        return x + self.mlp(self.ln_2(x))
