from __future__ import annotations

import json

import pytest

from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.prompts import render_raw
from tests.fakes import FakeRunner, write_toy_data


@pytest.fixture()
def data_root(tmp_path):
    return write_toy_data(tmp_path / "data")


def test_scores_in_dataset_order(toy_task, data_root, tmp_path):
    run = prepare_task("toy", data_root, QWEN2_VL.info)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(), store)
    # The fake echoes the question: even ids are right (answer == question), odd are wrong.
    assert result.metrics == {"exact": 50.0}
    assert result.counts == {"items": 6, "errors": 0, "resumed": 0}
    lines = [json.loads(x) for x in store.predictions_path("toy").read_text().splitlines()]
    assert [x["id"] for x in lines] == [f"q{i}" for i in range(6)]
    assert lines[0]["output"] == "what 0?" and lines[0]["score"] == {"exact": 1.0}
    assert lines[1]["answer"] == "what 1?" and lines[1]["score"] == {"exact": 0.0}


def test_limit_takes_first_items(toy_task, data_root, tmp_path):
    run = prepare_task("toy", data_root, QWEN2_VL.info, limit=2)
    assert [d.id for d in run.docs] == ["q0", "q1"] and run.limited


def test_raw_family_gets_the_raw_prompt(toy_task, data_root):
    run = prepare_task("toy", data_root, QWEN_VL.info)
    assert render_raw(run.requests[3].parts) == "<img>img/3.png</img>what 3? Answer:"
    assert run.requests[3].style == "raw"


def test_one_failed_item_keeps_the_rest(toy_task, data_root, tmp_path):
    run = prepare_task("toy", data_root, QWEN2_VL.info)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(fail={"q2"}), store)
    assert result.counts["errors"] == 1 and result.counts["items"] == 6
    assert result.metrics == {"exact": 100.0 * 2 / 6}  # q0, q4 right; q2 failed scores 0
    lines = {
        json.loads(x)["id"]: json.loads(x)
        for x in store.predictions_path("toy").read_text().splitlines()
    }
    assert lines["q2"]["error"] == "image could not be decoded"


def test_scoring_exception_is_recorded_not_raised(toy_task, data_root, tmp_path, monkeypatch):
    original = toy_task.score

    def flaky(self, doc, response, family):
        if doc.id == "q4":
            raise ValueError("boom")
        return original(self, doc, response, family)

    monkeypatch.setattr(toy_task, "score", flaky)
    run = prepare_task("toy", data_root, QWEN2_VL.info)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(), store)
    assert result.counts["errors"] == 1
    assert result.metrics["exact"] == pytest.approx(100.0 * 2 / 6)  # q0, q2 right; q4 broke
    saved = store.load("toy")
    assert saved["q4"].error == "scoring failed: ValueError: boom"


def test_killed_run_resumes_without_recomputing(toy_task, data_root, tmp_path):
    store_dir = tmp_path / "run"
    run = prepare_task("toy", data_root, QWEN2_VL.info)
    with pytest.raises(KeyboardInterrupt):
        evaluate([run], FakeRunner(crash_after=4), PredictionStore(store_dir))
    saved = PredictionStore(store_dir).load("toy")
    assert len(saved) == 4  # every answer produced before the kill is on disk

    runner = FakeRunner()
    (result,) = evaluate([run], runner, PredictionStore(store_dir))
    assert len(runner.seen) == 2 and not set(runner.seen) & set(saved)
    assert result.counts == {"items": 6, "errors": 0, "resumed": 4}
    assert result.metrics == {"exact": 50.0}


def test_changed_prompt_is_not_reused(toy_task, data_root, tmp_path):
    store_dir = tmp_path / "run"
    evaluate(
        [prepare_task("toy", data_root, QWEN2_VL.info)], FakeRunner(), PredictionStore(store_dir)
    )
    changed = prepare_task("toy", data_root, QWEN2_VL.info, gen_overrides={"max_new_tokens": 7})
    assert changed.prompt_hash != prepare_task("toy", data_root, QWEN2_VL.info).prompt_hash
    runner = FakeRunner()
    (result,) = evaluate([changed], runner, PredictionStore(store_dir))
    assert len(runner.seen) == 6 and result.counts["resumed"] == 0


def test_unknown_generation_override_is_a_user_error(toy_task, data_root):
    from qwenvl_eval.errors import UserError

    with pytest.raises(UserError, match="temperature_x"):
        prepare_task("toy", data_root, QWEN2_VL.info, gen_overrides={"temperature_x": 1})


def test_missing_image_names_file_item_and_field(toy_task, data_root):
    from qwenvl_eval.errors import DataError

    (data_root / "toy" / "img" / "3.png").unlink()
    with pytest.raises(DataError) as err:
        prepare_task("toy", data_root, QWEN2_VL.info)
    msg = str(err.value)
    assert "items.json" in msg and "item q3" in msg and "'image'" in msg and "3.png" in msg


def test_image_path_escaping_the_root_is_refused(toy_task, data_root):
    from qwenvl_eval.errors import DataError

    path = data_root / "toy" / "items.json"
    rows = json.loads(path.read_text())
    rows[1]["image"] = "../../../etc/passwd"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError, match="leaves the data root"):
        prepare_task("toy", data_root, QWEN2_VL.info)


def test_failed_items_are_retried_on_resume_but_not_by_the_data_parallel_merge(
    toy_task, data_root, tmp_path
):
    run = prepare_task("toy", data_root, QWEN2_VL.info)
    store = PredictionStore(tmp_path / "run")
    evaluate([run], FakeRunner(fail={"q2"}), store)
    # The merge of a distributed run: every item was just answered, q2 failed on its rank;
    # rank 0 must not answer it a second time on its own.
    merge = FakeRunner()
    (result,) = evaluate([run], merge, store, retry_failed=False)
    assert merge.seen == [] and result.counts["errors"] == 1
    # A resume (the user reran the command) does retry it.
    rerun = FakeRunner()
    (result,) = evaluate([run], rerun, store)
    assert rerun.seen == ["q2"] and result.counts["errors"] == 0


def test_a_saved_task_is_prepared_with_its_own_item_count(toy_task, data_root):
    # rescore and report rebuild a run's tasks from results.json; a task merged in from an
    # earlier, smaller --limit keeps its own items.
    from qwenvl_eval.evaluator import prepare_saved_task

    results = {
        "config": {"data_dir": str(data_root), "limit": None, "seed": 0, "gen_kwargs": {}},
        "model": {"family": "qwen2-vl"},
        "tasks": {"toy": {"counts": {"items": 2}}},
    }
    run = prepare_saved_task(results, "toy")
    assert [d.id for d in run.docs] == ["q0", "q1"]
    results["tasks"]["toy"] = {}
    assert len(prepare_saved_task(results, "toy").docs) == 6
