"""The run configuration: everything that decides what a run computes."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .types import stable_hash


@dataclass
class RunConfig:
    model: str
    tasks: list[str]
    data_dir: str | None = None
    data_layout: str = "auto"  # auto | official | eval_mm | hf (tasks/data/formats.py)
    limit: int | None = None
    batch_size: int = 8
    max_batch_tokens: int | None = None
    seed: int = 1234
    output_dir: Path = Path("results")
    device: str = "auto"
    dtype: str = "auto"
    min_pixels: int | None = None
    max_pixels: int | None = None
    family: str | None = None
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    compile: bool = False
    trust_remote_code: bool = False
    resume: bool = True
    preprocess_workers: int = 2

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["output_dir"] = str(self.output_dir)
        return d


def output_affecting(
    config: RunConfig, model_revision: str | None, model_path: str, dtype: str, device: str
) -> dict[str, Any]:
    """The settings that change answers. Batch size and limit do not (the runner is
    batch-invariant; a larger limit only adds items), so a run may resume with other values."""
    extra = {} if config.data_layout == "auto" else {"data_layout": config.data_layout}
    return extra | {
        "model_path": model_path,
        "model_revision": model_revision,
        "family": config.family,
        "dtype": dtype,
        "device_type": device.split(":")[0],
        "min_pixels": config.min_pixels,
        "max_pixels": config.max_pixels,
        "gen_kwargs": config.gen_kwargs,
        "seed": config.seed,
        "data_dir": config.data_dir,
    }


def run_dir_name(model_spec: str, fingerprint: dict[str, Any]) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model_spec).name or model_spec).strip("_")
    return f"{slug or 'model'}-{stable_hash(fingerprint)[:8]}"


def parse_gen_kwargs(text: str | None) -> dict[str, Any]:
    """`max_new_tokens=20,length_penalty=1.0` -> typed dict (ints, floats, bools, strings)."""
    from .errors import UserError

    out: dict[str, Any] = {}
    if not text:
        return out
    for pair in text.split(","):
        if not pair.strip():
            continue
        if "=" not in pair:
            raise UserError(f"--gen-kwargs: expected key=value, got {pair.strip()!r}")
        key, raw = (s.strip() for s in pair.split("=", 1))
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        out[key] = value
    return out
