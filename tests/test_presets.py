"""Model resolution: folders, presets, and Hub ids found in the local HF cache only."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval.errors import UserError
from qwenvl_eval.model.presets import family_of, resolve_model


def checkpoint(folder, model_type: str):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return folder


@pytest.mark.parametrize(
    ("name", "model_type", "family"),
    [
        ("Qwen2-VL-2B-Instruct", "qwen2_vl", "qwen2-vl"),
        ("Qwen2.5-VL-7B-Instruct", "qwen2_5_vl", "qwen2.5-vl"),
        ("Qwen3-VL-8B-Instruct", "qwen3_vl", "qwen3-vl"),
        ("Qwen-VL", "qwen", "qwen-vl"),
        ("Qwen-VL-Chat", "qwen", "qwen-vl-chat"),
    ],
)
def test_folder_family_comes_from_model_type(tmp_path, name, model_type, family):
    path = checkpoint(tmp_path / name, model_type)
    resolved = resolve_model(str(path))
    assert resolved.family.name == family and resolved.path == path.resolve()
    assert family_of(str(path)).name == family


def test_family_override(tmp_path):
    path = checkpoint(tmp_path / "m", "qwen2_vl")
    assert resolve_model(str(path), "qwen2.5-vl").family.name == "qwen2.5-vl"


def test_not_a_qwen_vl_model(tmp_path):
    path = checkpoint(tmp_path / "llama", "llama")
    with pytest.raises(UserError, match="model_type 'llama' is not a Qwen-VL family"):
        resolve_model(str(path))


def test_preset_found_in_local_hf_cache(tmp_path, monkeypatch):
    """The layout huggingface_hub writes: models--ORG--NAME/{refs/main, snapshots/<commit>/}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--Qwen--Qwen-VL-Chat"
    checkpoint(repo / "snapshots" / commit, "qwen")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    for spec in ("qwen-vl-chat", "Qwen/Qwen-VL-Chat"):
        resolved = resolve_model(spec)
        assert resolved.revision == commit
        assert resolved.family.name == "qwen-vl-chat"
        assert resolved.path == repo / "snapshots" / commit
