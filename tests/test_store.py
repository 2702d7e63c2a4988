from __future__ import annotations

import json

import pytest

from qwenvl_eval.errors import UserError
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.types import ItemResult


def item(i: int) -> ItemResult:
    return ItemResult(
        id=f"q{i}", request_hash="h", output=f"out {i}", answer=f"a{i}", score={"acc": float(i % 2)}
    )


def test_append_is_readable_before_close(tmp_path):
    store = PredictionStore(tmp_path)
    store.append("vqav2", item(1))
    # Another process (or a resumed run) sees the line without any close/finalize.
    assert PredictionStore(tmp_path).load("vqav2") == {"q1": item(1)}


def test_torn_last_line_is_dropped_and_truncated(tmp_path):
    store = PredictionStore(tmp_path)
    store.append("t", item(1))
    store.append("t", item(2))
    store.close()
    path = store.predictions_path("t")
    with open(path, "a") as f:
        f.write('{"id": "q3", "prompt_ha')  # killed mid-write
    loaded = PredictionStore(tmp_path).load("t")
    assert list(loaded) == ["q1", "q2"]
    assert path.read_text().count("\n") == 2 and path.read_text().endswith("\n")


def test_finalize_rewrites_in_given_order(tmp_path):
    store = PredictionStore(tmp_path)
    for i in (3, 1, 2):
        store.append("t", item(i))
    store.finalize("t", [item(1), item(2), item(3)])
    lines = store.predictions_path("t").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["q1", "q2", "q3"]
    assert json.loads(lines[0]) == {
        "id": "q1",
        "prompt_hash": "h",
        "output": "out 1",
        "answer": "a1",
        "score": {"acc": 1.0},
    }


def test_run_dir_of_another_model_is_refused(tmp_path):
    PredictionStore(tmp_path).check_fingerprint({"model_path": "/a"}, resume=True)
    with pytest.raises(UserError, match="differs in: model_path"):
        PredictionStore(tmp_path).check_fingerprint({"model_path": "/b"}, resume=True)
    # --no-resume takes the directory over
    PredictionStore(tmp_path).check_fingerprint({"model_path": "/b"}, resume=False)
    assert json.loads((tmp_path / "run.json").read_text()) == {"model_path": "/b"}


def test_task_names_become_safe_file_names(tmp_path):
    assert (
        PredictionStore(tmp_path).predictions_path("refcoco+_val").name
        == "refcoco+_val.predictions.jsonl"
    )
    assert PredictionStore(tmp_path).predictions_path("a/../b").name == "a_.._b.predictions.jsonl"
