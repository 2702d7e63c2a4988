"""The run directory's file names, as every writer and reader gets them from `rundir`."""

from pathlib import Path

from qwenvl_eval.results.rundir import RunDir, is_run_file, results_json_of
from qwenvl_eval.results.store import PredictionStore


def test_names_of_a_task_with_odd_characters(tmp_path):
    d = RunDir(tmp_path)
    assert d.predictions("a/b c").name == "a_b_c.predictions.jsonl"
    assert d.predictions("a/b c", 1, 4).name == "a_b_c.rank1-of-4.predictions.jsonl"
    assert d.rejected("a/b c").name == "a_b_c.rejected.jsonl"
    assert d.submission("a/b c").name == "a_b_c.submission.json"
    assert (d.lock().name, d.lock(3).name) == (".lock", ".lock-rank3")


def test_the_store_writes_where_rundir_says(tmp_path):
    store = PredictionStore(tmp_path)
    store.lock(2)
    store.check_fingerprint({"model_path": "/m"}, resume=True)
    path = store.write_submission("vqa/test", [{"question_id": 1, "answer": "a"}])
    store.unlock()
    d = RunDir(tmp_path)
    assert sorted(tmp_path.iterdir()) == sorted([d.lock(2), d.run_file, d.submission("vqa/test")])
    assert path == d.submission("vqa/test")


def test_rank_files_of_another_task_are_not_this_tasks(tmp_path):
    for name in ["t.rank0-of-2", "t.rank1-of-2", "t2.rank0-of-2", "t", "t.rankx-of-2"]:
        (tmp_path / f"{name}.predictions.jsonl").write_text("")
    assert [p.name for p in RunDir(tmp_path).rank_predictions("t")] == [
        "t.rank0-of-2.predictions.jsonl",
        "t.rank1-of-2.predictions.jsonl",
    ]
    assert RunDir(tmp_path / "missing").rank_predictions("t") == []


def test_run_files_and_the_results_file_a_user_names(tmp_path):
    assert is_run_file(Path("x/results.md")) and is_run_file(Path("x/t.rejected.jsonl"))
    assert not is_run_file(Path("x/compare.md"))
    assert results_json_of(tmp_path) == tmp_path / "results.json"
    assert results_json_of(tmp_path / "other.json") == tmp_path / "other.json"
