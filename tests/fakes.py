"""Test doubles: a runner that answers from a function, and a toy task over a JSON file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from qwenvl_eval.model.base import Runner, RunnerStats
from qwenvl_eval.model.families import QWEN2_VL, Family
from qwenvl_eval.tasks.base import Scored, Task
from qwenvl_eval.tasks.data.locate import read_json, require_image, safe_join
from qwenvl_eval.tasks.prompts import Chat, Raw
from qwenvl_eval.types import (
    Document,
    FamilyInfo,
    GenerateRequest,
    Generation,
    ImageRef,
    OptionScore,
    Response,
    ScoreRequest,
    Text,
)


def last_text(request: GenerateRequest | ScoreRequest) -> str:
    return next(p.text for p in reversed(request.parts) if isinstance(p, Text))


class FakeRunner(Runner):
    """Answers with `answer(request)`; raises for ids in `crash_on` after `crash_after`
    answers (to simulate a killed run); ids in `fail` get an error response."""

    def __init__(
        self,
        answer: Callable[[GenerateRequest], str] = last_text,
        family: Family = QWEN2_VL,
        *,
        fail: set[str] = frozenset(),
        crash_after: int | None = None,
    ) -> None:
        self.answer = answer
        self.family = family
        self.stats = RunnerStats()
        self.fail = fail
        self.crash_after = crash_after
        self.seen: list[str] = []

    def _tick(self, rid: str) -> None:
        if self.crash_after is not None and len(self.seen) >= self.crash_after:
            raise KeyboardInterrupt("simulated kill")
        self.seen.append(rid)
        self.stats.items += 1

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[Response]:
        # Answer in reverse order: the evaluator must restore the dataset order itself.
        for r in reversed(requests):
            self._tick(r.id)
            if r.id in self.fail:
                yield Response(id=r.id, error="image could not be decoded")
            else:
                yield Response(id=r.id, text=self.answer(r))

    def score_options(self, requests: Sequence[ScoreRequest]) -> Iterator[Response]:
        for r in requests:
            self._tick(r.id)
            opts = tuple(OptionScore(-float(i), -float(i), 1) for i, _ in enumerate(r.options))
            yield Response(id=r.id, options=opts)

    def provenance(self) -> dict[str, Any]:
        return {"backend": "fake", "dtype": "fp32", "device": "cpu"}


class ToySource:
    """`toy/items.json`: [{"id", "image", "question", "answer"}]."""

    subdir = "toy"
    split = "val"
    split_size = None

    def expected(self, root: Path) -> list[Path]:
        return [root / self.subdir / "items.json"]

    def load(self, root: Path) -> list[Document]:
        path = root / self.subdir / "items.json"
        docs = []
        for row in read_json(path):
            img = safe_join(
                root / self.subdir, row["image"], source=path, item=row["id"], field="image"
            )
            require_image(img, source=path, item=row["id"], field="image")
            docs.append(
                Document(
                    id=str(row["id"]),
                    images=(ImageRef(key=row["image"], path=img),),
                    fields={"question": row["question"], "answer": row["answer"]},
                )
            )
        return docs


class ToyTask(Task):
    """Exact match against one answer; registered by the tests that need it."""

    dataset = ToySource()
    prompts = {
        "qwen-vl": Raw("<img>{image}</img>{question} Answer:"),
        "chat": Chat("{question}"),
    }
    generation = Generation(max_new_tokens=5, min_new_tokens=1)
    metrics = ("exact",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        answer = (response.text or "").strip()
        return Scored(answer=answer, scores={"exact": float(answer == doc.fields["answer"])})


def write_toy_data(root: Path, n: int = 6) -> Path:
    from PIL import Image

    folder = root / "toy"
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        Image.new("RGB", (8 + i, 8), (i * 30, 0, 0)).save(folder / "img" / f"{i}.png")
        rows.append(
            {
                "id": f"q{i}",
                "image": f"img/{i}.png",
                "question": f"what {i}?",
                "answer": f"what {i}?" if i % 2 == 0 else "no",
            }
        )
    (folder / "items.json").write_text(json.dumps(rows))
    return root


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`qwenvl-eval ARGV` in this process, as the console script runs it (cli.main, with its
    exit codes): (exit code, stdout, stderr)."""
    import sys

    from qwenvl_eval import cli

    old = sys.argv
    sys.argv = ["qwenvl-eval", *argv]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err
