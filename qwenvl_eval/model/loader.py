"""Picks the backend for a resolved model. The only place that knows which backend serves
which family."""

from __future__ import annotations

from .base import Runner, RunnerOptions
from .presets import ResolvedModel


def load_runner(model: ResolvedModel, options: RunnerOptions) -> Runner:
    if model.family.name in ("qwen-vl", "qwen-vl-chat"):
        from .qwen_vl.runner import QwenVLRunner

        return QwenVLRunner(model, options)
    from .hf import HFRunner

    return HFRunner(model, options)
