"""The task base classes. A concrete task is one declaration on one screen: its data, its
prompts per model family, its generation settings and how an output is scored.

Data flows one way: `load` reads documents, `requests` turns them into runner requests,
`score` turns one response into one item's scores, `aggregate` makes the task's numbers.
Tasks never import a model backend; they see the family only as a `FamilyInfo`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..errors import UserError
from ..types import (
    Document,
    FamilyInfo,
    GenerateRequest,
    Generation,
    ItemResult,
    Request,
    Response,
    ScoreRequest,
    stable_hash,
)
from .data.formats import Format, load_source
from .prompts import Prompt


class DataSource(Protocol):
    """Reads one split of one benchmark from a data root."""

    subdir: str  # the task's folder under --data-dir
    split_size: int | None  # items in the full official split, for `data check`

    def formats(self, root: Path) -> list[Format]:
        """Every format the split may be stored in, preferred first (`data.formats`). A
        plug-in source may instead define `load(root) -> list[Document]`."""
        ...


@dataclass
class Scored:
    """One item's parsed answer and scores, as a task's `score` returns them."""

    answer: Any
    scores: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    name: ClassVar[str] = ""
    dataset: ClassVar[DataSource]
    prompts: ClassVar[dict[str, Prompt]]
    generation: ClassVar[Generation | dict[str, Generation]] = Generation()
    # Metric names in the order the table shows them; the first is the headline.
    metrics: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # The run's --seed, set by the evaluator before `load`; few-shot draws are seeded from it.
    seed: int = 0
    # The run's --data-layout (auto, official, eval_mm, hf), set before `load`.
    data_layout: str = "auto"
    # What `load` read (format, layout, files and sizes), for results.json.
    data_info: dict[str, Any] | None = None

    # -- declaration lookups ------------------------------------------------------------------
    def prompt_for(self, family: FamilyInfo) -> Prompt:
        for key in family.prompt_keys:
            if key in self.prompts:
                return self.prompts[key]
        raise UserError(
            f"task {self.name!r} has no prompt for model family {family.name!r} "
            f"(it has: {', '.join(sorted(self.prompts))})"
        )

    def doc_prompt(self, doc: Document, family: FamilyInfo) -> Prompt:
        """The prompt for one item; a task whose items differ in form (e.g. with and without
        an image) adapts it here."""
        return self.prompt_for(family)

    def generation_for(self, family: FamilyInfo) -> Generation:
        gen = self.generation
        if isinstance(gen, dict):
            for key in family.prompt_keys:
                if key in gen:
                    return gen[key]
            return gen.get("default", Generation())
        return gen

    def prompt_hash(self, family: FamilyInfo, overrides: dict[str, Any] | None = None) -> str:
        """Identifies what the model sees and how it decodes, for results and resume."""
        gen = asdict(self.generation_for(family).replace(**(overrides or {})))
        return stable_hash([self.name, self.prompt_for(family).hash(), gen])

    # -- the pipeline -------------------------------------------------------------------------
    def load(self, root: Path) -> list[Document]:
        """The split's documents, from the first format present (see `data.formats`); an
        empty split is an error. Records what was read in `data_info`."""
        docs, self.data_info = load_source(self.dataset, root, self.data_layout)
        return docs

    def sources(self) -> dict[str, DataSource]:
        """Every data source the task reads, by role (few-shot tasks add their train split)."""
        return {"eval": self.dataset}

    def request(
        self, doc: Document, family: FamilyInfo, overrides: dict[str, Any] | None = None
    ) -> Request:
        prompt = self.doc_prompt(doc, family)
        return GenerateRequest(
            id=doc.id,
            parts=tuple(prompt.parts(doc)),
            generation=self.generation_for(family).replace(**(overrides or {})),
            style=prompt.style,
            system=prompt.system,
        )

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        raise NotImplementedError

    def failed(self, doc: Document, error: str) -> Scored:
        """The scores of an item the model could not answer: zero for every metric."""
        return Scored(answer=None, scores={m: 0.0 for m in self.item_metrics()})

    def item_metrics(self) -> tuple[str, ...]:
        return self.metrics

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> dict[str, float]:
        """Default: the mean of each per-item score, x 100."""
        out: dict[str, float] = {}
        for m in self.item_metrics():
            vals = [it.score[m] for it in items if m in it.score]
            out[m] = 100.0 * sum(vals) / len(vals) if vals else 0.0
        return out

    def submission(self, items: list[ItemResult], docs: dict[str, Document]) -> list[dict] | None:
        """A server submission file for splits without public answers; None when scored here."""
        return None

    def notes(self, limited: bool) -> list[str]:
        return []


class ScoringTask(Task):
    """Multiple choice by the log-likelihood of each option continuation (no generation)."""

    generation: ClassVar[Generation | dict[str, Generation]] = Generation(max_new_tokens=0)

    def options(self, doc: Document) -> tuple[str, ...]:
        raise NotImplementedError

    def request(
        self, doc: Document, family: FamilyInfo, overrides: dict[str, Any] | None = None
    ) -> Request:
        prompt = self.doc_prompt(doc, family)
        return ScoreRequest(
            id=doc.id,
            parts=tuple(prompt.parts(doc)),
            options=self.options(doc),
            style=prompt.style,
            system=prompt.system,
        )

    def prompt_hash(self, family: FamilyInfo, overrides: dict[str, Any] | None = None) -> str:
        return stable_hash([self.name, self.prompt_for(family).hash(), "score"])
