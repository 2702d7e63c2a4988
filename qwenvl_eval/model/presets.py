"""Model presets and model resolution: a preset name, a local checkpoint folder, or a Hub id
found in the LOCAL Hugging Face cache (never downloaded)."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .families import MODEL_TYPES, Family, get_family


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    hub_id: str | None = None  # looked up in the local HF cache only
    tiny: str | None = None  # "module:function" that writes a tiny checkpoint into a folder
    description: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "tiny-qwen2-vl",
            "qwen2-vl",
            tiny="qwenvl_eval.model.tiny:build_qwen2_vl",
            description="tiny random-weight Qwen2-VL built locally (tests, demo)",
        ),
        Preset(
            "tiny-qwen2.5-vl",
            "qwen2.5-vl",
            tiny="qwenvl_eval.model.tiny:build_qwen2_5_vl",
            description="tiny random-weight Qwen2.5-VL built locally",
        ),
        Preset(
            "tiny-qwen3-vl",
            "qwen3-vl",
            tiny="qwenvl_eval.model.tiny:build_qwen3_vl",
            description="tiny random-weight Qwen3-VL built locally",
        ),
        # Head size 32: what vLLM's CPU attention accepts (it refuses the presets above).
        Preset(
            "tiny-qwen2-vl-hs32",
            "qwen2-vl",
            tiny="qwenvl_eval.model.tiny:build_qwen2_vl_hs32",
            description="tiny Qwen2-VL with head size 32 (vLLM on CPU)",
        ),
        Preset(
            "tiny-qwen2.5-vl-hs32",
            "qwen2.5-vl",
            tiny="qwenvl_eval.model.tiny:build_qwen2_5_vl_hs32",
            description="tiny Qwen2.5-VL with head size 32 (vLLM on CPU)",
        ),
        Preset(
            "tiny-qwen3-vl-hs32",
            "qwen3-vl",
            tiny="qwenvl_eval.model.tiny:build_qwen3_vl_hs32",
            description="tiny Qwen3-VL with head size 32 (vLLM on CPU)",
        ),
        Preset(
            "tiny-qwen-vl",
            "qwen-vl",
            tiny="qwenvl_eval.model.qwen_vl.tiny:build_tiny",
            description="tiny random-weight Qwen-VL (v1), official layout",
        ),
        Preset(
            "demo-qwen2-vl",
            "qwen2-vl",
            tiny="qwenvl_eval.model.demo:install_qwen2_vl",
            description="tiny Qwen2-VL trained on synthetic items (demo: answers, non-zero scores)",
        ),
        Preset(
            "demo-qwen2-vl-weak",
            "qwen2-vl",
            tiny="qwenvl_eval.model.demo:install_qwen2_vl_weak",
            description="the demo Qwen2-VL stopped early (a weaker checkpoint for the gate demo)",
        ),
        Preset("qwen-vl", "qwen-vl", hub_id="Qwen/Qwen-VL", description="Qwen-VL (paper)"),
        Preset(
            "qwen-vl-chat",
            "qwen-vl-chat",
            hub_id="Qwen/Qwen-VL-Chat",
            description="Qwen-VL-Chat (paper)",
        ),
        Preset("qwen2-vl-2b", "qwen2-vl", hub_id="Qwen/Qwen2-VL-2B-Instruct"),
        Preset("qwen2-vl-7b", "qwen2-vl", hub_id="Qwen/Qwen2-VL-7B-Instruct"),
        Preset("qwen2.5-vl-3b", "qwen2.5-vl", hub_id="Qwen/Qwen2.5-VL-3B-Instruct"),
        Preset("qwen2.5-vl-7b", "qwen2.5-vl", hub_id="Qwen/Qwen2.5-VL-7B-Instruct"),
        Preset("qwen3-vl-2b", "qwen3-vl", hub_id="Qwen/Qwen3-VL-2B-Instruct"),
        Preset("qwen3-vl-8b", "qwen3-vl", hub_id="Qwen/Qwen3-VL-8B-Instruct"),
    ]
}


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user typed
    path: Path
    family: Family
    revision: str | None  # Hub commit for cached snapshots, tiny builder version for tiny ones
    preset: str | None


def cache_dir() -> Path:
    """Where tiny checkpoints are built: $QWENVL_EVAL_CACHE, else ~/.cache/qwenvl_eval."""
    env = os.environ.get("QWENVL_EVAL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "qwenvl_eval"


def _builder(ref: str):
    module, func = ref.split(":")
    return getattr(importlib.import_module(module), func)


def build_tiny(preset: Preset) -> tuple[Path, str]:
    """Build (once) the preset's tiny checkpoint; atomic, so a killed build leaves no half dir."""
    assert preset.tiny is not None
    fn = _builder(preset.tiny)
    version = str(getattr(fn, "version", "1"))
    dest = cache_dir() / "models" / f"{preset.name}-v{version}"
    if not (dest / "config.json").exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(dest.parent):
            if (dest / "config.json").exists():  # another process built it while we waited
                return dest, f"tiny-v{version}"
            tmp = Path(tempfile.mkdtemp(prefix=f".{preset.name}-", dir=dest.parent))
            try:
                with quiet_progress_bars():
                    fn(tmp)
                tmp.rename(dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest, f"tiny-v{version}"


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One build at a time per cache. Whoever holds the lock owns every `.tiny-*` folder in
    it, so those left by a killed build are deleted here instead of piling up."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (no advisory locks: build without clean-up)
        yield
        return
    with open(folder / ".build.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        for stale in folder.glob(".tiny-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """transformers draws progress bars when it saves or loads a checkpoint; ours is enough."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def family_of(
    spec: str, family: str | None = None, *, otherwise: Callable[[str], Family] | None = None
) -> Family:
    """The model's family without building or loading anything (for preparing requests).
    A spec that is no preset and no folder is a Hub id, looked up in the local HF cache,
    unless `otherwise` tells its family another way."""
    if family:
        return get_family(family)
    if spec in PRESETS:
        return get_family(PRESETS[spec].family)
    path = Path(spec).expanduser()
    if path.is_dir():
        return _family_of_folder(path)
    return otherwise(spec) if otherwise is not None else resolve_model(spec).family


def _family_of_folder(path: Path, name: str | None = None) -> Family:
    """The family from config.json's model_type; `name` (a Hub id or folder name) tells
    Qwen-VL-Chat from Qwen-VL, which share one model_type."""
    cfg_path = path / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise UserError(f"{cfg_path}: not found; expected a model checkpoint folder") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{cfg_path}: unreadable model config ({exc})") from None
    model_type = cfg.get("model_type")
    if model_type not in MODEL_TYPES:
        raise UserError(
            f"{cfg_path}: model_type {model_type!r} is not a Qwen-VL family "
            f"(expected one of {', '.join(MODEL_TYPES)})"
        )
    family = MODEL_TYPES[model_type]
    if family.name == "qwen-vl" and "chat" in (name or path.name).lower():
        family = get_family("qwen-vl-chat")
    return family


def _from_hf_cache(hub_id: str) -> tuple[Path, str | None]:
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:
        raise UserError(
            f"model {hub_id!r} is not in the local Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); nothing is downloaded: "
            f"pass --model /path/to/checkpoint instead"
        ) from None
    return path, path.name  # snapshots/<commit>


def resolve_model(spec: str, family: str | None = None) -> ResolvedModel:
    """`spec` is a folder, a preset name, or a Hub id present in the local cache."""
    fam_override = get_family(family) if family else None
    path = Path(spec).expanduser()
    if path.is_dir():
        fam = fam_override or _family_of_folder(path)
        return ResolvedModel(spec, path.resolve(), fam, None, None)
    if spec in PRESETS:
        preset = PRESETS[spec]
        if preset.tiny:
            built, revision = build_tiny(preset)
        else:
            built, revision = _from_hf_cache(preset.hub_id or "")
        fam = fam_override or get_family(preset.family)
        return ResolvedModel(spec, built, fam, revision, preset.name)
    if "/" in spec and not spec.startswith((".", "/", "~")):
        built, revision = _from_hf_cache(spec)
        fam = fam_override or _family_of_folder(built, spec)
        return ResolvedModel(spec, built, fam, revision, None)
    close = difflib.get_close_matches(spec, list(PRESETS), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UserError(
        f"unknown model {spec!r}: not a folder, not a preset.{hint} "
        f"Run `qwenvl-eval models` for the presets."
    )
