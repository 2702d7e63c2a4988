"""The full Qwen-VL configuration, built on the meta device, against the published checkpoint:
853 tensors, their names and shapes, and 9,656,935,168 parameters (PROTOCOL.md section 8,
read off the Qwen/Qwen-VL checkpoint layout)."""

from __future__ import annotations

import torch

from qwenvl_eval.model.qwen_vl.config import OFFICIAL_CONFIG, QwenVLConfig
from qwenvl_eval.model.qwen_vl.modeling import QwenVLModel


def official_names() -> set[str]:
    """The checkpoint's tensor names, written out from its layout (not from our modules)."""
    names = {"transformer.wte.weight", "transformer.ln_f.weight", "lm_head.weight"}
    for i in range(32):
        p = f"transformer.h.{i}."
        names |= {
            p + s
            for s in (
                "ln_1.weight",
                "attn.c_attn.weight",
                "attn.c_attn.bias",
                "attn.c_proj.weight",
                "ln_2.weight",
                "mlp.w1.weight",
                "mlp.w2.weight",
                "mlp.c_proj.weight",
            )
        }
    v = "transformer.visual."
    names |= {
        v + s
        for s in (
            "conv1.weight",
            "positional_embedding",
            "ln_pre.weight",
            "ln_pre.bias",
            "proj",
            "ln_post.weight",
            "ln_post.bias",
            "attn_pool.query",
            "attn_pool.pos_embed",
            "attn_pool.kv_proj.weight",
            "attn_pool.attn.in_proj_weight",
            "attn_pool.attn.in_proj_bias",
            "attn_pool.attn.out_proj.weight",
            "attn_pool.attn.out_proj.bias",
            "attn_pool.ln_q.weight",
            "attn_pool.ln_q.bias",
            "attn_pool.ln_kv.weight",
            "attn_pool.ln_kv.bias",
        )
    }
    for i in range(48):
        p = f"{v}transformer.resblocks.{i}."
        names |= {
            p + s
            for s in (
                "ln_1.weight",
                "ln_1.bias",
                "ln_2.weight",
                "ln_2.bias",
                "attn.in_proj.weight",
                "attn.in_proj.bias",
                "attn.out_proj.weight",
                "attn.out_proj.bias",
                "mlp.c_fc.weight",
                "mlp.c_fc.bias",
                "mlp.c_proj.weight",
                "mlp.c_proj.bias",
            )
        }
    return names


def build_full() -> QwenVLModel:
    with torch.device("meta"):
        return QwenVLModel(QwenVLConfig.from_dict(OFFICIAL_CONFIG))


def test_full_model_has_the_official_tensors_and_parameter_counts():
    model = build_full()
    params = dict(model.named_parameters())
    assert len(params) == 853
    assert set(params) == official_names()
    assert len(model.state_dict()) == 853  # no stray buffers either
    total = sum(p.numel() for p in params.values())
    vision = sum(p.numel() for n, p in params.items() if n.startswith("transformer.visual."))
    assert total == 9_656_935_168
    assert vision == 1_935_610_624
    assert total - vision == 7_721_324_544
    assert total * 2 == 19_313_870_336  # bytes in bf16


def test_full_model_key_shapes():
    shapes = {n: tuple(p.shape) for n, p in build_full().named_parameters()}
    assert shapes["transformer.wte.weight"] == (151936, 4096)
    assert shapes["lm_head.weight"] == (151936, 4096)
    assert shapes["transformer.h.0.attn.c_attn.weight"] == (12288, 4096)
    assert shapes["transformer.h.0.attn.c_attn.bias"] == (12288,)
    assert shapes["transformer.h.31.mlp.w1.weight"] == (11008, 4096)
    assert shapes["transformer.h.31.mlp.w2.weight"] == (11008, 4096)
    assert shapes["transformer.h.31.mlp.c_proj.weight"] == (4096, 11008)
    assert shapes["transformer.visual.conv1.weight"] == (1664, 3, 14, 14)
    assert shapes["transformer.visual.positional_embedding"] == (256, 1664)
    r = "transformer.visual.transformer.resblocks.47."
    assert shapes[r + "attn.in_proj.weight"] == (4992, 1664)
    assert shapes[r + "mlp.c_fc.weight"] == (8192, 1664)
    assert shapes["transformer.visual.attn_pool.kv_proj.weight"] == (4096, 1664)
    assert shapes["transformer.visual.attn_pool.attn.in_proj_weight"] == (12288, 4096)
    assert shapes["transformer.visual.attn_pool.pos_embed"] == (256, 4096)
    assert shapes["transformer.visual.proj"] == (4096, 4096)


def test_official_config_derived_sizes():
    cfg = QwenVLConfig.from_dict(OFFICIAL_CONFIG)
    assert cfg.ffn_dim == 11008
    assert cfg.rotary_dim == 128
    assert cfg.visual.mlp_width == 8192
    assert cfg.visual.grid == 32
    assert cfg.visual.pool_heads == 32
    assert cfg.visual.head_dim == 104
