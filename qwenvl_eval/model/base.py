"""The runner interface every backend implements. The evaluator talks only to this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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


@dataclass
class RunnerOptions:
    device: str = "auto"
    dtype: str = "auto"  # auto: bf16 on GPU, fp32 on CPU
    batch_size: int = 8
    max_batch_tokens: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    attn_implementation: str | None = None  # None: sdpa, or flash_attention_2 when installed
    compile: bool = False
    trust_remote_code: bool = False
    seed: int = 0
    preprocess_workers: int = 2
    backend: str = "hf"  # a key of model/backends.py's BACKENDS
    # Backend-specific settings (e.g. vllm's tensor_parallel_size), keyed as in the table.
    extra: dict[str, Any] = field(default_factory=dict)


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
