"""Tiny random-weight checkpoints of the REAL Qwen2-VL / Qwen2.5-VL / Qwen3-VL architectures.

They are written as a real checkpoint folder (config.json in the shipped format, weights in
model.safetensors with the shipped key layout, a byte-level BPE tokenizer with the family's
special tokens, its chat template, preprocessor and generation configs), so that tests and the
demo load them through exactly the code path of a downloaded checkpoint. Every byte is a
function of this file: same version, same bytes.

Weights are drawn with a larger spread than a trained model's init so that greedy outputs
depend visibly on the image and the text (a near-uniform model would answer the same thing to
everything, and batching bugs would go unnoticed).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

# Byte-level BPE trained on this fixed text. Covers the words of the builtin prompts so that
# tokenisation is not one token per byte.
_CORPUS = """\
What is in the image? Describe the image in English: a photo of a cat sitting on a red sofa.
Answer the question using a single word or phrase. What color is the bus? The bus is yellow.
How many people are in the picture? There are two people standing near a white car.
Is there a dog in the photo? Yes. No. Where is the man? The man is on the left of the tree.
Question: Which of these states is farthest north? Options: A. Ohio B. Maine C. Texas D. Utah
Context: N/A Answer: The answer is A. Read the text in the image. What does the sign say?
Locate the person in the image. Output the bounding box.
<ref>the small boy</ref><box>(12,34),(567,890)</box>
{"bbox_2d": [10, 20, 300, 400], "label": "left zebra"} Give the coordinates of the object.
A group of children playing football in a green park on a sunny day with trees behind them.
A plate of food with rice, vegetables and meat on a wooden table next to a glass of water.
What is the title of this chart? What is the value for 2019? The highest bar is blue 45.6%.
What is written on the document? Total amount due: $1,234.56 Date: 2021-03-04 Invoice number.
Which animal is shown? Giraffe, elephant, horse, sheep, cow, bird, zebra, bear, kite, train.
the of and to in is it on with for at by from that this are was be as an or not what which
0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 0.5 1.0 yes no left right top bottom middle up down
"""

# The Qwen2 special tokens, in the order (and relative ids) of the real vocabulary
# (151643 <|endoftext|> ... 151656 <|video_pad|>), placed right after the tiny BPE vocabulary.
_SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
_BPE_SIZE = 720  # tokens learned from the corpus (bytes + merges)
_SEED = 1234
_WEIGHT_STD = 0.35  # see module docstring

# The pre-tokeniser of transformers' Qwen2Tokenizer (and of the real tokenizer.json).
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Chat templates as shipped. Qwen2-VL-2B-Instruct's tokenizer_config.json and Qwen2.5-VL's
# chat_template.json are the same template; Qwen3-VL-*-Instruct's has no default system turn.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_Q3_CONTENT = """\
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
"""
QWEN3_VL_CHAT_TEMPLATE = (
    """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n\
You are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and \
arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \
\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' }}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
"""
    + _Q3_CONTENT
    + """\
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# ---- tokenizer ---------------------------------------------------------------------------
def _tokenizer_json() -> tuple[str, dict[str, int]]:
    """The tokenizer.json text and the special-token ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    base = tok.get_vocab_size()
    data = json.loads(tok.to_str())
    specials = {name: base + i for i, name in enumerate(_SPECIALS)}
    data["added_tokens"] = [
        {
            "id": i,
            "content": name,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for name, i in specials.items()
    ]
    data["model"]["vocab"].update(specials)
    # Reload once so the JSON is in the library's canonical form (stable across writes).
    text = Tokenizer.from_str(json.dumps(data)).to_str(pretty=True)
    return text, specials


def _tokenizer_config(specials: dict[str, int], chat_template: str) -> dict[str, Any]:
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {
                "content": name,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for name, i in specials.items()
        },
        "additional_special_tokens": [s for s in _SPECIALS if s not in ("<|endoftext|>",)],
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


# ---- configs -----------------------------------------------------------------------------
def _ids(specials: dict[str, int]) -> dict[str, int]:
    return {
        "bos_token_id": specials["<|endoftext|>"],
        "eos_token_id": specials["<|im_end|>"],
        "vision_start_token_id": specials["<|vision_start|>"],
        "vision_end_token_id": specials["<|vision_end|>"],
        "vision_token_id": specials["<|vision_pad|>"],
        "image_token_id": specials["<|image_pad|>"],
        "video_token_id": specials["<|video_pad|>"],
    }


def _vocab_size(specials: dict[str, int]) -> int:
    return max(specials.values()) + 1


_TEXT = {
    "hidden_act": "silu",
    "hidden_size": 64,
    "intermediate_size": 128,
    "max_position_embeddings": 4096,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "use_cache": True,
    "use_sliding_window": False,
    "sliding_window": 4096,
    "max_window_layers": 2,
    "tie_word_embeddings": False,
}


def qwen2_vl_config(specials: dict[str, int]) -> dict[str, Any]:
    """Flat layout, as Qwen2-VL-*-Instruct ships it (head_dim 16 -> mrope sections sum to 8)."""
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        **_ids(specials),
        **_TEXT,
        "vocab_size": _vocab_size(specials),
        "torch_dtype": "float32",
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "vision_config": {
            "depth": 2,
            "embed_dim": 32,
            "mlp_ratio": 2,
            "num_heads": 2,
            "in_chans": 3,
            "hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
    }


def qwen2_5_vl_config(specials: dict[str, int]) -> dict[str, Any]:
    """Flat layout as Qwen2.5-VL ships it; one windowed and one full-attention vision block."""
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        **_ids(specials),
        **_TEXT,
        "vocab_size": _vocab_size(specials),
        "torch_dtype": "float32",
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "vision_config": {
            "depth": 2,
            "hidden_act": "silu",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "in_chans": 3,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 56,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
        },
    }


def qwen3_vl_config(specials: dict[str, int]) -> dict[str, Any]:
    """Nested layout as Qwen3-VL ships it: interleaved mRoPE, deepstack, patch size 16."""
    ids = _ids(specials)
    return {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": ids["image_token_id"],
        "video_token_id": ids["video_token_id"],
        "vision_start_token_id": ids["vision_start_token_id"],
        "vision_end_token_id": ids["vision_end_token_id"],
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "qwen3_vl_text",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": ids["bos_token_id"],
            "eos_token_id": ids["eos_token_id"],
            "dtype": "float32",
            "head_dim": 16,
            "hidden_act": "silu",
            "hidden_size": 64,
            "initializer_range": 0.02,
            "intermediate_size": 128,
            "max_position_embeddings": 4096,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "mrope_interleaved": True,
                "mrope_section": [2, 3, 3],
                "rope_type": "default",
            },
            "rope_theta": 5000000,
            "use_cache": True,
            "vocab_size": _vocab_size(specials),
        },
        "vision_config": {
            "model_type": "qwen3_vl",
            "deepstack_visual_indexes": [0],
            "depth": 2,
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": 32,
            "in_channels": 3,
            "initializer_range": 0.02,
            "intermediate_size": 64,
            "num_heads": 2,
            "num_position_embeddings": 64,
            "out_hidden_size": 64,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
    }


# Small pixel budgets keep tests fast: 4 to 64 merged image tokens per image.
def _preprocessor(patch: int, mean: list[float], std: list[float], processor: str) -> dict:
    factor = patch * 2
    return {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": mean,
        "image_std": std,
        "image_processor_type": "Qwen2VLImageProcessor",
        "max_pixels": factor * factor * 64,
        "merge_size": 2,
        "min_pixels": factor * factor * 4,
        "patch_size": patch,
        "processor_class": processor,
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "temporal_patch_size": 2,
    }


# ---- weights -----------------------------------------------------------------------------
def _init_weights(model: Any, family: str) -> None:
    """Seeded, order-independent init: each tensor gets a generator seeded from its name."""
    import hashlib

    import torch

    for name, param in model.named_parameters():
        seed = int.from_bytes(
            hashlib.sha256(f"{_SEED}:{family}:{name}".encode()).digest()[:8], "little"
        )
        gen = torch.Generator().manual_seed(seed % (2**63))
        with torch.no_grad():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
            elif param.ndim == 1:  # norm scales
                param.copy_(1.0 + torch.randn(param.shape, generator=gen) * 0.1)
            else:
                fan_in = math.prod(param.shape[1:]) if param.ndim > 1 else param.shape[0]
                std = (
                    _WEIGHT_STD
                    if "embed" in name
                    else max(_WEIGHT_STD / math.sqrt(fan_in) * 4, 0.05)
                )
                param.copy_(torch.randn(param.shape, generator=gen) * std)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def head_size_32(cfg: dict[str, Any]) -> dict[str, Any]:
    """The same tiny model with attention heads of size 32 (2 heads of 32 instead of 4 of 16,
    text and vision): vLLM's CPU attention refuses head size 16. Weights differ, so it is a
    preset of its own; the size-16 presets stay as they are."""
    cfg = json.loads(json.dumps(cfg))
    text = cfg.get("text_config", cfg)
    text.update(num_attention_heads=2, num_key_value_heads=1)
    if "head_dim" in text:
        text["head_dim"] = 32
    rope = text.get("rope_scaling") or {}
    rope["mrope_section"] = [4, 6, 6]  # sums to head_dim / 2
    vision = cfg["vision_config"]
    if "embed_dim" in vision:  # Qwen2-VL
        vision["embed_dim"] = 64
    else:
        vision.update(hidden_size=64, intermediate_size=128)
    vision["num_heads"] = 2
    return cfg


def _build(dest: Path, family: str, head_size: int = 16) -> None:
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tok_json, specials = _tokenizer_json()
    if family == "qwen2-vl":
        cfg = qwen2_vl_config(specials)
        model_cls, cfg_cls = "Qwen2VLForConditionalGeneration", "Qwen2VLConfig"
        template, proc = QWEN2_VL_CHAT_TEMPLATE, "Qwen2VLProcessor"
        pre = _preprocessor(14, CLIP_MEAN, CLIP_STD, proc)
    elif family == "qwen2.5-vl":
        cfg = qwen2_5_vl_config(specials)
        model_cls, cfg_cls = "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLConfig"
        template, proc = QWEN2_VL_CHAT_TEMPLATE, "Qwen2_5_VLProcessor"
        pre = _preprocessor(14, CLIP_MEAN, CLIP_STD, proc)
    elif family == "qwen3-vl":
        cfg = qwen3_vl_config(specials)
        model_cls, cfg_cls = "Qwen3VLForConditionalGeneration", "Qwen3VLConfig"
        template, proc = QWEN3_VL_CHAT_TEMPLATE, "Qwen3VLProcessor"
        pre = _preprocessor(16, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], proc)
    else:  # pragma: no cover
        raise ValueError(family)
    if head_size == 32:
        cfg = head_size_32(cfg)

    config = getattr(transformers, cfg_cls)(**cfg)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        model = getattr(transformers, model_cls)(config).eval()
    finally:
        torch.set_default_dtype(prev)
    _init_weights(model, family)
    # save_pretrained writes the weights in the checkpoint key layout real checkpoints use;
    # the config is ours (the shipped format), written after it.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            (dest / "model.safetensors").write_bytes((Path(tmp) / "model.safetensors").read_bytes())
    finally:
        if bars:
            hf_logging.enable_progress_bar()

    _write_json(dest / "config.json", cfg)
    (dest / "tokenizer.json").write_text(tok_json)
    _write_json(dest / "tokenizer_config.json", _tokenizer_config(specials, template))
    _write_json(dest / "chat_template.json", {"chat_template": template})
    _write_json(dest / "preprocessor_config.json", pre)
    _write_json(
        dest / "generation_config.json",
        {
            "bos_token_id": specials["<|endoftext|>"],
            "do_sample": False,
            "eos_token_id": [specials["<|im_end|>"], specials["<|endoftext|>"]],
            "pad_token_id": specials["<|endoftext|>"],
        },
    )
    (dest / "README.md").write_text(
        f"Tiny random-weight {family} checkpoint built by qwenvl_eval.model.tiny "
        f"(version {VERSION}). For tests only: its outputs are meaningless.\n"
    )


VERSION = "1"


def build_qwen2_vl(dest: Path) -> None:
    _build(dest, "qwen2-vl")


def build_qwen2_5_vl(dest: Path) -> None:
    _build(dest, "qwen2.5-vl")


def build_qwen3_vl(dest: Path) -> None:
    _build(dest, "qwen3-vl")


def build_qwen2_vl_hs32(dest: Path) -> None:
    _build(dest, "qwen2-vl", head_size=32)


def build_qwen2_5_vl_hs32(dest: Path) -> None:
    _build(dest, "qwen2.5-vl", head_size=32)


def build_qwen3_vl_hs32(dest: Path) -> None:
    _build(dest, "qwen3-vl", head_size=32)


for _fn in (
    build_qwen2_vl,
    build_qwen2_5_vl,
    build_qwen3_vl,
    build_qwen2_vl_hs32,
    build_qwen2_5_vl_hs32,
    build_qwen3_vl_hs32,
):
    _fn.version = VERSION  # type: ignore[attr-defined]
