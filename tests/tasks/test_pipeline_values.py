"""Values flow through the task pipeline: `load` returns a `Split`, requests take the seed
and the few-shot pool as arguments, `aggregate` returns an `Aggregate`; a task object is
never written to during a run (`run`, `data check`, `rescore`)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import UserError
from qwenvl_eval.evaluator import evaluate, prepare_task, rescore_task
from qwenvl_eval.model.families import QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.base import Aggregate, Split, Task
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.types import ItemResult, Text
from tests.fakes import FakeRunner

# One task of each kind: few-shot, grounding (aggregate notes), captioning (corpus metric
# with per-item shares), option scoring, a submission split, per-split aggregation.
TASKS = ["okvqa_4shot", "refcoco_val", "flickr30k_4shot", "scienceqa_img", "vqav2_testdev"]
TASKS += ["chartqa", "nocaps"]


def class_state(cls: type) -> dict[str, dict[str, str]]:
    """Every class attribute along the MRO, by its repr (which shows a dict's contents, so a
    declaration changed in place shows too)."""
    return {
        c.__qualname__: {k: repr(v) for k, v in vars(c).items()}
        for c in cls.__mro__
        if c is not object
    }


@pytest.fixture
def made(monkeypatch) -> list[Task]:
    """Every task object the pipeline asks the registry for."""
    seen: list[Task] = []
    real = registry.get_task

    def spy(name: str) -> Task:
        task = real(name)
        seen.append(task)
        return task

    monkeypatch.setattr(registry, "get_task", spy)
    return seen


@pytest.mark.parametrize("name", TASKS)
def test_a_run_never_writes_to_the_task(name, made, tmp_path):
    root = builtin_root()
    cls = type(real_task(name))
    before = class_state(cls)
    runner = FakeRunner(family=QWEN_VL)
    store = PredictionStore(tmp_path / "run")

    check_tasks([name], "builtin", "auto")
    run = prepare_task(name, root, QWEN_VL.info, limit=3, seed=7, data_layout="auto")
    (result,) = evaluate([run], runner, store)
    again = prepare_task(name, root, QWEN_VL.info, limit=3, seed=7)
    rescored = rescore_task(again, store, QWEN_VL.info)

    assert len(made) == 3 and all(type(t) is cls for t in made)
    assert [vars(t) for t in made] == [vars(cls())] * 3  # nothing set on the objects
    assert class_state(cls) == before  # nor on their classes
    assert rescored.metrics == result.metrics and rescored.notes[: len(result.notes)] == (
        result.notes
    )


def real_task(name: str) -> Task:
    (resolved,) = registry.resolve([name])
    return registry._TASKS[resolved]()


def test_load_returns_a_split_with_what_was_read():
    task = registry.get_task("okvqa")
    split = task.load(builtin_root(), "auto")
    assert isinstance(split, Split) and split.docs and split.pool == ()
    assert split.info is not None and split.info["layout"] == "official"
    assert {f["path"] for f in split.info["files"]} >= {
        "okvqa/OpenEnded_mscoco_val2014_questions.json"
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.docs = []  # type: ignore[misc]


def test_fewshot_split_carries_its_pool_and_requests_take_seed_and_pool():
    task = registry.get_task("okvqa_4shot")
    split = task.load(builtin_root())
    train = registry.get_task("okvqa_4shot").train_source.load(builtin_root())
    assert [d.id for d, _ in split.pool] == [d.id for d in train] and len(split.pool) >= 4
    assert all(isinstance(answer, str) and answer for _, answer in split.pool)
    assert set(split.info) >= {"format", "layout", "files", "train"}

    doc = split.docs[0]

    def text(seed: int) -> str:
        req = task.request(doc, QWEN_VL.info, seed=seed, pool=split.pool)
        return "".join(p.text for p in req.parts if isinstance(p, Text))

    # One task object builds either seed's prompt, in any order: it holds no seed.
    assert text(1) != text(2) and text(1) == text(1)
    assert task.prompt_hash(QWEN_VL.info, seed=1) != task.prompt_hash(QWEN_VL.info, seed=2)
    with pytest.raises(UserError, match="no train examples"):
        task.request(doc, QWEN_VL.info, seed=1)


def test_aggregate_returns_metrics_notes_and_item_scores():
    docs = {d.id: d for d in registry.get_task("flickr30k").load(builtin_root()).docs}
    items = [
        ItemResult(i, "h", d.fields["references"][0], d.fields["references"][0], {})
        for i, d in docs.items()
    ]
    summary = registry.get_task("flickr30k").aggregate(items, docs)
    assert isinstance(summary, Aggregate) and set(summary.metrics) == {"CIDEr"}
    assert set(summary.item_scores) == set(docs)
    assert all(set(s) == {"CIDEr"} for s in summary.item_scores.values())
    assert all(it.score == {} for it in items)

    grounding = registry.get_task("refcoco_val")
    hit = ItemResult("a", "h", "x", None, {"acc@0.5": 1.0, "iou": 0.75}, None, {})
    hit.extra["iou_arithmetic"] = "float64"
    miss = ItemResult("b", "h", "x", None, {"acc@0.5": 0.0, "iou": 0.25}, None, {})
    miss.extra.update(parse_failed=True, iou_arithmetic="float32-eval_mm")
    out = grounding.aggregate([hit, miss], {})
    assert out.metrics == {"acc@0.5": 50.0, "miou": 50.0, "parse_failures": 1.0}
    assert [n.split(":")[0] for n in out.notes] == [
        "iou_arithmetic float32-eval_mm",
        "iou_arithmetic float64",
    ]
    assert out.item_scores == {}
    assert Aggregate({"m": 1.0}) == Aggregate({"m": 1.0}, [], {})


def test_item_scores_of_an_aggregate_reach_the_predictions_file(tmp_path):
    run = prepare_task("flickr30k", builtin_root(), QWEN_VL.info, limit=3)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(family=QWEN_VL), store)
    rows = [json.loads(line) for line in store.predictions_path("flickr30k").open()]
    assert [r["id"] for r in rows] == [d.id for d in run.docs]
    shares = [r["score"]["CIDEr"] for r in rows]
    # The items' shares average to the corpus number (pycocoevalcap's CIDEr is their mean).
    assert sum(shares) / len(shares) == pytest.approx(result.metrics["CIDEr"], rel=1e-9)
    assert result.data is not None and result.data["layout"] == "official"
