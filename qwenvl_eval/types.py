"""The core types that flow through a run: document -> request -> response -> score -> result.

Everything here is a plain frozen dataclass so that it can be hashed, compared and written
to JSON without surprises. Images stay lazy (`ImageRef`) until the runner's preprocessing
pool opens them, so building requests for a whole benchmark costs no image decoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class ImageRef:
    """A lazily opened image: a file path, or encoded bytes (parquet datasets)."""

    key: str  # stable name used in prompts (`<img>{key}</img>`) and hashes
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("ImageRef needs exactly one of path or data")

    def read_bytes(self) -> bytes:
        """The encoded image, as stored (file bytes or the dataset cell)."""
        return self.data if self.data is not None else Path(self.path).read_bytes()

    def source(self):  # -> a path, or a binary file object over the encoded bytes
        """What PIL opens: the file itself where there is one (no copy in memory)."""
        return self.path if self.path is not None else io.BytesIO(self.read_bytes())

    def open(self):  # -> PIL.Image.Image
        """Decode to RGB. Never re-encodes: the pixels are the file's pixels."""
        from PIL import Image

        with Image.open(self.source()) as im:
            return im.convert("RGB")

    def size(self) -> tuple[int, int]:
        """(width, height) from the header only."""
        from PIL import Image

        with Image.open(self.source()) as im:
            return im.size


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Image:
    image: ImageRef


Part = Text | Image


@dataclass(frozen=True)
class Generation:
    """Decoding settings. Greedy by default: the paper overrides every checkpoint's sampling."""

    max_new_tokens: int = 32
    min_new_tokens: int = 0
    length_penalty: float = 1.0
    num_beams: int = 1
    do_sample: bool = False
    stop: tuple[str, ...] = ()
    # 1.0 = off. The Qwen2/2.5-VL Instruct checkpoints ship 1.05, which the neutral settings
    # drop; `--gen-kwargs repetition_penalty=1.05` restores it.
    repetition_penalty: float = 1.0

    def replace(self, **overrides: Any) -> Generation:
        if not overrides:  # the common case, once per request: no copy at all
            return self
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise KeyError(f"unknown generation setting(s): {', '.join(sorted(unknown))}")
        if "stop" in overrides:
            overrides = overrides | {"stop": tuple(overrides["stop"])}
        return dataclasses.replace(self, **overrides)


@dataclass(frozen=True)
class Document:
    """One dataset item, as read from the data files. `fields` is task-specific."""

    id: str
    images: tuple[ImageRef, ...]
    fields: dict[str, Any] = field(hash=False)


PromptStyle = Literal["raw", "chat"]


@dataclass(frozen=True)
class FamilyInfo:
    """What a task may know of the model family: its name (for box formats) and the keys it
    looks up in a task's `prompts`, most specific first (e.g. ("qwen2.5-vl", "chat"))."""

    name: str
    prompt_keys: tuple[str, ...]


@dataclass(frozen=True)
class GenerateRequest:
    id: str
    parts: tuple[Part, ...]
    generation: Generation
    style: PromptStyle = "chat"
    system: str | None = None

    def fingerprint(self) -> str:
        parts = _parts_key(self.parts)
        return _hash(["generate", self.style, self.system, parts, _generation_key(self.generation)])


@dataclass(frozen=True)
class ScoreRequest:
    """Log-likelihood of each option continuation after the same prompt."""

    id: str
    parts: tuple[Part, ...]
    options: tuple[str, ...]
    style: PromptStyle = "chat"
    system: str | None = None

    def fingerprint(self) -> str:
        return _hash(["score", self.style, self.system, _parts_key(self.parts), self.options])


Request = GenerateRequest | ScoreRequest


@dataclass(frozen=True)
class OptionScore:
    sum_logprob: float
    mean_logprob: float
    num_tokens: int

    @classmethod
    def from_sum(cls, sum_logprob: float, num_tokens: int) -> OptionScore:
        """The mean is per option token: minus the paper's mean cross-entropy."""
        return cls(sum_logprob, sum_logprob / num_tokens, num_tokens)


@dataclass(frozen=True)
class Response:
    """What the runner returns for one request. Exactly one of text / options is set
    unless `error` says why the item failed."""

    id: str
    text: str | None = None
    options: tuple[OptionScore, ...] | None = None
    # Facts about how the model saw the input, e.g. {"input_sizes": [[w, h]]} for box mapping.
    meta: dict[str, Any] = field(default_factory=dict, hash=False)
    error: str | None = None


@dataclass
class ItemResult:
    """One scored item, as written to `<task>.predictions.jsonl`.

    `request_hash` is the fingerprint of the request the model answered (prompt, images and
    generation settings), not the task's prompt hash (`TaskResult.prompt_hash`); on disk it
    keeps the key `prompt_hash`, so that the runs written before the rename still resume."""

    id: str
    request_hash: str
    output: str | None
    answer: Any
    score: dict[str, float]
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "prompt_hash": self.request_hash,
            "output": self.output,
            "answer": self.answer,
            "score": self.score,
        }
        if self.error is not None:
            d["error"] = self.error
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ItemResult:
        return cls(
            id=str(d["id"]),
            request_hash=d["prompt_hash"],
            output=d.get("output"),
            answer=d.get("answer"),
            score=dict(d.get("score") or {}),
            error=d.get("error"),
            extra=dict(d.get("extra") or {}),
        )


@dataclass
class TaskResult:
    task: str
    metrics: dict[str, float]
    counts: dict[str, int]
    prompt_hash: str
    generation: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    submission_file: str | None = None
    headline: str | None = None  # the metric a leaderboard shows
    data: dict[str, Any] | None = None  # what was read: format, layout, files and sizes
    # Each metric's meaning (`semantics.MetricMeaning`), as the task declares it.
    metric_meanings: dict[str, Any] = field(default_factory=dict)


# Settings added after runs were already stored: hashed only when set, so that answers stored
# before a setting existed still resume.
_LATER_SETTINGS = {"repetition_penalty": 1.0}


def _generation_key(gen: Generation) -> dict[str, Any]:
    d = {f.name: getattr(gen, f.name) for f in fields(gen)}  # flat: no deep asdict copy
    for key, default in _LATER_SETTINGS.items():
        if d[key] == default:
            del d[key]
    return d


def _parts_key(parts: tuple[Part, ...]) -> list[Any]:
    return [["text", p.text] if isinstance(p, Text) else ["image", p.image.key] for p in parts]


def _hash(obj: Any) -> str:
    def default(o: Any) -> Any:
        # One level at a time (json recurses): not a deep `asdict` copy per object.
        if hasattr(o, "__dataclass_fields__"):
            return {f.name: getattr(o, f.name) for f in fields(o)}
        raise TypeError(type(o))

    blob = json.dumps(obj, sort_keys=True, default=default, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stable_hash(obj: Any) -> str:
    """Short sha256 of a JSON-able object (dataclasses allowed)."""
    return _hash(obj)


# The start of the note on a result scored by rules where the reference asks a judge: what a
# table footnotes on that cell.
RULES_ONLY_NOTE = "scored by rules only"


@dataclass(frozen=True)
class JudgePrompt:
    """A task's judge prompt, as the reference scorer builds it: where it comes from and how
    many tokens the reply may take. The task builds each item's text (`judge_queries`)."""

    name: str
    source: str  # the reference code the prompt reproduces
    template: str  # the fixed part (few-shot examples, instructions), hashed
    max_tokens: int = 256

    def hash(self) -> str:
        return stable_hash([self.name, self.template, self.max_tokens])


@dataclass(frozen=True)
class JudgeQuery:
    """One item's question to the judge and the prompt it was built from (when a task's
    items are asked with different prompts; a plain text is asked with `task.judge_prompt`)."""

    prompt: JudgePrompt
    text: str
