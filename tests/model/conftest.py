"""Shared fixtures for the model-layer tests: tiny checkpoints of each chat family (built once
per session into the session cache) and a few images of different sizes."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

FAMILY_PRESETS = {
    "qwen2-vl": "tiny-qwen2-vl",
    "qwen2.5-vl": "tiny-qwen2.5-vl",
    "qwen3-vl": "tiny-qwen3-vl",
}
# (width, height): small, wide, tall, large enough to hit max_pixels, square
IMAGE_SIZES = [(40, 40), (200, 120), (90, 300), (640, 480), (150, 150), (57, 113)]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The top-level conftest normally sets this already; never build into ~/.cache.
    if "QWENVL_EVAL_CACHE" not in os.environ:
        os.environ["QWENVL_EVAL_CACHE"] = str(tmp_path_factory.mktemp("qwenvl_cache"))
    return Path(os.environ["QWENVL_EVAL_CACHE"])


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-noise PNGs (noise so that every image gives the vision tower something different)."""
    import numpy as np
    from PIL import Image

    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    for i, (w, h) in enumerate(IMAGE_SIZES):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(arr).save(d / f"img{i}.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    return d


@pytest.fixture(scope="session")
def hf_runners(model_cache: Path) -> dict:
    """One loaded HFRunner per family for the whole session (CPU, fp32)."""
    import transformers

    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.hf import HFRunner
    from qwenvl_eval.model.presets import resolve_model

    transformers.logging.set_verbosity_error()
    runners = {}
    for family, preset in FAMILY_PRESETS.items():
        resolved = resolve_model(preset)
        opts = RunnerOptions(device="cpu", dtype="auto", batch_size=1, preprocess_workers=2)
        runners[family] = HFRunner(resolved, opts)
    return runners


def set_batching(runner, batch_size: int, max_batch_tokens: int | None = None, **extra) -> None:
    runner.options = replace(
        runner.options,
        batch_size=batch_size,
        max_batch_tokens=max_batch_tokens,
        backend_options=replace(runner.options.backend_options, **extra),
    )
