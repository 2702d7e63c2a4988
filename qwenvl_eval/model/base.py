"""The runner interface every backend implements. The evaluator talks only to this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ..types import GenerateRequest, Response, ScoreRequest
from .families import Family


@dataclass
class RunnerStats:
    """Counters the runner keeps as it goes; shown in the progress bar and the results."""

    items: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    batches: int = 0
    oom_retries: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        s = max(self.seconds, 1e-9)
        return {
            "items": self.items,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "seconds": round(self.seconds, 3),
            "batches": self.batches,
            "oom_retries": self.oom_retries,
            "errors": self.errors,
            "items_per_s": round(self.items / s, 3),
            "tokens_per_s": round((self.prompt_tokens + self.new_tokens) / s, 1),
        }


def _flag(default: Any, help: str, **limits: Any) -> Any:
    """A field that is also a command-line flag (`--name-with-dashes`), with its help and
    bounds (min=, max=)."""
    return field(default=default, metadata={"help": help, **limits})


@dataclass(frozen=True)
class RunnerOptions:
    """The runner settings of a run, as `run`'s flags give them: held by RunConfig.runner and
    handed as they are to the backend (frozen: `dataclasses.replace` makes a changed copy)."""

    # Each field with a `help` is a flag of `run` and `fewshot-sweep` (cli.py builds them).
    device: str = _flag("auto", "auto, cpu, cuda, cuda:N")
    dtype: str = _flag("auto", "auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")
    batch_size: int = _flag(8, "Upper bound on a batch.", min=1)
    max_batch_tokens: int | None = _flag(
        None, "Token budget per batch (padded prompt tokens incl. image tokens).", min=1
    )
    min_pixels: int | None = _flag(None, "Image processor min_pixels.")
    max_pixels: int | None = _flag(None, "Image processor max_pixels.")
    attn_implementation: str | None = None  # None: sdpa, or flash_attention_2 when installed
    compile: bool = _flag(False, "torch.compile the model.")
    trust_remote_code: bool = _flag(False, "Allow the checkpoint's own Python code.")
    seed: int = _flag(1234, "Seed for everything random (few-shot draws).")
    preprocess_workers: int = 2
    backend: str = _flag(
        "hf", "Engine: hf (in-process transformers), vllm, openai (a served endpoint)."
    )
    # The backend's own settings: an instance of its `Backend.options_type` (typed fields, as
    # its table entry declares them; each is a flag too). A mapping {name: value} or None (all
    # defaults) is converted on construction; a setting of another backend is refused there.
    backend_options: Any = None

    def __post_init__(self) -> None:
        from . import backends

        backend = backends.get_backend(self.backend)
        opts = self.backend_options
        if opts is None or isinstance(opts, Mapping):
            opts = backend.make_options(opts)
        elif not isinstance(opts, backend.options_type):
            raise TypeError(
                f"backend_options {type(opts).__name__} given for backend {self.backend!r} "
                f"(expected {backend.options_type.__name__})"
            )
        object.__setattr__(self, "backend_options", opts)

    def to_json(self) -> dict[str, Any]:
        """As results.json's `config` records them (the backend's options: those set)."""
        from . import backends

        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if d["attn_implementation"] is None:
            del d["attn_implementation"]  # the default; recorded only when chosen
        d["backend_options"] = backends.given(self.backend, self.backend_options)
        return d


class Runner(ABC):
    """Answers requests in batches. Responses are yielded as soon as each batch is done (in any
    order; the evaluator restores order) so that the results store can write them at once."""

    family: Family
    stats: RunnerStats
    # False for backends that cannot compute log-probabilities: the evaluator then refuses
    # option-scoring tasks before any request is made.
    supports_option_scoring: bool = True

    @abstractmethod
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[Response]: ...

    @abstractmethod
    def score_options(self, requests: Sequence[ScoreRequest]) -> Iterator[Response]: ...

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """What produced the outputs: model path and revision, dtype, backend, device, ..."""

    def notes(self, requests: Sequence[GenerateRequest | ScoreRequest]) -> list[str]:
        """How this backend carried out these requests' settings where that is worth knowing
        beside the results (e.g. a setting it maps or cannot apply); added to the task's notes."""
        return []

    def close(self) -> None:  # noqa: B027  (optional hook)
        pass


def check_generate_requests(requests: Sequence[GenerateRequest]) -> None:
    """A programming error caught at the backend's door, whichever backend it is."""
    for r in requests:
        if not isinstance(r, GenerateRequest):
            raise TypeError(f"generate() got {type(r).__name__} for item {r.id!r}")


def check_score_requests(requests: Sequence[ScoreRequest]) -> None:
    for r in requests:
        if not isinstance(r, ScoreRequest):
            raise TypeError(f"score_options() got {type(r).__name__} for item {r.id!r}")
        if not r.options:
            raise ValueError(f"score request {r.id!r} has no options")
