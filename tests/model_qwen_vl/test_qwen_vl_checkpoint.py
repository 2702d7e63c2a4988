"""Loading a checkpoint folder by its own tensor names: strict, weights_only, clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from qwenvl_eval.errors import UserError
from qwenvl_eval.model.qwen_vl import checkpoint
from qwenvl_eval.model.qwen_vl.checkpoint import load_model


def copy_ckpt(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_loads_every_tensor_from_bin_shards_with_weights_only(tiny_dir, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "load", spy)
    model = load_model(tiny_dir, torch.float32, "cpu")
    index = json.loads((tiny_dir / "pytorch_model.bin.index.json").read_text())
    assert len(calls) == len(set(index["weight_map"].values())) >= 2
    assert all(c is True for c in calls)
    sd = model.state_dict()
    assert set(sd) == set(index["weight_map"])
    for name, shard in list(index["weight_map"].items())[::37]:
        ref = real_load(tiny_dir / shard, weights_only=True)[name]
        assert torch.equal(sd[name], ref.float()), name
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())


def test_bf16_load(tiny_dir):
    model = load_model(tiny_dir, torch.bfloat16, "cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def _rewrite_shard(folder, edit):
    index = json.loads((folder / "pytorch_model.bin.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    state = torch.load(folder / shard, weights_only=True)
    edit(state, index, shard)
    torch.save(state, folder / shard)
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))


def test_missing_and_unexpected_tensors_are_listed(tiny_dir, tmp_path):
    folder = copy_ckpt(tiny_dir, tmp_path / "ckpt")

    def edit(state, index, shard):
        victim = sorted(state)[0]
        del state[victim]
        del index["weight_map"][victim]
        state["transformer.extra.weight"] = torch.zeros(2)
        index["weight_map"]["transformer.extra.weight"] = shard
        edit.victim = victim

    _rewrite_shard(folder, edit)
    with pytest.raises(UserError) as err:
        load_model(folder, torch.float32, "cpu")
    msg = str(err.value)
    assert "missing from the checkpoint (1): " + edit.victim in msg
    assert "not used by the model (1): transformer.extra.weight" in msg
    assert str(folder) in msg


def test_mismatch_found_while_reading_without_an_index(tiny_dir, tmp_path):
    folder = tmp_path / "single"
    folder.mkdir()
    for f in ("config.json", "qwen.tiktoken"):
        shutil.copy(tiny_dir / f, folder / f)
    state = {}
    for path in sorted(tiny_dir.glob("pytorch_model-*.bin")):
        state.update(torch.load(path, weights_only=True))
    state["lm_head.weight"] = state["lm_head.weight"][:, :10]  # wrong shape
    del state["transformer.visual.proj"]
    state["transformer.visual.rotary.inv_freq"] = torch.ones(3)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(UserError) as err:
        load_model(folder, torch.float32, "cpu")
    msg = str(err.value)
    assert "transformer.visual.proj" in msg and "missing" in msg
    assert "transformer.visual.rotary.inv_freq" in msg
    assert "wrong shape (1): lm_head.weight (151936, 10) != (151936, 64)" in msg


def test_pickled_code_is_refused(tiny_dir, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    for f in ("config.json", "qwen.tiktoken"):
        shutil.copy(tiny_dir / f, folder / f)
    torch.save({"x": torch.zeros(1), "obj": _NotATensor()}, folder / "pytorch_model.bin")
    with pytest.raises(UserError, match="weights_only=True"):
        load_model(folder, torch.float32, "cpu")


class _NotATensor:
    pass


def test_safetensors_folder_loads_the_same(tiny_dir, tmp_path, model):
    from safetensors.torch import save_file

    folder = tmp_path / "st"
    folder.mkdir()
    for f in ("config.json", "qwen.tiktoken"):
        shutil.copy(tiny_dir / f, folder / f)
    state = {}
    for path in sorted(tiny_dir.glob("pytorch_model-*.bin")):
        state.update(torch.load(path, weights_only=True))
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    loaded = load_model(folder, torch.float32, "cpu").state_dict()
    for name, t in model.state_dict().items():
        assert torch.equal(loaded[name], t), name


def test_missing_weights_and_shards(tiny_dir, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    shutil.copy(tiny_dir / "config.json", folder / "config.json")
    with pytest.raises(UserError, match="no weights found"):
        load_model(folder, torch.float32, "cpu")
    shutil.copy(tiny_dir / "pytorch_model.bin.index.json", folder)
    with pytest.raises(UserError, match="shard"):
        load_model(folder, torch.float32, "cpu")


def test_bad_config_is_a_user_error(tiny_dir, tmp_path):
    folder = copy_ckpt(tiny_dir, tmp_path / "cfg")
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["visual"]["width"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="visual.*width"):
        load_model(folder, torch.float32, "cpu")
    cfg = json.loads((tiny_dir / "config.json").read_text())
    cfg["kv_channels"] = 7
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="kv_channels"):
        load_model(folder, torch.float32, "cpu")
