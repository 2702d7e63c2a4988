"""Load a Qwen-VL checkpoint folder as published: `config.json`, `qwen.tiktoken` and the weights
(`.bin` shards + `pytorch_model.bin.index.json`, a single `pytorch_model.bin`, or the
safetensors equivalents), matched by the checkpoint's own tensor names.

The model is built on the meta device and every tensor is placed as it is read, so the peak
host memory is one shard. Loading is strict: every checkpoint tensor must be consumed and
every model tensor filled with the right shape, otherwise a UserError lists the culprits (a
silently re-initialised tensor is how the original remote code fails on transformers 5).
`.bin` files are pickles: they are read with `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ...errors import UserError
from .config import load_config
from .modeling import QwenVLModel

_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_SINGLES = ("model.safetensors", "pytorch_model.bin")


def weight_files(folder: Path) -> tuple[list[Path], set[str] | None]:
    """The weight files to read, and the tensor names the index promises (None: no index)."""
    for name in _INDEXES:
        index = folder / name
        if not index.exists():
            continue
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            if not isinstance(weight_map, dict):
                raise TypeError("weight_map is not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{index}: unreadable weight index ({exc})") from None
        files = sorted({str(v) for v in weight_map.values()})
        paths = [folder / f for f in files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"{index}: shard(s) not found: {', '.join(missing)}")
        return paths, set(weight_map)
    for name in _SINGLES:
        if (folder / name).is_file():
            return [folder / name], None
    raise UserError(f"{folder}: no weights found (expected {', '.join(_INDEXES + _SINGLES)})")


def read_shard(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise UserError(f"{path}: unreadable safetensors file ({exc})") from None
    else:
        state = _torch_load(path)
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UserError(f"{path}: not a state dict (a mapping of names to tensors)")
    return state


def _torch_load(path: Path):
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything but plain tensors, corrupt zips
        raise UserError(
            f"{path}: cannot be read as plain tensors with torch.load(weights_only=True) "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"refusing to unpickle anything else"
        ) from None


def _listing(kind: str, names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"{kind} ({len(names)}): {shown}{more}"


def _mismatch_error(folder: Path, missing, unexpected, shapes) -> UserError:
    parts = []
    if missing:
        parts.append(_listing("missing from the checkpoint", sorted(missing)))
    if unexpected:
        parts.append(_listing("not used by the model", sorted(unexpected)))
    if shapes:
        parts.append(_listing("wrong shape", shapes))
    return UserError(
        f"{folder}: the weights do not match the Qwen-VL architecture of its config.json: "
        + "; ".join(parts)
    )


def iter_tensors(folder: Path) -> Iterator[tuple[str, torch.Tensor]]:
    files, _ = weight_files(folder)
    for path in files:
        state = read_shard(path)
        yield from state.items()
        del state


def _place(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    owner, _, attr = name.rpartition(".")
    setattr(model.get_submodule(owner), attr, nn.Parameter(tensor, requires_grad=False))


def load_model(folder: Path, dtype: torch.dtype, device: torch.device | str) -> QwenVLModel:
    cfg = load_config(folder / "config.json")
    with torch.device("meta"):
        model = QwenVLModel(cfg)
    expected = {n: tuple(p.shape) for n, p in model.named_parameters()}
    _, promised = weight_files(folder)
    if promised is not None and promised != set(expected):
        # Fail before reading gigabytes when the index already tells.
        raise _mismatch_error(folder, set(expected) - promised, promised - set(expected), [])
    seen: set[str] = set()
    unexpected: list[str] = []
    shapes: list[str] = []
    for name, tensor in iter_tensors(folder):
        if name not in expected:
            unexpected.append(name)
            continue
        if name in seen:
            raise UserError(f"{folder}: tensor {name} appears in more than one shard")
        if tuple(tensor.shape) != expected[name]:
            shapes.append(f"{name} {tuple(tensor.shape)} != {expected[name]}")
            continue
        seen.add(name)
        _place(model, name, tensor.to(device=device).to(dtype=dtype))
    missing = set(expected) - seen - {s.split(" ")[0] for s in shapes}
    if missing or unexpected or shapes:
        raise _mismatch_error(folder, missing, unexpected, shapes)
    return model.eval()
