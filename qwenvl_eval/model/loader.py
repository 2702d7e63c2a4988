"""Loads the runner for a resolved model: the backend named in the options (see backends.py),
and for the default backend, the implementation that serves the model's family."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from ..errors import UserError
from . import backends
from .base import Runner, RunnerOptions
from .presets import ResolvedModel


def load_runner(model: ResolvedModel, options: RunnerOptions) -> Runner:
    check_files(model)
    report = _Capture()
    try:
        with report:
            runner = backends.load(options.backend, model, options)
    except UserError:
        raise
    except _LOAD_ERRORS as exc:
        # A broken checkpoint (wrong sizes in config.json, truncated or missing weights) is
        # the user's folder, not a harness bug: one line, not a traceback.
        why = report.mismatch() or _one_line(exc)
        raise UserError(f"{model.path}: cannot load the model ({why})") from None
    if getattr(runner, "max_context", None) is None:
        runner.max_context = context_length(Path(model.path))  # type: ignore[attr-defined]
    return runner


def _safetensors_error() -> tuple[type[BaseException], ...]:
    try:
        from safetensors import SafetensorError

        return (SafetensorError,)
    except ImportError:  # pragma: no cover
        return ()


_LOAD_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    *_safetensors_error(),
)

# Files without which a checkpoint folder cannot tokenise (transformers would otherwise
# build an empty tokenizer and every item would fail): any one group suffices.
_TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("tokenizer.model",))


def check_files(model: ResolvedModel) -> None:
    """What a checkpoint folder must hold, checked before anything loads."""
    path = Path(model.path)
    if not path.is_dir():
        return  # resolved elsewhere (a server backend, say)
    if model.family.name in ("qwen-vl", "qwen-vl-chat"):
        groups: tuple[tuple[str, ...], ...] = (("qwen.tiktoken",),)
    else:
        groups = _TOKENIZER_FILES
    if not any(all((path / f).is_file() for f in g) for g in groups):
        wanted = " or ".join(" + ".join(g) for g in groups)
        raise UserError(f"{path}: no tokenizer in the model folder (expected {wanted})")


class _Capture(logging.Handler):
    """Keeps transformers' load report (printed as a many-line table otherwise) so that a
    size mismatch is told in one line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []
        self._logger = logging.getLogger("transformers")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.records.append(record)

    def __enter__(self) -> _Capture:
        try:  # transformers installs its handler on first use: let it, then stand in for it
            from transformers.utils import logging as hf_logging

            hf_logging.get_verbosity()
        except ImportError:  # pragma: no cover
            pass
        self._old = (self._logger.handlers[:], self._logger.propagate)
        self._logger.handlers = [self]
        self._logger.propagate = False
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._logger.handlers, self._logger.propagate = self._old
        if exc_type is None:  # loaded: what transformers had to say is still worth seeing
            for record in self.records:
                self._logger.handle(record)

    def mismatch(self) -> str | None:
        for text in self.lines:
            m = re.search(r"^(\S+)\s*\|\s*MISMATCH.*?ckpt: (.+?) vs model: ?(.+?)\s*$", text, re.M)
            if m:
                return (
                    f"the weights do not match config.json: {m[1]} is {m[2]} in the checkpoint "
                    f"but {m[3]} by the config"
                )
        return None


def load_hf(model: ResolvedModel, options: RunnerOptions) -> Runner:
    """The in-process backend: the native implementation for Qwen-VL v1 (its remote code is
    not run), transformers for the chat-style families."""
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
