"""Loads the runner for a resolved model: the backend named in the options (see backends.py),
and for the default backend, the implementation that serves the model's family."""

from __future__ import annotations

from . import backends
from .base import Runner, RunnerOptions
from .presets import ResolvedModel


def load_runner(model: ResolvedModel, options: RunnerOptions) -> Runner:
    backends.check_options(options.backend, options.extra)
    return backends.load(options.backend, model, options)


def load_hf(model: ResolvedModel, options: RunnerOptions) -> Runner:
    """The in-process backend: the native implementation for Qwen-VL v1 (its remote code is
    not run), transformers for the chat-style families."""
    if model.family.name in ("qwen-vl", "qwen-vl-chat"):
        from .qwen_vl.runner import QwenVLRunner

        return QwenVLRunner(model, options)
    from .hf import HFRunner

    return HFRunner(model, options)
