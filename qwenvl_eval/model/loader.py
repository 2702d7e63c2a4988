"""Picks the backend for a resolved model. The only place that knows which backend serves
which family."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .base import Runner, RunnerOptions
from .presets import ResolvedModel


def load_runner(model: ResolvedModel, options: RunnerOptions) -> Runner:
    try:
        runner = _load(model, options)
    except UserError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # A broken checkpoint (wrong sizes in config.json, truncated or missing weights, no
        # tokenizer) is the user's folder, not a harness bug: one line, not a traceback.
        raise UserError(f"{model.path}: cannot load the model ({_one_line(exc)})") from None
    if getattr(runner, "max_context", None) is None:
        runner.max_context = context_length(Path(model.path))  # type: ignore[attr-defined]
    return runner


def _load(model: ResolvedModel, options: RunnerOptions) -> Runner:
    if model.family.name in ("qwen-vl", "qwen-vl-chat"):
        from .qwen_vl.runner import QwenVLRunner

        return QwenVLRunner(model, options)
    from .hf import HFRunner

    return HFRunner(model, options)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text[:300]}{'...' if len(text) > 300 else ''}"


def context_length(path: Path) -> int | None:
    """The checkpoint's maximum sequence length (prompt + new tokens), from config.json."""
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for section in (cfg, cfg.get("text_config") or {}, cfg.get("llm_config") or {}):
        value = section.get("max_position_embeddings") if isinstance(section, dict) else None
        if isinstance(value, int) and value > 0:
            return value
    return None
