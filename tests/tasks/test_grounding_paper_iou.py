"""Grounding in paper mode (qwen-vl family): hits at IoU ~0.5 agree with eval_mm's float32
arithmetic; the chat families keep float64; the results notes say which was used."""

from __future__ import annotations

import json

from qwenvl_eval import registry
from qwenvl_eval.evaluator import TaskRun, score_item
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.types import Document, GenerateRequest, Generation, Response, Text


def doc(item_id: str, size, bbox) -> Document:
    return Document(item_id, (), {"image_size": size, "bbox": bbox, "expression": "x"})


def scored(family, docs_outputs):
    task = registry.get_task("refcoco_val")
    docs = [d for d, _ in docs_outputs]
    requests = [GenerateRequest(d.id, (Text("x"),), Generation()) for d in docs]
    run = TaskRun(task, docs, requests, "hash")
    items = [
        score_item(run, req, Response(d.id, text=out), family)
        for req, (d, out) in zip(requests, docs_outputs, strict=True)
    ]
    summary = task.aggregate(items, run.by_id)
    return task, items, summary.metrics, task.notes(limited=False) + summary.notes


CASES = [
    # (size, gt x1y1x2y2, output): exact IoU 1/2 in both; float32 and float64 disagree.
    ((333, 333), [0.0, 0.0, 108.0, 333.0], "<ref>x</ref><box>(0,0),(162,999)</box>"),
    ((111, 111), [0.0, 0.0, 14.0, 111.0], "<ref>x</ref><box>(0,0),(63,999)</box>"),
]


def test_qwen_vl_hits_follow_eval_mm_float32():
    task, items, metrics, notes = scored(
        QWEN_VL.info, [(doc(f"i{k}", s, b), o) for k, (s, b, o) in enumerate(CASES)]
    )
    assert [it.score["acc@0.5"] for it in items] == [0.0, 1.0]  # eval_mm: 0.49999994, 0.5
    assert items[0].score["iou"] == 0.4999999403953552
    assert items[1].score["iou"] == 0.5
    assert items[0].answer == [0.0, 0.0, 53.999996185302734, 333.0]
    assert all(it.extra["iou_arithmetic"] == "float32-eval_mm" for it in items)
    assert metrics["acc@0.5"] == 50.0
    assert any(n.startswith("iou_arithmetic float32-eval_mm:") for n in notes)


def test_chat_family_keeps_float64():
    # 540/1000 * 100 = 54 against a 108-wide box: IoU 1/2 in float64, a hit.
    d = doc("c", (100, 333), [0.0, 0.0, 108.0, 333.0])
    _, items, _, notes = scored(QWEN2_VL.info, [(d, "(0,0),(540,1000)")])
    assert items[0].extra["iou_arithmetic"] == "float64"
    assert items[0].score == {"acc@0.5": 1.0, "iou": 0.5}
    assert any(n.startswith("iou_arithmetic float64:") for n in notes)
    assert not any("float32" in n for n in notes)


def test_nan_and_inf_boxes_are_kept_misses_not_parse_failures():
    outs = ["(nan,0),(500,500)", "(0,0),(inf,inf)", "no box"]
    pairs = [(doc(f"n{k}", (640, 480), [0.0, 0.0, 320.0, 240.0]), o) for k, o in enumerate(outs)]
    _, items, metrics, _ = scored(QWEN_VL.info, pairs)
    assert [it.score for it in items] == [{"acc@0.5": 0.0, "iou": 0.0}] * 3
    assert items[0].answer == ["nan", 0.0, 320.3203125, 240.240234375]  # float32 500/999*W
    assert items[0].extra["iou"] == "nan"
    assert items[1].answer == [0.0, 0.0, "inf", "inf"]
    assert "parse_failed" not in items[0].extra and "parse_failed" not in items[1].extra
    assert items[2].extra["parse_failed"] is True
    assert metrics["parse_failures"] == 1.0
    # The stored line is plain JSON (no NaN/Infinity tokens).
    for it in items:
        json.loads(json.dumps(it.to_json(), allow_nan=False))
