"""The toy_colours task. Importing this module registers it: the entry point in
pyproject.toml (group `qwenvl_eval.tasks`) names this module."""

from __future__ import annotations

from qwenvl_eval import metrics as M
from qwenvl_eval.registry import register_task
from qwenvl_eval.semantics import no_item_score
from qwenvl_eval.tasks.base import Aggregate, Scored, Task
from qwenvl_eval.tasks.prompts import Chat, Raw
from qwenvl_eval.types import Document, FamilyInfo, Generation, ItemResult, Response

from .data import ToyColoursData


# --8<-- [start:task]
@register_task("toy_colours", group=("toy",), aliases=("toy_colors",))
class ToyColours(Task):
    description = "Toy colours (exact match): the colour of a square"
    dataset = ToyColoursData()
    # Looked up by the model family's prompt keys, most specific first: Qwen-VL v1 reads the
    # paper's raw prompt; every chat family (Qwen2-VL, 2.5-VL, 3-VL) falls back to "chat".
    prompts = {
        "qwen-vl": Raw("<img>{image}</img>{question} Answer:"),
        "chat": Chat("{question}\nAnswer with one word."),
    }
    generation = Generation(max_new_tokens=5, min_new_tokens=1)
    # The first metric is the headline. `exact_match` means the default (mean of the per-item
    # score of that name x100, right at >= 0.5); `wrong` is a count with no per-item score.
    metrics = ("exact_match", "wrong")
    meanings = {"wrong": no_item_score(higher_is_better=False)}

    def item_metrics(self) -> tuple[str, ...]:
        return ("exact_match",)  # what each item is scored on (and a failed item scores 0 on)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        pred = (response.text or "").strip()
        return Scored(
            answer=pred, scores={"exact_match": M.exact_match(pred, [doc.fields["answer"]])}
        )

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        means = super().aggregate(items, docs)  # exact_match: the mean x100
        wrong = sum(1 for it in items if it.score.get("exact_match", 0.0) < 0.5)
        return Aggregate({**means.metrics, "wrong": float(wrong)})


# --8<-- [end:task]
