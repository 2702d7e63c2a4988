"""Tiny checkpoints: deterministic bytes, a real checkpoint layout, the family's tokens."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval.model import tiny

BUILDERS = {
    "qwen2-vl": tiny.build_qwen2_vl,
    "qwen2.5-vl": tiny.build_qwen2_5_vl,
    "qwen3-vl": tiny.build_qwen3_vl,
}
SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def test_build_is_deterministic(tmp_path):
    fn = tiny.build_qwen2_5_vl
    fn(tmp_path / "a")
    fn(tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "model.safetensors" in names and "tokenizer.json" in names
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert all(getattr(f, "version", None) for f in BUILDERS.values())


@pytest.mark.parametrize("family", list(BUILDERS))
def test_checkpoint_loads_like_a_real_one(family, hf_runners):
    from transformers import AutoTokenizer

    runner = hf_runners[family]
    path = runner.path
    cfg = json.loads((path / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    vocab = tok.get_vocab()
    for s in SPECIAL:
        assert s in vocab, s
    assert vocab["<|image_pad|>"] == cfg["image_token_id"]
    assert vocab["<|video_pad|>"] == cfg["video_token_id"]
    assert vocab["<|vision_start|>"] == cfg["vision_start_token_id"]
    assert vocab["<|vision_end|>"] == cfg["vision_end_token_id"]
    text_cfg = cfg.get("text_config", cfg)
    loaded_eos = runner.model.config.get_text_config().eos_token_id
    assert vocab["<|im_end|>"] == text_cfg["eos_token_id"] == loaded_eos
    assert len(tok) == text_cfg["vocab_size"]
    # Special tokens are single tokens, ordinary text is merged by the BPE (not one per byte).
    enc = tok("<|im_start|>user\nWhat is in the image?<|im_end|>", add_special_tokens=False)
    assert enc["input_ids"][0] == vocab["<|im_start|>"]
    assert enc["input_ids"][-1] == vocab["<|im_end|>"]
    assert len(enc["input_ids"]) < len("user\nWhat is in the image?")
    # Real architecture class, weights loaded without missing keys being re-initialised.
    assert (
        type(runner.model).__name__
        == {
            "qwen2-vl": "Qwen2VLForConditionalGeneration",
            "qwen2.5-vl": "Qwen2_5_VLForConditionalGeneration",
            "qwen3-vl": "Qwen3VLForConditionalGeneration",
        }[family]
    )
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        n_saved = len(list(f.keys()))
    assert n_saved == len(runner.model.state_dict())


def test_chat_templates_render_like_the_families(hf_runners):
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    q2 = hf_runners["qwen2-vl"].tokenizer.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True
    )
    q3 = hf_runners["qwen3-vl"].tokenizer.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True
    )
    body = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>\n"
    assert q2 == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        + body
        + "<|im_start|>assistant\n"
    )
    assert q3 == body + "<|im_start|>assistant\n"  # Qwen3-VL has no default system turn
