"""Image captioning: NoCaps val and Flickr30K Karpathy test (CIDEr), plus Flickr30K few-shot.

Paper protocol (Qwen-VL eval_mm/evaluate_caption.py): `<img>{image}</img>Describe the image
in English:`, greedy, 30 new tokens at most, 8 at least, length penalty 0; the stripped output
is scored with pycocoevalcap (PTB tokenizer, CIDEr-D) against all reference captions.

CIDEr is a corpus-level score: its document frequencies come from the references being
scored, so `aggregate` scores all items at once (a --limit run is not comparable with a full
one) and each item's own CIDEr is only known then. A failed item counts as the empty caption.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from .. import metrics as M
from ..registry import register_task
from ..semantics import MetricMeaning
from ..types import Document, FamilyInfo, Generation, ItemResult, Response
from .base import Aggregate, Scored, Task
from .data.coco_captions import NOCAPS_DOMAINS, Flickr30kData, NoCapsData
from .fewshot import SHOTS, make_fewshot
from .prompts import Chat, Raw

# pycocoevalcap scores `metrics` may name; CIDEr alone is what the paper reports, and METEOR
# (a Java process) is slow, so a task computes only the ones it lists.
COCO_METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


class CaptionTask(Task):
    prompts = {
        "qwen-vl": Raw("<img>{image}</img>Describe the image in English:"),
        "chat": Chat("Describe the image in English in one sentence."),
    }
    generation = Generation(max_new_tokens=30, min_new_tokens=8, length_penalty=0.0)
    # Headline first. Add "Bleu_4", "METEOR", "ROUGE_L" (in a subclass) to report them too.
    metrics: ClassVar[tuple[str, ...]] = ("CIDEr",)
    # Each item's CIDEr share is on the task's scale (their mean is the corpus CIDEr when the
    # document frequencies are the same); a caption is neither right nor wrong.
    meanings = {"CIDEr": MetricMeaning(item_key="CIDEr", item_scale=1.0, right_at=None)}

    def item_metrics(self) -> tuple[str, ...]:
        return ()  # nothing is known per item before the corpus is scored

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        return Scored(answer=(response.text or "").strip(), scores={})

    def corpus_scores(self, items: list[ItemResult], docs: dict[str, Document]) -> dict[str, Any]:
        """pycocoevalcap's scores (x100) of `items`, with each item's CIDEr as a dict."""
        refs = {it.id: docs[it.id].fields["references"] for it in items}
        preds = {it.id: it.answer if isinstance(it.answer, str) else "" for it in items}
        wanted = [m for m in self.metrics if m in COCO_METRICS]
        raw = M.caption_scores(refs, preds, metrics=wanted)
        out: dict[str, Any] = {m: 100.0 * raw[m] for m in wanted}
        out["per_item"] = raw.get("CIDEr_per_item", {})
        return out

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        scores = self.corpus_scores(items, docs)
        per_item = scores.pop("per_item")
        # Each item's share, for the predictions file.
        shares = {i: {"CIDEr": 100.0 * v} for i, v in per_item.items()}
        return Aggregate(scores, item_scores=shares)

    def notes(self, limited: bool, seed: int = 0) -> list[str]:
        note = (
            "CIDEr-D (pycocoevalcap, PTB tokenizer) x100; its document frequencies come "
            "from the evaluated references"
        )
        if limited:
            note += ": this --limit run's CIDEr is NOT comparable with a full-split number"
        return [note]


@register_task("nocaps", group=("paper-table4",), aliases=("nocaps_val",))
class NoCaps(CaptionTask):
    """Overall CIDEr, and `CIDEr_in-domain` / `CIDEr_near-domain` / `CIDEr_out-domain` for
    the domains that have items, each domain scored on its own (as the NoCaps evaluation
    server does: its own document frequencies). The lmms-lab parquet copy has no domain, so
    only the overall number comes from it."""

    description = "NoCaps val (CIDEr; in-, near-, out-of-domain)"
    dataset = NoCapsData()

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        overall = super().aggregate(items, docs)
        out = dict(overall.metrics)
        for domain in NOCAPS_DOMAINS:
            subset = [it for it in items if docs[it.id].fields.get("domain") == domain]
            if subset:
                out[f"CIDEr_{domain}"] = self.corpus_scores(subset, docs)["CIDEr"]
        return dataclasses.replace(overall, metrics=out)


@register_task("flickr30k", group=("paper-table4",), aliases=("flickr30k_test",))
class Flickr30k(CaptionTask):
    description = "Flickr30K Karpathy test, 1000 images (CIDEr)"
    dataset = Flickr30kData("test")


def first_caption(doc: Document) -> str:
    """A few-shot example's answer: its first reference caption (deterministic)."""
    return doc.fields["references"][0]


for _n in SHOTS:
    register_task(f"flickr30k_{_n}shot", group=("paper-figure4", f"fewshot-{_n}"))(
        make_fewshot(Flickr30k, _n, Flickr30kData("train"), answer_of=first_caption)
    )
