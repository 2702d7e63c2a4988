"""Each architecture quirk of Qwen-VL (PROTOCOL.md section 8) checked against a hand-written
reference that follows the original code, on small random configurations."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qwenvl_eval.model.qwen_vl.config import OFFICIAL_CONFIG, QwenVLConfig
from qwenvl_eval.model.qwen_vl.language import (
    LognTable,
    QWenMLP,
    RMSNorm,
    ntk_alpha,
    rotary_inv_freq,
)
from qwenvl_eval.model.qwen_vl.modeling import PromptInputs, QwenVLModel
from qwenvl_eval.model.qwen_vl.vision import VisualAttention, interpolate_abs_pos

VOCAB = 512


def small_model(seq_length: int = 8) -> QwenVLModel:
    raw = copy.deepcopy(OFFICIAL_CONFIG)
    raw.update(
        hidden_size=32,
        num_attention_heads=2,
        kv_channels=16,
        num_hidden_layers=2,
        intermediate_size=64,
        vocab_size=VOCAB,
        seq_length=seq_length,
    )
    raw["visual"].update(
        heads=2,
        image_size=28,
        layers=2,
        mlp_ratio=2.0,
        output_dim=32,
        width=16,
        image_start_id=VOCAB - 3,
    )
    model = QwenVLModel(QwenVLConfig.from_dict(raw))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    return model.eval()


# ---- vision -------------------------------------------------------------------------------
def test_vision_qkv_is_interleaved_per_head():
    torch.manual_seed(0)
    width, heads = 12, 3
    hd = width // heads
    attn = VisualAttention(width, heads)
    x = torch.randn(2, 5, width)
    w = attn.in_proj.weight.detach().view(heads, 3, hd, width)
    b = attn.in_proj.bias.detach().view(heads, 3, hd)
    outs = []
    for h in range(heads):
        q, k, v = (x @ w[h, j].T + b[h, j] for j in range(3))
        probs = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), dim=-1)
        outs.append(probs @ v)
    expected = attn.out_proj(torch.cat(outs, dim=-1))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)
    # The usual q|k|v reading of the same weights gives something else.
    q, k, v = (
        x @ wj.T + bj
        for wj, bj in zip(attn.in_proj.weight.chunk(3), attn.in_proj.bias.chunk(3), strict=True)
    )
    split = lambda t: t.view(2, 5, heads, hd).transpose(1, 2)  # noqa: E731
    wrong = F.scaled_dot_product_attention(split(q), split(k), split(v))
    wrong = attn.out_proj(wrong.transpose(1, 2).reshape(2, 5, width))
    assert not torch.allclose(attn(x), wrong, atol=1e-3)


def test_position_table_is_bicubic_16_to_4_by_hand():
    # align_corners=False, 16 -> 4: output i samples source 4i + 1.5, i.e. the cubic
    # convolution (a = -0.75) weights at t = 0.5 on source rows 4i .. 4i+3 (no clamping).
    rng = np.random.default_rng(0)
    table = rng.standard_normal((256, 3)).astype(np.float32)
    wts = np.array([-0.09375, 0.59375, 0.59375, -0.09375])
    grid = table.reshape(16, 16, 3)
    expected = np.zeros((4, 4, 3))
    for i in range(4):
        for j in range(4):
            block = grid[4 * i : 4 * i + 4, 4 * j : 4 * j + 4]
            expected[i, j] = np.einsum("a,b,abc->c", wts, wts, block)
    got = interpolate_abs_pos(torch.from_numpy(table), 16)
    np.testing.assert_allclose(got.numpy(), expected.reshape(16, 3), rtol=1e-5, atol=1e-5)
    # A bf16 table is resized in float32 and rounded once at the end.
    bf = torch.from_numpy(table).bfloat16()
    got_bf = interpolate_abs_pos(bf, 16)
    assert got_bf.dtype == torch.bfloat16
    ref = interpolate_abs_pos(bf.float(), 16).bfloat16()
    assert torch.equal(got_bf, ref)
    # Same grid: untouched.
    t = torch.from_numpy(table)
    assert interpolate_abs_pos(t, 256) is t


def reference_vision(vis, pixels: torch.Tensor) -> torch.Tensor:
    """The original visual.py forward, with torch's own nn.MultiheadAttention as resampler."""
    cfg_w = vis.conv1.weight.shape[0]
    heads = vis.transformer.resblocks[0].attn.heads
    hd = cfg_w // heads

    def resize(pos, n):
        s, t = math.isqrt(pos.size(0)), math.isqrt(n)
        g = pos.float().reshape(1, s, s, -1).permute(0, 3, 1, 2)
        out = F.interpolate(g, size=(t, t), mode="bicubic", align_corners=False)
        return out.permute(0, 2, 3, 1).flatten(0, 2)

    def ln(x, m):
        return F.layer_norm(x, x.shape[-1:], m.weight, m.bias, 1e-6)

    x = F.conv2d(pixels, vis.conv1.weight, stride=vis.conv1.stride)
    n = x.shape[0]
    x = x.reshape(n, cfg_w, -1).permute(0, 2, 1)
    x = x + resize(vis.positional_embedding, x.size(1))
    x = ln(x, vis.ln_pre)
    for blk in vis.transformer.resblocks:
        h = ln(x, blk.ln_1)
        mixed = blk.attn.in_proj(h).view(n, -1, heads, 3 * hd)
        q, k, v = (t.permute(0, 2, 1, 3) for t in mixed.split(hd, dim=-1))
        probs = torch.softmax((q / math.sqrt(hd)) @ k.transpose(-1, -2), dim=-1)
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(n, -1, cfg_w)
        x = x + blk.attn.out_proj(ctx)
        x = x + blk.mlp.c_proj(F.gelu(blk.mlp.c_fc(ln(x, blk.ln_2))))
    pool = vis.attn_pool
    dim = pool.query.shape[1]
    mha = nn.MultiheadAttention(dim, pool.attn.heads)
    with torch.no_grad():
        mha.in_proj_weight.copy_(pool.attn.in_proj_weight)
        mha.in_proj_bias.copy_(pool.attn.in_proj_bias)
        mha.out_proj.weight.copy_(pool.attn.out_proj.weight)
        mha.out_proj.bias.copy_(pool.attn.out_proj.bias)
    pos = resize(pool.pos_embed, x.size(1))
    kv = ln(x @ pool.kv_proj.weight.T, pool.ln_kv).permute(1, 0, 2)
    q = ln(pool.query, pool.ln_q)
    out = mha(
        q.unsqueeze(1).repeat(1, n, 1) + pool.pos_embed.unsqueeze(1), kv + pos.unsqueeze(1), kv
    )[0].permute(1, 0, 2)
    return ln(out, vis.ln_post) @ vis.proj


def test_vision_tower_matches_the_original_forward():
    model = small_model()
    pixels = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        got = model.transformer.visual(pixels)
        expected = reference_vision(model.transformer.visual, pixels)
    assert got.shape == (3, 256, 32)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_pool_heads_follow_output_dim_over_128():
    model = small_model()
    assert model.transformer.visual.attn_pool.attn.heads == 1  # 32 // 128 -> at least one
    assert QwenVLConfig.from_dict(OFFICIAL_CONFIG).visual.pool_heads == 32


# ---- language -----------------------------------------------------------------------------
def test_silu_is_on_w2():
    raw = copy.deepcopy(OFFICIAL_CONFIG)
    raw.update(hidden_size=8, num_attention_heads=2, kv_channels=4, intermediate_size=12)
    raw["visual"]["output_dim"] = 8
    mlp = QWenMLP(QwenVLConfig.from_dict(raw))
    torch.manual_seed(0)
    for p in mlp.parameters():
        nn.init.normal_(p)
    x = torch.randn(3, 8)
    a1, a2 = x @ mlp.w1.weight.T, x @ mlp.w2.weight.T
    assert mlp.w1.weight.shape == (6, 8)  # intermediate_size // 2
    expected = (a1 * (a2 * torch.sigmoid(a2))) @ mlp.c_proj.weight.T
    torch.testing.assert_close(mlp(x), expected)
    swapped = (a2 * (a1 * torch.sigmoid(a1))) @ mlp.c_proj.weight.T
    assert not torch.allclose(mlp(x), swapped, atol=1e-3)


def test_rmsnorm_is_computed_in_fp32():
    norm = RMSNorm(4, 1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]).bfloat16())
    norm = norm.bfloat16()
    x = torch.tensor([[3.0, -1.0, 250.0, 0.01]]).bfloat16()
    xf = x.float()
    expected = (xf / torch.sqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).bfloat16() * norm.weight
    assert torch.equal(norm(x), expected)


@pytest.mark.parametrize(
    ("length", "alpha"),
    [
        (1, 1),
        (1024, 1),
        (2047, 1),
        (2048, 1),
        (2049, 3),
        (4096, 3),
        (4097, 7),
        (8192, 7),
        (8193, 15),
    ],
)
def test_dynamic_ntk_alpha(length, alpha):
    assert ntk_alpha(length, 2048) == alpha


def test_ntk_base_and_inverse_frequencies():
    inv = rotary_inv_freq(10000.0, 3, 128, torch.device("cpu"))
    base = 10000.0 * 3 ** (128 / 126)
    expected = 1.0 / (base ** (torch.arange(0, 128, 2).float() / 128))
    assert inv.shape == (64,)
    assert torch.equal(inv, expected)
    assert torch.equal(
        rotary_inv_freq(10000.0, 1, 128, torch.device("cpu")),
        1.0 / (10000.0 ** (torch.arange(0, 128, 2).float() / 128)),
    )


def test_logn_factors_around_2048():
    table = LognTable(2048)
    pos = torch.tensor([[0, 2046, 2047, 2048, 4095, 4096, 40000]])
    got = table.factors(pos, 40001)[0].tolist()
    expected = [
        1.0,
        1.0,
        1.0,
        math.log(2049, 2048),
        math.log(4096, 2048),
        math.log(4097, 2048),
        math.log(40001, 2048),
    ]
    assert got == pytest.approx(expected, rel=1e-7)
    assert got[2] == 1.0 and got[3] > 1.0  # p + 1 = 2048 keeps 1; p + 1 = 2049 scales
    assert got[4] == pytest.approx(12 / 11)


def reference_logits(model: QwenVLModel, ids: list[int], alpha: int | None = None, tail: int = 0):
    """The original modeling_qwen.py prefill of one unpadded sequence (no cache): rotary
    position = index, NTK alpha from the length, log-n on the query; logits of the last token
    (or, with `tail` > 0, of the last `tail` tokens [tail, V])."""
    cfg = model.config
    tf = model.transformer
    n = len(ids)
    dim, hd, nh, s = cfg.rotary_dim, cfg.kv_channels, cfg.num_attention_heads, cfg.seq_length
    if alpha is None:
        alpha = max(2 ** math.ceil(math.log(n / s, 2) + 1) - 1, 1)
    base = cfg.rotary_emb_base * alpha ** (dim / (dim - 2))
    inv = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
    freqs = torch.outer(torch.arange(n).float(), inv)
    emb = torch.cat((freqs, freqs), dim=-1)[None, :, None, :]  # [1, n, 1, dim]
    logn = torch.tensor([math.log(i, s) if i > s else 1 for i in range(1, n + 1)])

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.layer_norm_epsilon) * w

    def rot(t):
        t1, t2 = t[..., : dim // 2], t[..., dim // 2 :]
        return t * emb.cos() + torch.cat((-t2, t1), dim=-1) * emb.sin()

    x = tf.wte.weight[ids][None]
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    for blk in tf.h:
        h = rms(x, blk.ln_1.weight)
        q, k, v = (blk.attn.c_attn(h)).split(cfg.hidden_size, dim=2)
        q, k, v = (t.view(1, n, nh, hd) for t in (q, k, v))
        q, k = rot(q), rot(k)
        q = q * logn[None, :, None, None]
        q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))
        w = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        w = torch.where(causal, w, torch.finfo(w.dtype).min).softmax(-1)
        ctx = (w @ v).transpose(1, 2).reshape(1, n, -1)
        x = x + blk.attn.c_proj(ctx)
        h = rms(x, blk.ln_2.weight)
        x = x + blk.mlp.c_proj(blk.mlp.w1(h) * F.silu(blk.mlp.w2(h)))
    if tail > 0:
        return model.lm_head(rms(x[0, -tail:], tf.ln_f.weight))
    return model.lm_head(rms(x, tf.ln_f.weight))[0, -1]


@pytest.mark.parametrize("length", [5, 8, 9, 16, 17, 40])
@torch.no_grad()
def test_prefill_matches_the_original_around_seq_length(length):
    # seq_length 8: lengths 9..16 use alpha 3, 17..32 alpha 7, 33..64 alpha 15; log-n from 9.
    model = small_model(seq_length=8)
    ids = torch.randint(0, VOCAB - 20, (length,), generator=torch.Generator().manual_seed(length))
    ids = ids.tolist()
    hidden, _ = model.prefill([PromptInputs(ids, [])], pad_id=VOCAB - 20, extra=0)
    torch.testing.assert_close(
        model.logits(hidden)[0], reference_logits(model, ids), rtol=1e-4, atol=1e-4
    )


@torch.no_grad()
def test_decoding_keeps_the_prefill_alpha():
    model = small_model(seq_length=8)
    ids = list(range(10, 18))  # 8 tokens: alpha 1
    hidden, cache = model.prefill([PromptInputs(ids, [])], pad_id=0, extra=2)
    nxt = torch.tensor([[42]])
    step = model.logits(model.extend(cache, nxt)[:, -1])[0]
    # Position 8 (log-n active) with the prefill's alpha 1, not the alpha 3 of 9 tokens.
    torch.testing.assert_close(
        step, reference_logits(model, ids + [42], alpha=1), rtol=1e-4, atol=1e-4
    )
    assert not torch.allclose(step, reference_logits(model, ids + [42]), atol=1e-3)


@torch.no_grad()
def test_left_padded_rows_see_what_they_see_alone():
    # Row lengths straddle seq_length: padding must not change a short row's alpha or log-n.
    model = small_model(seq_length=8)
    gen = torch.Generator().manual_seed(3)
    rows = [torch.randint(0, 400, (n,), generator=gen).tolist() for n in (3, 12, 20, 7)]
    prompts = [PromptInputs(r, []) for r in rows]
    hidden, _ = model.prefill(prompts, pad_id=500, extra=0)
    batched = model.logits(hidden)
    for i, r in enumerate(rows):
        torch.testing.assert_close(batched[i], reference_logits(model, r), rtol=1e-4, atol=1e-4)
