"""`--item-set`: score exactly the items another harness scored, so a delta against its
published figure is computed on identical items. `eval_mm`: the Qwen-VL repository's
grounding script (8 GPUs x batch 8 by default; `eval_mm:GPUSxBATCH` for another launch)."""

from __future__ import annotations

import re
from typing import TypeVar

from .errors import UserError

T = TypeVar("T")
ITEM_SETS = ("all", "eval_mm")
_EVAL_MM = re.compile(r"^eval_mm(?::(?P<w>\d+)x(?P<b>\d+))?$")
# eval_mm's other scripts score every item; only evaluate_grounding.py drops any.
_DROPPING_TASKS = ("refcoco_", "refcoco+_", "refcocog_")


def parse_item_set(text: str) -> tuple[int, int] | None:
    """None for every item; (GPUs, batch size) for eval_mm's grounding item set."""
    if text == "all":
        return None
    m = _EVAL_MM.match(text)
    if not m:
        raise UserError(
            f"--item-set {text!r}: expected all, eval_mm or eval_mm:GPUSxBATCH (e.g. eval_mm:8x8)"
        )
    w, b = int(m["w"] or 8), int(m["b"] or 8)
    if w < 1 or b < 1:
        raise UserError(f"--item-set {text!r}: GPUs and batch size must be at least 1")
    return w, b


def eval_mm_kept(size: int, world_size: int, batch_size: int) -> list[range]:
    """The item positions eval_mm's grounding script scores: `size` items cut into
    `world_size` contiguous slices (the first size % world_size one item longer), each
    slice read in batches with drop_last=True, so each loses its last partial batch."""
    base, extra = divmod(size, world_size)
    kept, start = [], 0
    for rank in range(world_size):
        n = base + (rank < extra)
        kept.append(range(start, start + n - n % batch_size))
        start += n
    return kept


def select_items(task: str, docs: list[T], item_set: str) -> list[T]:
    """The task's items in the chosen set, in their order (positions as the data lists them:
    eval_mm's own jsonl files, `--data-layout eval_mm`, give its exact items)."""
    spec = parse_item_set(item_set)
    if spec is None:
        return docs
    if not task.startswith(_DROPPING_TASKS):
        raise UserError(
            f"--item-set {item_set}: task {task!r} is scored on every item by eval_mm; only "
            "the RefCOCO grounding tasks drop items there"
        )
    return [docs[i] for r in eval_mm_kept(len(docs), *spec) for i in r]
