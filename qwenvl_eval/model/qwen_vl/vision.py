"""The Qwen-VL vision tower (`transformer.visual.*`): an OpenCLIP ViT-bigG-style encoder without
a CLS token, and the one-layer cross-attention resampler that turns its 32x32 grid into 256
features in the language model's width.

Parameter names are the published checkpoint's. Two details differ from stock CLIP code and
matter for loading the weights correctly:
- the ViT's `attn.in_proj` rows are interleaved per head as (head, {q, k, v}, head_dim);
- the ViT's position table is a 16x16 grid, bicubically resized (in float32) to the patch grid.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import N_QUERIES, VisualConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LN_EPS = 1e-6


def interpolate_abs_pos(pos: torch.Tensor, tgt_len: int) -> torch.Tensor:
    """Resize a square grid of positions [src*src, C] to [tgt_len, C] like the original
    `get_abs_pos`: bicubic in float32, align_corners=False, back to the table's dtype."""
    src = math.isqrt(pos.size(0))
    tgt = math.isqrt(tgt_len)
    if src == tgt:
        return pos
    grid = pos.float().reshape(1, src, src, -1).permute(0, 3, 1, 2)
    out = F.interpolate(grid, size=(tgt, tgt), mode="bicubic", align_corners=False)
    return out.permute(0, 2, 3, 1).flatten(0, 2).to(dtype=pos.dtype)


def sincos_pos_embed_2d(dim: int, grid: int) -> np.ndarray:
    """The MAE 2D sin-cos table the original resampler is initialised with (stored in the
    checkpoint; used here only to build tiny checkpoints)."""

    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = np.arange(d // 2, dtype=np.float32) / (d / 2.0)
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gh = np.arange(grid, dtype=np.float32)
    gw = np.arange(grid, dtype=np.float32)
    mesh = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, 1, grid, grid)  # w goes first
    return np.concatenate([one_d(dim // 2, mesh[0]), one_d(dim // 2, mesh[1])], axis=1)


def resize_image(image, size: int) -> torch.Tensor:
    """PIL RGB image -> uint8 [3, size, size]: torchvision's Resize((size, size), BICUBIC) on a
    PIL image is exactly PIL's own bicubic resize."""
    from PIL import Image

    resized = image.convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1)


def normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> CLIP-normalised float32, the same float ops as torchvision's
    ToTensor + Normalize (divide by 255, subtract mean, divide by std)."""
    x = pixels.to(torch.float32).div(255)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32, device=x.device)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float32, device=x.device)[:, None, None]
    return x.sub(mean).div(std)


class VisualAttention(nn.Module):
    """Self-attention whose fused projection is laid out per head: (head, {q,k,v}, head_dim)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.in_proj = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        qkv = self.in_proj(x).view(b, n, self.heads, 3 * self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in qkv.split(self.head_dim, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head_dim), no mask
        return self.out_proj(out.transpose(1, 2).reshape(b, n, w))


class VisualBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_width: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=LN_EPS)
        self.attn = VisualAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, mlp_width))
        self.mlp.add_module("gelu", nn.GELU())  # exact erf GELU
        self.mlp.add_module("c_proj", nn.Linear(mlp_width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class VisualTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_width: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(VisualBlock(width, heads, mlp_width) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class PoolAttention(nn.Module):
    """torch.nn.MultiheadAttention's parameters (q|k|v stacked), written out for cross-attention."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        b, nq, d = q.shape
        hd = d // self.heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, x.size(1), self.heads, hd).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(F.linear(q, wq, bq)), heads(F.linear(k, wk, bk)), heads(F.linear(v, wv, bv))
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, nq, d))


class Resampler(nn.Module):
    """256 learned queries cross-attend to the ViT grid; fixed 2D sin-cos positions on both
    sides (the keys' table is resized from 16x16 to the patch grid)."""

    def __init__(self, dim: int, heads: int, kv_dim: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.empty(N_QUERIES, dim))
        self.pos_embed = nn.Parameter(torch.empty(N_QUERIES, dim))
        self.kv_proj = nn.Linear(kv_dim, dim, bias=False)
        self.attn = PoolAttention(dim, heads)
        self.ln_q = nn.LayerNorm(dim, eps=LN_EPS)
        self.ln_kv = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = interpolate_abs_pos(self.pos_embed, x.size(1))
        x = self.ln_kv(self.kv_proj(x))
        q = self.ln_q(self.query).unsqueeze(0).expand(x.size(0), -1, -1)
        return self.attn(q + self.pos_embed, x + pos, x)


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisualConfig) -> None:
        super().__init__()
        w = cfg.width
        self.conv1 = nn.Conv2d(3, w, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.positional_embedding = nn.Parameter(torch.empty(N_QUERIES, w))
        self.ln_pre = nn.LayerNorm(w, eps=LN_EPS)
        self.transformer = VisualTransformer(w, cfg.layers, cfg.heads, cfg.mlp_width)
        self.attn_pool = Resampler(cfg.output_dim, cfg.pool_heads, w)
        self.ln_post = nn.LayerNorm(cfg.output_dim, eps=LN_EPS)
        self.proj = nn.Parameter(torch.empty(cfg.output_dim, cfg.output_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels [N, 3, S, S] -> image features [N, 256, output_dim]."""
        x = self.conv1(pixels.to(dtype=self.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)  # [N, grid*grid, width]
        x = x + interpolate_abs_pos(self.positional_embedding, x.size(1))
        x = self.transformer(self.ln_pre(x))
        x = self.ln_post(self.attn_pool(x))
        return x @ self.proj
