"""Few-shot variants (paper Figure 4), derived from a zero-shot task declaration.

N examples are drawn from the TRAIN split independently for each test item, by plain random
sampling seeded from (seed, task name, item id) with a stable hash: the same run gives the
same prompts on any machine, in any order, with any --limit; the evaluated split is never a
source of examples. `load` returns the train examples as the split's `pool`; the evaluator
hands them, with the run's --seed, to `request`.

Prompt, as the paper's script builds it: each example is the task's own template with its
answer appended after one space, concatenated without separator, then the test item:
`<img>t1</img>{q1} Answer: {a1}<img>t2</img>{q2} Answer: {a2}<img>test</img>{q} Answer:`.
Chat families get the same in one user turn: each example's image, its text and answer,
a blank line, then the test image and text.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import DataError, UserError
from ..registry import register_task
from ..types import Document, FamilyInfo, GenerateRequest, Part, Text, stable_hash
from .base import DataSource, Shot, Split, Task
from .data.formats import load_source
from .data.vqa_official import most_common_answer
from .prompts import Chat, Raw
from .vqa import OKVQA, OKVQA_TRAIN, TEXTVQA_TRAIN, VIZWIZ_TRAIN, TextVQA, VizWiz

SHOTS = (4, 8, 16)


def draw_shots(pool_size: int, n: int, *, seed: int, task: str, item_id: str) -> list[int]:
    """Indices of the `n` examples for one test item: distinct, reproducible anywhere."""
    if pool_size < n:
        raise UserError(f"{task}: the train split has {pool_size} examples, fewer than {n}")
    rng = random.Random(int(stable_hash(["fewshot", seed, task, item_id]), 16))
    return rng.sample(range(pool_size), n)


def _merge_text(parts: list[Part]) -> tuple[Part, ...]:
    """Adjacent text parts joined: the same prompt, one text chunk between images."""
    out: list[Part] = []
    for p in parts:
        if isinstance(p, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + p.text)
        else:
            out.append(p)
    return tuple(out)


def fewshot_parts(
    prompt: Raw | Chat, shots: list[tuple[Document, str]], doc: Document
) -> tuple[Part, ...]:
    parts: list[Part] = []
    for shot, answer in shots:
        parts.extend(prompt.parts(shot))
        # Raw: answer right after the template, next example directly after (the paper's
        # format); chat: a blank line keeps the examples apart in one turn.
        parts.append(Text(f" {answer}" + ("\n\n" if isinstance(prompt, Chat) else "")))
    parts.extend(prompt.parts(doc))
    return _merge_text(parts)


def make_fewshot(
    base: type[Task],
    shots: int,
    train: DataSource,
    answer_of: Callable[[Document], str] = most_common_answer,
) -> type[Task]:
    """A few-shot variant of `base`: same data, metrics and scoring, `shots` train examples
    prepended to every prompt. `answer_of` gives a train document's answer text (default:
    the most common human answer). Register the result with `register_task`."""

    class FewShot(base):  # type: ignore[valid-type, misc]
        n_shots: ClassVar[int] = shots
        train_source: ClassVar[DataSource] = train

        def load(self, root: Path, layout: str = "auto") -> Split:
            split = super().load(root, layout)
            pool, train_info = load_source(self.train_source, root, layout)
            if len(pool) < self.n_shots:
                raise DataError(
                    root / self.train_source.subdir,
                    f"the train split has {len(pool)} examples; {self.n_shots}-shot needs more",
                )
            return Split(
                split.docs,
                {**(split.info or {}), "train": train_info},
                tuple((d, answer_of(d)) for d in pool),
            )

        def sources(self) -> dict[str, DataSource]:
            return {**super().sources(), "train": self.train_source}

        def request(
            self,
            doc: Document,
            family: FamilyInfo,
            *,
            seed: int = 0,
            pool: Sequence[Shot] = (),
            overrides: dict[str, Any] | None = None,
        ) -> GenerateRequest:
            if not pool:
                raise UserError(f"{self.name}: no train examples given (the `pool` of its split)")
            prompt = self.prompt_for(family)
            picks = draw_shots(len(pool), self.n_shots, seed=seed, task=self.name, item_id=doc.id)
            return GenerateRequest(
                id=doc.id,
                parts=fewshot_parts(prompt, [pool[i] for i in picks], doc),
                generation=self.generation_for(family).replace(**(overrides or {})),
                style=prompt.style,
                system=prompt.system,
            )

        def prompt_hash(
            self, family: FamilyInfo, overrides: dict[str, Any] | None = None, *, seed: int = 0
        ) -> str:
            # The examples depend on the seed: another seed is another prompt.
            return stable_hash([super().prompt_hash(family, overrides), self.n_shots, seed])

        def notes(self, limited: bool, seed: int = 0) -> list[str]:
            return super().notes(limited, seed) + [
                f"{self.n_shots}-shot: examples drawn per item from the train split, seed "
                f"{seed} (stable hash of seed, task, item id)"
            ]

    FewShot.__name__ = FewShot.__qualname__ = f"{base.__name__}{shots}Shot"
    FewShot.description = f"{base.description}, {shots}-shot (train-split examples)"
    return FewShot


for _n in SHOTS:
    for _name, _base, _train in (
        ("okvqa", OKVQA, OKVQA_TRAIN),
        ("vizwiz", VizWiz, VIZWIZ_TRAIN),
        ("textvqa", TextVQA, TEXTVQA_TRAIN),
    ):
        register_task(f"{_name}_{_n}shot", group=("paper-figure4", f"fewshot-{_n}"))(
            make_fewshot(_base, _n, _train)
        )
