"""The tiny checkpoint is in the official Qwen-VL layout and deterministic."""

from __future__ import annotations

import base64
import json
import re

import torch

from qwenvl_eval.model.qwen_vl.config import OFFICIAL_CONFIG
from qwenvl_eval.model.qwen_vl.tiny import build_tiny

from .test_qwen_vl_architecture import official_names


def templates(names) -> set[str]:
    """Names with layer numbers replaced: the tiny model has fewer layers, same layout."""
    return {re.sub(r"\.(h|resblocks)\.\d+\.", r".\1.N.", n) for n in names}


def test_preset_resolves_to_the_family_and_a_versioned_build(tiny_resolved):
    assert tiny_resolved.family.name == "qwen-vl"
    assert tiny_resolved.revision == f"tiny-v{build_tiny.version}"


def test_config_has_the_official_keys(tiny_dir):
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert set(cfg) == set(OFFICIAL_CONFIG)
    assert set(cfg["visual"]) == set(OFFICIAL_CONFIG["visual"])
    assert cfg["model_type"] == "qwen"
    assert cfg["vocab_size"] == 151936
    assert cfg["visual"]["image_start_id"] == 151857
    assert cfg["seq_length"] == 2048
    assert cfg["intermediate_size"] == 2 * 128


def test_tiktoken_file_has_the_official_number_of_ranks(tiny_dir):
    lines = (tiny_dir / "qwen.tiktoken").read_text().splitlines()
    assert len(lines) == 151643
    token, rank = lines[300].split()
    assert int(rank) == 300 and base64.b64decode(token)
    assert [int(line.split()[1]) for line in lines[:3]] == [0, 1, 2]


def test_weights_are_sharded_bins_with_the_official_names(tiny_dir):
    index = json.loads((tiny_dir / "pytorch_model.bin.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == [f"pytorch_model-{i:05d}-of-00003.bin" for i in (1, 2, 3)]
    assert templates(index["weight_map"]) == templates(official_names())
    assert set(index["weight_map"]) <= official_names()
    total = 0
    for shard in shards:
        state = torch.load(tiny_dir / shard, weights_only=True)
        assert {index["weight_map"][n] for n in state} == {shard}
        assert {t.dtype for t in state.values()} == {torch.bfloat16}
        total += sum(t.numel() * t.element_size() for t in state.values())
    assert index["metadata"]["total_size"] == total


def test_build_is_deterministic(tiny_dir, tmp_path):
    build_tiny(tmp_path)
    assert (tmp_path / "qwen.tiktoken").read_bytes() == (tiny_dir / "qwen.tiktoken").read_bytes()
    for shard in sorted(tmp_path.glob("*.bin")):
        a = torch.load(shard, weights_only=True)
        b = torch.load(tiny_dir / shard.name, weights_only=True)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
