"""The run configuration: everything that decides what a run computes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .judge import JudgeOptions
from .model.base import RunnerOptions
from .types import stable_hash


@dataclass
class RunConfig:
    model: str
    tasks: list[str]
    data_dir: str | None = None
    data_layout: str = "auto"  # auto | official | eval_mm | hf (tasks/data/formats.py)
    limit: int | None = None
    item_set: str = "all"  # all | eval_mm[:GPUSxBATCH] (itemsets.py)
    output_dir: Path = Path("results")
    family: str | None = None
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    resume: bool = True
    max_failures: str | None = None  # "N" or "P%": stop the run once more items fail
    # How the model runs (device, batching, seed, backend and its options): handed as it is
    # to the backend, never copied field by field.
    runner: RunnerOptions = field(default_factory=RunnerOptions)
    # The optional LLM judge (--judge-*): a scoring step, not part of the run's fingerprint
    # (the model's answers do not depend on it).
    judge: JudgeOptions | None = None

    def validate(self) -> None:
        """Everything checkable before any data is read or a model loads: exit 2 up front
        instead of a run whose every item fails."""
        from .errors import UserError
        from .tasks.data.formats import check_layout

        if not [t for t in self.tasks if t.strip()]:
            raise UserError("--tasks: no task named (expected e.g. --tasks vqav2,refcoco)")
        check_layout(self.data_layout)
        if self.judge is not None:
            self.judge.check()
        r = self.runner
        for flag, value in (("--min-pixels", r.min_pixels), ("--max-pixels", r.max_pixels)):
            if value is not None and value < 1:
                raise UserError(f"{flag} {value}: must be a positive number of pixels")
        if r.min_pixels is not None and r.max_pixels is not None and r.min_pixels > r.max_pixels:
            raise UserError(f"--min-pixels {r.min_pixels} is above --max-pixels {r.max_pixels}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit {self.limit}: must be at least 1")
        from .itemsets import parse_item_set

        parse_item_set(self.item_set)
        check_gen_kwargs(self.gen_kwargs)
        parse_max_failures(self.max_failures)
        out = Path(self.output_dir)
        for p in (out, *out.parents):
            if p.exists() and not p.is_dir():
                raise UserError(f"--output-dir {out}: {p} is a file, not a folder")

    def to_json(self) -> dict[str, Any]:
        """Flat, as results.json's `config` has always been: the runner's settings beside
        the run's."""
        own = [f.name for f in fields(self) if f.name not in ("runner", "judge")]
        d = {name: getattr(self, name) for name in own}
        d["output_dir"] = str(self.output_dir)
        if self.judge is not None:  # absent without a judge: results.json as before
            d["judge"] = self.judge.to_json()
        return d | self.runner.to_json()


def output_affecting(
    config: RunConfig, model_revision: str | None, model_path: str, dtype: str, device: str
) -> dict[str, Any]:
    """The settings that change answers. Batch size and limit do not (the runner is
    batch-invariant; a larger limit only adds items), so a run may resume with other values.
    Another backend is another run: its numerics differ."""
    from .model import backends

    extra = {} if config.data_layout == "auto" else {"data_layout": config.data_layout}
    return extra | {
        "model_path": model_path,
        "model_revision": model_revision,
        "family": config.family,
        "dtype": dtype,
        "device_type": device.split(":")[0],
        "min_pixels": config.runner.min_pixels,
        "max_pixels": config.runner.max_pixels,
        "gen_kwargs": config.gen_kwargs,
        "seed": config.runner.seed,
        "data_dir": normalise_data_dir(config.data_dir),
        **backends.fingerprint(config.runner.backend, config.runner.backend_options),
    }


def normalise_data_dir(data_dir: str | None) -> str | None:
    """`DIR`, `DIR/`, `./DIR` and a link to DIR are one data root, hence one run directory."""
    if data_dir is None or data_dir == "builtin":
        return data_dir
    return str(Path(data_dir).expanduser().resolve())


# Generation settings a user may override, with what each must be.
_GEN_RULES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "max_new_tokens": (int, "an integer >= 1"),
    "min_new_tokens": (int, "an integer >= 0"),
    "num_beams": (int, "an integer >= 1"),
    "length_penalty": ((int, float), "a finite number"),
    "repetition_penalty": ((int, float), "a finite number > 0"),
    "do_sample": (bool, "true or false"),
}


def check_gen_kwargs(gen: dict[str, Any]) -> None:
    """Refuse settings that would make every item fail (or loop) once the model runs."""
    import math

    from .errors import UserError

    for key, value in gen.items():
        rule = _GEN_RULES.get(key)
        if rule is None:
            continue  # unknown names are refused with the task's own list of settings
        types, what = rule
        ok = isinstance(value, types) and (types is bool or not isinstance(value, bool))
        if ok and key in ("max_new_tokens", "num_beams"):
            ok = value >= 1
        elif ok and key == "min_new_tokens":
            ok = value >= 0
        elif ok and key == "length_penalty":
            ok = math.isfinite(value)
        elif ok and key == "repetition_penalty":
            ok = math.isfinite(value) and value > 0
        if not ok:
            raise UserError(f"--gen-kwargs {key}={value!r}: must be {what}")


def parse_max_failures(text: str | None) -> tuple[int | None, float | None]:
    """`--max-failures 5` -> (5, None); `--max-failures 10%` -> (None, 10.0)."""
    from .errors import UserError

    if text is None or not str(text).strip():
        return None, None
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            pct = float(raw[:-1])
            if not 0 <= pct <= 100:
                raise ValueError
            return None, pct
        n = int(raw)
        if n < 0:
            raise ValueError
        return n, None
    except ValueError:
        raise UserError(
            f"--max-failures {raw}: expected a count (e.g. 5) or a percentage (e.g. 10%)"
        ) from None


def failure_limit(text: str | None, total_items: int) -> int | None:
    """How many failed items a run tolerates before it stops; None: no limit."""
    count, pct = parse_max_failures(text)
    if pct is not None:
        return int(total_items * pct / 100)
    return count


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
