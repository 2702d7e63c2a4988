"""`--item-set eval_mm`: exactly the RefCOCO items eval_mm's grounding script scored (its
8 contiguous per-GPU slices, each without its last partial batch), so a delta against the
published figure is taken on identical items."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval.errors import UserError
from qwenvl_eval.evaluator import prepare_task
from qwenvl_eval.itemsets import eval_mm_kept, parse_item_set
from qwenvl_eval.model.families import FAMILIES
from qwenvl_eval.results.paper import paper_table
from qwenvl_eval.results.runs import load_run
from qwenvl_eval.tasks.data.locate import resolve_data_root
from tests.results.plant import plant_run


def _ids(item_set: str, task: str = "refcoco_val") -> list[str]:
    run = prepare_task(
        task, resolve_data_root("builtin"), FAMILIES["qwen-vl"].info, item_set=item_set
    )
    return [d.id for d in run.docs]


def test_eval_mm_item_set_is_each_slice_without_its_last_partial_batch():
    every = _ids("all")
    picked = _ids("eval_mm:2x4")
    n = len(every)
    first = (n + 1) // 2  # the first slice is one longer when n is odd
    want = every[: first - first % 4] + every[first : first + (n - first) - (n - first) % 4]
    assert picked == want and len(picked) < n
    # the default is eval_mm's own launch: 8 GPUs x batch 8
    assert len(_ids("eval_mm")) == sum(len(r) for r in eval_mm_kept(n, 8, 8))


@pytest.mark.parametrize(
    "item_set, words",
    [("eval_mm:0x8", "at least 1"), ("evalmm", "expected all, eval_mm"), ("eval_mm:8", "expected")],
)
def test_bad_item_sets_are_usage_errors(item_set, words):
    with pytest.raises(UserError, match=words):
        parse_item_set(item_set)


def test_item_set_refuses_a_task_eval_mm_scores_whole():
    with pytest.raises(UserError, match="only the RefCOCO grounding tasks"):
        _ids("eval_mm", "okvqa")


def test_table6_delta_on_eval_mm_items_says_so(tmp_path):
    run = plant_run(tmp_path / "r", model="Qwen/Qwen-VL", metrics={"refcoco_val": {"acc@0.5": 90}})
    data = json.loads((run / "results.json").read_text())
    data["config"]["item_set"] = "eval_mm"
    (run / "results.json").write_text(json.dumps(data))
    table = paper_table("table6", [load_run(run)])
    i = list(table.values.index).index("Qwen/Qwen-VL (ours)")
    (key,) = table.row_marks[i + 1]
    assert table.notes[key] == "delta on eval_mm's item set: the same items as published"
