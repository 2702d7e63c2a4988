"""Shared fixtures: one tiny official-layout checkpoint per session, built through the preset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from qwenvl_eval.model.presets import resolve_model
from qwenvl_eval.model.qwen_vl.checkpoint import load_model
from qwenvl_eval.model.qwen_vl.tokenizer import QwenVLTokenizer
from qwenvl_eval.types import ImageRef


@pytest.fixture(scope="session")
def tiny_resolved(tmp_path_factory):
    cache = tmp_path_factory.mktemp("qwenvl-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QWENVL_EVAL_CACHE", str(cache))
        return resolve_model("tiny-qwen-vl")


@pytest.fixture(scope="session")
def tiny_dir(tiny_resolved) -> Path:
    return tiny_resolved.path


@pytest.fixture(scope="session")
def tokenizer(tiny_dir) -> QwenVLTokenizer:
    return QwenVLTokenizer(tiny_dir / "qwen.tiktoken")


@pytest.fixture(scope="session")
def model(tiny_dir):
    torch.manual_seed(0)
    return load_model(tiny_dir, torch.float32, "cpu")


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> list[ImageRef]:
    """Four small images of different sizes and content (random noise, fixed seed)."""
    root = tmp_path_factory.mktemp("qwenvl-images")
    rng = np.random.default_rng(7)
    refs = []
    for i, (h, w) in enumerate([(40, 60), (64, 64), (30, 90), (80, 50)]):
        path = root / f"img{i}.png"
        PILImage.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        refs.append(ImageRef(key=str(path), path=path))
    return refs
