"""Referring expression comprehension: RefCOCO, RefCOCO+, RefCOCOg; accuracy at IoU >= 0.5.

Paper protocol (Qwen-VL eval_mm/evaluate_grounding.py): `<img>{image}</img><ref>{expr}</ref>
<box>`, greedy, 28 new tokens at most, 10 at least; the output is NOT stripped; the first
`(x1,y1),(x2,y2)` in [0, 1000) is scaled by /999 x image size; no box counts as (0,0,0,0).
Each chat family is asked for its own box format and parsed with its own parser only
(`metrics.parse_box`): Qwen2-VL `<|box_start|>(x1,y1),(x2,y2)<|box_end|>` in [0, 1000),
Qwen2.5-VL JSON `bbox_2d` in pixels of the resized input (mapped back with the input size
the runner reports), Qwen3-VL JSON `bbox_2d` relative [0, 1000).

IoU arithmetic: for the `qwen-vl` family (paper mode) the box is scaled and the IoU computed in
float32 exactly as eval_mm (`metrics.eval_mm_iou`), so hits at IoU ~0.5 agree with the paper's
script item for item; a box with nan/inf coordinates is kept (a miss, not a parse failure),
as the script keeps it. The chat families use float64. Each item records which
(`extra.iou_arithmetic`) and the results notes say which the task used.
"""

from __future__ import annotations

import math

from .. import metrics as M
from ..metrics.grounding import outside_image
from ..registry import register_task
from ..semantics import MetricMeaning, no_item_score
from ..types import Document, FamilyInfo, Generation, ItemResult, Response
from .base import Aggregate, Scored, Task
from .data.refer import ReferSource
from .prompts import Chat, Raw

# Per family: the arithmetic of the box scaling and IoU (recorded per item and in the notes).
IOU_ARITHMETIC = {"qwen-vl": "float32-eval_mm"}
IOU_DEFAULT = "float64"
_IOU_NOTES = {
    "float32-eval_mm": "IoU in float32 exactly as the Qwen-VL eval_mm script (box / 999 x size "
    "and torchvision box_iou in torch float32; nan/inf coordinates kept as a box, a miss)",
    "float64": "IoU in float64 on continuous coordinates",
}
_JSON_BOX = Chat("Locate {expression} in the image, output its bbox coordinates using JSON format.")
PARSE_FAILURES = "parse_failures"
OUTSIDE = "box_outside_image"


def _outside(box, size: tuple[float, float]) -> dict[str, bool]:
    return {OUTSIDE: True} if outside_image(box, size) else {}


class GroundingTask(Task):
    prompts = {
        "qwen-vl": Raw("<img>{image}</img><ref>{expression}</ref><box>"),
        # The Qwen2-VL report's grounding format (arXiv 2409.12191, section 2.2): the phrase
        # between <|object_ref_start|>/<|object_ref_end|>, the answer a box in [0, 1000).
        "qwen2-vl": Chat(
            "Output the bounding box of "
            "<|object_ref_start|>{expression}<|object_ref_end|> in the image."
        ),
        "qwen2.5-vl": _JSON_BOX,  # answers in pixels of the resized input
        "qwen3-vl": _JSON_BOX,  # answers relative [0, 1000)
    }
    generation = {
        "qwen-vl": Generation(max_new_tokens=28, min_new_tokens=10, length_penalty=1.0),
        # JSON answers (with a label and often a code fence) need more room than 28 tokens.
        "default": Generation(max_new_tokens=128, min_new_tokens=0, length_penalty=1.0),
    }
    metrics = ("acc@0.5", "miou")
    # miou is the mean of the items' `iou`; an item is right when its IoU >= 0.5 (acc@0.5).
    meanings = {
        "miou": MetricMeaning(item_key="iou"),
        PARSE_FAILURES: no_item_score(higher_is_better=False),
    }

    def item_metrics(self) -> tuple[str, ...]:
        return ("acc@0.5", "iou")

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        text = response.text or ""  # the paper's script does not strip
        width, height = doc.fields["image_size"]
        if IOU_ARITHMETIC.get(family.name) == "float32-eval_mm":
            return self._score_paper(text, (width, height), doc.fields["bbox"])
        sizes = response.meta.get("input_sizes") or []
        input_size = tuple(sizes[0]) if sizes else None
        box = M.parse_box(text, family.name, (width, height), input_size)
        if box is None:
            # The paper scores an unparsable answer as the box (0,0,0,0): IoU 0.
            extra = {"parse_failed": True}
            if family.name == "qwen2.5-vl" and input_size is None:
                extra["missing"] = "input_sizes (the runner must report the resized size)"
            return Scored(answer=None, scores={"acc@0.5": 0.0, "iou": 0.0}, extra=extra)
        iou = float(M.box_iou(box, doc.fields["bbox"]))
        extra = {"iou_arithmetic": IOU_DEFAULT} | _outside(box, (width, height))
        return Scored(
            answer=[float(v) for v in box],
            scores={"acc@0.5": float(iou >= 0.5), "iou": iou},
            extra=extra,
        )

    @staticmethod
    def _score_paper(text: str, size: tuple[float, float], gt) -> Scored:
        """eval_mm's parse and float32 IoU. A NaN IoU is a miss (NaN >= 0.5 is False in the
        script) and counts 0 in the mean IoU; the kept box is written with non-finite values
        as strings ("nan", "inf"), which JSON cannot hold."""
        coords = M.parse_qwen_vl_coords(text)
        iou = M.eval_mm_iou(coords, size, gt)
        hit = iou >= 0.5
        extra: dict = {"iou_arithmetic": "float32-eval_mm"}
        if coords is None:
            extra["parse_failed"] = True
            answer = None
        else:
            box = M.eval_mm_box(coords, size)
            extra |= _outside(box, size)
            answer = [v if math.isfinite(v) else str(v) for v in box]
        if not math.isfinite(iou):
            extra["iou"] = str(iou)
            iou = 0.0
        return Scored(answer=answer, scores={"acc@0.5": float(hit), "iou": iou}, extra=extra)

    def aggregate(self, items: list[ItemResult], docs: dict[str, Document]) -> Aggregate:
        def mean(key: str) -> float:
            vals = [it.score[key] for it in items if key in it.score]
            return 100.0 * sum(vals) / len(vals) if vals else 0.0

        failures = sum(1 for it in items if it.extra.get("parse_failed"))
        outside = sum(1 for it in items if it.extra.get(OUTSIDE))
        # The arithmetic these items were scored with (a resumed run may mix two).
        modes = sorted(
            {
                it.extra["iou_arithmetic"]
                for it in items
                if it.extra.get("iou_arithmetic") in _IOU_NOTES
            }
        )
        return Aggregate(
            {"acc@0.5": mean("acc@0.5"), "miou": mean("iou"), PARSE_FAILURES: float(failures)},
            notes=[
                *(
                    [
                        f"{outside} predicted box(es) reach outside the image (a negative "
                        f"origin or past its size; items flagged extra.{OUTSIDE}): scored as "
                        "given, unclipped, as the eval_mm script scores them"
                    ]
                    if outside
                    else []
                ),
                *(f"iou_arithmetic {mode}: {_IOU_NOTES[mode]}" for mode in modes),
            ],
        )

    def notes(self, limited: bool, seed: int = 0) -> list[str]:
        return [
            "acc@0.5: share of sentences whose first parsed box has IoU >= 0.5 with the "
            "ground truth; an unparsable answer scores IoU 0 and is counted in "
            f"{PARSE_FAILURES}"
        ]


_HUB = {
    "refcoco": "lmms-lab/RefCOCO",
    "refcoco+": "lmms-lab/RefCOCOplus",
    "refcocog": "lmms-lab/RefCOCOg",
}


def _declare(subdir: str, refs: str, split: str, size: int) -> ReferSource:
    return ReferSource(
        subdir=subdir, refs_file=refs, split=split, split_size=size, hub_id=_HUB[subdir]
    )


@register_task("refcoco_val", group=("refcoco-all", "paper-table6"), aliases=("refcoco",))
class RefCOCOVal(GroundingTask):
    description = "RefCOCO val (UNC), accuracy at IoU 0.5"
    dataset = _declare("refcoco", "refs(unc).p", "val", 10834)


@register_task("refcoco_testA", group=("refcoco-all", "paper-table6"))
class RefCOCOTestA(GroundingTask):
    description = "RefCOCO testA (UNC, people)"
    dataset = _declare("refcoco", "refs(unc).p", "testA", 5657)


@register_task("refcoco_testB", group=("refcoco-all", "paper-table6"))
class RefCOCOTestB(GroundingTask):
    description = "RefCOCO testB (UNC, objects)"
    dataset = _declare("refcoco", "refs(unc).p", "testB", 5095)


@register_task("refcoco+_val", group=("refcoco+-all", "paper-table6"), aliases=("refcoco+",))
class RefCOCOPlusVal(GroundingTask):
    description = "RefCOCO+ val (UNC)"
    dataset = _declare("refcoco+", "refs(unc).p", "val", 10758)


@register_task("refcoco+_testA", group=("refcoco+-all", "paper-table6"))
class RefCOCOPlusTestA(GroundingTask):
    description = "RefCOCO+ testA (UNC, people)"
    dataset = _declare("refcoco+", "refs(unc).p", "testA", 5726)


@register_task("refcoco+_testB", group=("refcoco+-all", "paper-table6"))
class RefCOCOPlusTestB(GroundingTask):
    description = "RefCOCO+ testB (UNC, objects)"
    dataset = _declare("refcoco+", "refs(unc).p", "testB", 4889)


@register_task("refcocog_val", group=("refcocog-all", "paper-table6"), aliases=("refcocog",))
class RefCOCOgVal(GroundingTask):
    description = "RefCOCOg val (UMD split)"
    dataset = _declare("refcocog", "refs(umd).p", "val", 4896)


@register_task("refcocog_test", group=("refcocog-all", "paper-table6"))
class RefCOCOgTest(GroundingTask):
    description = "RefCOCOg test (UMD split)"
    dataset = _declare("refcocog", "refs(umd).p", "test", 9602)
