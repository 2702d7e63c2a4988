"""The task base classes. A concrete task is one declaration on one screen: its data, its
prompts per model family, its generation settings and how an output is scored.

Data flows one way, through arguments and return values: `load` reads a `Split`, `request`
turns one of its documents into a runner request, `score` turns one response into one item's
scores, `aggregate` turns the items into an `Aggregate` (the task's numbers). A task object is
a declaration: nothing in a run writes to it. Tasks never import a model backend; they see the
family only as a `FamilyInfo`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..errors import UserError
from ..semantics import MetricMeaning, declare_meanings
from ..types import (
    Document,
    FamilyInfo,
    GenerateRequest,
    Generation,
    ItemResult,
    JudgePrompt,
    JudgeQuery,
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


# A few-shot example: a train document and the answer text shown after it.
Shot = tuple[Document, str]


@dataclass(frozen=True)
class Split:
    """What a task's `load` read: the documents to evaluate, what was read (format, layout,
    files and sizes, for results.json) and, for a few-shot task, its pool of examples."""

    docs: list[Document]
    info: dict[str, Any] | None = None
    pool: tuple[Shot, ...] = ()


@dataclass(frozen=True)
class Aggregate:
    """A task's numbers from its scored items, as `aggregate` returns them."""

    metrics: dict[str, float]
    # What the items showed that a reader of the numbers must know (e.g. which arithmetic).
    notes: list[str] = field(default_factory=list)
    # Per-item scores only the whole set can give (a corpus metric's share of each item), by
    # item id: added to the items' scores in the predictions file.
    item_scores: dict[str, dict[str, float]] = field(default_factory=dict)


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
    # What a metric means where the default does not hold (see `semantics`). Default: the
    # mean of the per-item score of the same name x100, right at >= 0.5, higher is better; a
    # metric without a per-item score of that name has none and cannot be gated.
    meanings: ClassVar[dict[str, MetricMeaning]] = {}
    description: ClassVar[str] = ""
    # The LLM judge the reference scorer asks where its rules read no answer (judge.py): the
    # run asks it only with --judge-*, otherwise the result notes that it was not asked.
    judge_prompt: ClassVar[JudgePrompt | None] = None

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

    def prompt_hash(
        self, family: FamilyInfo, overrides: dict[str, Any] | None = None, *, seed: int = 0
    ) -> str:
        """Identifies what the model sees and how it decodes, for results and resume. `seed`
        is the run's --seed (only tasks that draw at random depend on it)."""
        gen = asdict(self.generation_for(family).replace(**(overrides or {})))
        return stable_hash([self.name, self.prompt_for(family).hash(), gen])

    # -- the pipeline -------------------------------------------------------------------------
    def load(self, root: Path, layout: str = "auto") -> Split:
        """The split's documents, from the first format present that `layout` (the run's
        --data-layout) allows (see `data.formats`), with what was read."""
        docs, info = load_source(self.dataset, root, layout)
        return Split(docs, info)

    def sources(self) -> dict[str, DataSource]:
        """Every data source the task reads, by role (few-shot tasks add their train split)."""
        return {"eval": self.dataset}

    def prompt_doc(self, doc: Document) -> Document:
        """The document as its prompt reads it: tasks whose prompt needs fields derived from
        the data (an options block, an instruction) return a copy with them added."""
        return doc

    def request(
        self,
        doc: Document,
        family: FamilyInfo,
        *,
        seed: int = 0,
        pool: Sequence[Shot] = (),
        overrides: dict[str, Any] | None = None,
    ) -> Request:
        """The runner request for one document. `seed` (the run's --seed) and `pool` (the
        split's few-shot examples) matter only to tasks that draw examples."""
        doc = self.prompt_doc(doc)
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

    def metric_meanings(self, reported: Iterable[str] = ()) -> dict[str, MetricMeaning]:
        """The meaning of each declared and each `reported` metric, for results.json."""
        return declare_meanings([*self.metrics, *reported], self.item_metrics(), self.meanings)

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        """Default: the mean of each per-item score, x 100."""
        out: dict[str, float] = {}
        for m in self.item_metrics():
            vals = [it.score[m] for it in items if m in it.score]
            out[m] = 100.0 * sum(vals) / len(vals) if vals else 0.0
        return Aggregate(out)

    def judge_queries(
        self, items: list[ItemResult], docs: dict[str, Document]
    ) -> Mapping[str, str | JudgeQuery]:
        """The judge's prompt text, by item id, for the items the rules could not read (a
        task with a `judge_prompt` defines it); a `JudgeQuery` where an item is asked with
        another prompt than `judge_prompt`."""
        return {}

    def judged(self, doc: Document, item: ItemResult, reply: str) -> Scored | None:
        """The item scored from the judge's reply; None when the reply names no answer."""
        return None

    def submission(self, items: list[ItemResult], docs: dict[str, Document]) -> list[dict] | None:
        """A server submission file for splits without public answers; None when scored here."""
        return None

    def notes(self, limited: bool, seed: int = 0) -> list[str]:
        """What a reader of the results must know about how they were made, known before
        any item is answered (`limited`: --limit cut the split short; `seed`: --seed)."""
        return []


class ScoringTask(Task):
    """Multiple choice by the log-likelihood of each option continuation (no generation)."""

    generation: ClassVar[Generation | dict[str, Generation]] = Generation(max_new_tokens=0)

    def options(self, doc: Document) -> tuple[str, ...]:
        raise NotImplementedError

    def request(
        self,
        doc: Document,
        family: FamilyInfo,
        *,
        seed: int = 0,
        pool: Sequence[Shot] = (),
        overrides: dict[str, Any] | None = None,
    ) -> Request:
        doc = self.prompt_doc(doc)
        prompt = self.doc_prompt(doc, family)
        return ScoreRequest(
            id=doc.id,
            parts=tuple(prompt.parts(doc)),
            options=self.options(doc),
            style=prompt.style,
            system=prompt.system,
        )

    def prompt_hash(
        self, family: FamilyInfo, overrides: dict[str, Any] | None = None, *, seed: int = 0
    ) -> str:
        return stable_hash([self.name, self.prompt_for(family).hash(), "score"])
