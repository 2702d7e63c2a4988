"""The Qwen-VL (v1) configuration, read from a checkpoint's `config.json` by its official keys.

Missing language-model keys fall back to the defaults of the checkpoint's own
`configuration_qwen.QWenConfig` (which equal the published values); `visual` is required
because the original code has no default for it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UserError

# The published `config.json` of Qwen/Qwen-VL and Qwen/Qwen-VL-Chat (identical architecture).
OFFICIAL_CONFIG: dict[str, Any] = {
    "architectures": ["QWenLMHeadModel"],
    "attn_dropout_prob": 0.0,
    "auto_map": {
        "AutoConfig": "configuration_qwen.QWenConfig",
        "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel",
    },
    "bf16": False,
    "emb_dropout_prob": 0.0,
    "fp16": False,
    "fp32": False,
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 22016,
    "kv_channels": 128,
    "layer_norm_epsilon": 1e-06,
    "max_position_embeddings": 8192,
    "model_type": "qwen",
    "no_bias": True,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "onnx_safe": None,
    "rotary_emb_base": 10000,
    "rotary_pct": 1.0,
    "scale_attn_weights": True,
    "seq_length": 2048,
    "tie_word_embeddings": False,
    "tokenizer_type": "QWenTokenizer",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.31.0",
    "use_cache": True,
    "use_dynamic_ntk": True,
    "use_flash_attn": False,
    "use_logn_attn": True,
    "visual": {
        "heads": 16,
        "image_size": 448,
        "image_start_id": 151857,
        "layers": 48,
        "mlp_ratio": 4.9231,
        "output_dim": 4096,
        "patch_size": 14,
        "width": 1664,
    },
    "vocab_size": 151936,
}

# `configuration_qwen.QWenConfig` defaults for keys a config.json may leave out.
_LM_DEFAULTS: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "layer_norm_epsilon": 1e-6,
    "seq_length": 2048,
    "kv_channels": 128,
    "rotary_pct": 1.0,
    "rotary_emb_base": 10000,
    "use_dynamic_ntk": True,
    "use_logn_attn": True,
    "intermediate_size": 22016,
    "no_bias": True,
}
_VISUAL_KEYS = (
    "heads",
    "image_size",
    "image_start_id",
    "layers",
    "mlp_ratio",
    "output_dim",
    "patch_size",
    "width",
)
# The vision tower's learned position table and the resampler are built for 256 slots (a 16x16
# grid) by the original code, whatever the image size: not a config key there either.
N_QUERIES = 256


@dataclass(frozen=True)
class VisualConfig:
    heads: int
    image_size: int
    image_start_id: int
    layers: int
    mlp_ratio: float
    output_dim: int
    patch_size: int
    width: int

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def mlp_width(self) -> int:
        # int(1664 * 4.9231) = 8192: the original truncates, so must we.
        return int(self.width * self.mlp_ratio)

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def pool_heads(self) -> int:
        # The original uses output_dim // 128 (32 heads of 128). Tiny test models have
        # output_dim < 128, where that would be 0 heads; one head is the natural extension
        # and leaves the official configuration untouched.
        return max(1, self.output_dim // 128)


@dataclass(frozen=True)
class QwenVLConfig:
    hidden_size: int
    num_attention_heads: int
    num_hidden_layers: int
    intermediate_size: int
    kv_channels: int
    rotary_emb_base: float
    rotary_pct: float
    seq_length: int
    use_dynamic_ntk: bool
    use_logn_attn: bool
    layer_norm_epsilon: float
    vocab_size: int
    no_bias: bool
    visual: VisualConfig

    @property
    def head_dim(self) -> int:
        return self.kv_channels

    @property
    def ffn_dim(self) -> int:
        # config.json stores 2 x the MLP width (22016 for 11008): w1 and w2 each get half.
        return self.intermediate_size // 2

    @property
    def rotary_dim(self) -> int:
        if self.rotary_pct == 1.0:
            return self.kv_channels
        return int(self.kv_channels * self.rotary_pct)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config.json") -> QwenVLConfig:
        def bad(key: str, problem: str) -> UserError:
            return UserError(f"{source}: key {key!r} {problem}")

        values = {k: raw.get(k, v) for k, v in _LM_DEFAULTS.items()}
        for key in (
            "hidden_size",
            "num_attention_heads",
            "num_hidden_layers",
            "intermediate_size",
            "kv_channels",
            "seq_length",
            "vocab_size",
        ):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(key, f"must be a positive integer, got {v!r}")
        for key in ("rotary_emb_base", "rotary_pct", "layer_norm_epsilon"):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise bad(key, f"must be a positive number, got {v!r}")
        for key in ("use_dynamic_ntk", "use_logn_attn", "no_bias"):
            if not isinstance(values[key], bool):
                raise bad(key, f"must be true or false, got {values[key]!r}")
        vis = raw.get("visual")
        if not isinstance(vis, dict):
            raise bad("visual", "is missing or not an object (not a Qwen-VL v1 checkpoint?)")
        missing = [k for k in _VISUAL_KEYS if k not in vis]
        if missing:
            raise bad("visual", f"lacks {', '.join(missing)}")
        for key in _VISUAL_KEYS:
            v = vis[key]
            if key == "mlp_ratio":
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            else:
                ok = isinstance(v, int) and not isinstance(v, bool) and v > 0
            if not ok:
                raise bad(f"visual.{key}", f"must be a positive number, got {v!r}")
        visual = VisualConfig(**{k: vis[k] for k in _VISUAL_KEYS})
        cfg = cls(
            hidden_size=values["hidden_size"],
            num_attention_heads=values["num_attention_heads"],
            num_hidden_layers=values["num_hidden_layers"],
            intermediate_size=values["intermediate_size"],
            kv_channels=values["kv_channels"],
            rotary_emb_base=float(values["rotary_emb_base"]),
            rotary_pct=float(values["rotary_pct"]),
            seq_length=values["seq_length"],
            use_dynamic_ntk=values["use_dynamic_ntk"],
            use_logn_attn=values["use_logn_attn"],
            layer_norm_epsilon=float(values["layer_norm_epsilon"]),
            vocab_size=values["vocab_size"],
            no_bias=values["no_bias"],
            visual=visual,
        )
        cfg._check(source)
        return cfg

    def _check(self, source: str) -> None:
        problems = []
        if self.kv_channels * self.num_attention_heads != self.hidden_size:
            problems.append("kv_channels x num_attention_heads must equal hidden_size")
        if self.intermediate_size % 2:
            problems.append("intermediate_size must be even (it is twice the MLP width)")
        if self.rotary_dim % 2 or self.rotary_dim < 4 or self.rotary_dim > self.kv_channels:
            problems.append("rotary dimension (kv_channels x rotary_pct) must be even, >= 4")
        v = self.visual
        if v.output_dim != self.hidden_size:
            problems.append("visual.output_dim must equal hidden_size")
        if v.width % v.heads:
            problems.append("visual.width must be divisible by visual.heads")
        if v.output_dim % v.pool_heads:
            problems.append("visual.output_dim must be divisible by its resampler heads")
        if v.image_size % v.patch_size:
            problems.append("visual.image_size must be a multiple of visual.patch_size")
        if not 0 <= v.image_start_id < self.vocab_size - 2:
            problems.append("visual.image_start_id must lie inside the vocabulary")
        if math.isqrt(N_QUERIES) ** 2 != N_QUERIES:  # pragma: no cover  (constant)
            problems.append("resampler queries must form a square grid")
        if problems:
            raise UserError(f"{source}: not a usable Qwen-VL configuration: {'; '.join(problems)}")


def load_config(path: Path) -> QwenVLConfig:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found; expected a Qwen-VL checkpoint folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable config ({exc})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a JSON object")
    return QwenVLConfig.from_dict(raw, source=str(path))
