"""The file side of data parallel (results/shards.py) and rank detection, in one process."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.errors import UserError
from qwenvl_eval.parallel import Ranks
from qwenvl_eval.results.rundir import RunDir
from qwenvl_eval.results.shards import ShardedStore
from qwenvl_eval.types import ItemResult
from tests.fakes import FakeRunner, write_toy_data


def item(i: int, out: str = "") -> ItemResult:
    return ItemResult(id=f"q{i}", request_hash="h", output=out or f"out {i}", answer=None, score={})


def test_each_rank_appends_to_its_own_file(tmp_path):
    r0, r1 = ShardedStore(tmp_path, 0, 2), ShardedStore(tmp_path, 1, 2)
    r0.append("refcoco+_val", item(0))
    r1.append("refcoco+_val", item(1))
    r0.close(), r1.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "refcoco+_val.rank0-of-2.predictions.jsonl",
        "refcoco+_val.rank1-of-2.predictions.jsonl",
    ]
    # Another task whose name starts the same is not mistaken for this one's rank file.
    ShardedStore(tmp_path, 0, 2).append("refcoco+_val2", item(9))
    assert [p.name for p in RunDir(tmp_path).rank_predictions("refcoco+_val")] == [
        "refcoco+_val.rank0-of-2.predictions.jsonl",
        "refcoco+_val.rank1-of-2.predictions.jsonl",
    ]


def test_load_merges_the_normal_file_and_rank_files_of_any_world_size(tmp_path):
    single = ShardedStore(tmp_path)
    single.append("t", item(0, "from the normal file"))
    single.append("t", item(1, "from the normal file"))
    single.close()
    old = ShardedStore(tmp_path, 2, 3)  # a killed earlier run with 3 ranks
    old.append("t", item(1, "from rank 2 of 3"))
    old.append("t", item(2, "from rank 2 of 3"))
    old.close()
    with open(tmp_path / "t.rank2-of-3.predictions.jsonl", "a") as f:
        f.write('{"id": "q3", "prompt_h')  # torn: that rank was killed mid-write
    mine = ShardedStore(tmp_path, 0, 2)
    mine.append("t", item(4, "mine"))
    mine.close()

    seen = ShardedStore(tmp_path, 0, 2).load("t")
    assert {i: it.output for i, it in seen.items()} == {
        "q0": "from the normal file",
        "q1": "from the normal file",  # the normal file wins over a rank file
        "q2": "from rank 2 of 3",
        "q4": "mine",
    }
    # Another rank's file is only read, never repaired: its writer may still be running.
    assert (tmp_path / "t.rank2-of-3.predictions.jsonl").read_text().endswith('"prompt_h')
    assert set(ShardedStore(tmp_path).load("t")) == {"q0", "q1", "q2", "q4"}


def test_finalize_of_the_merge_removes_the_rank_files_and_discard_removes_all(tmp_path):
    for rank in (0, 1):
        s = ShardedStore(tmp_path, rank, 2)
        s.append("t", item(rank))
        s.close()
    merged = ShardedStore(tmp_path)
    merged.finalize("t", [merged.load("t")[f"q{i}"] for i in (0, 1)])
    assert [p.name for p in tmp_path.iterdir()] == ["t.predictions.jsonl"]
    lines = (tmp_path / "t.predictions.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["q0", "q1"]

    ShardedStore(tmp_path, 1, 2).append("t", item(5))
    ShardedStore(tmp_path).discard("t")
    assert list(tmp_path.iterdir()) == []


def test_ranks_come_from_the_torchrun_environment():
    assert Ranks.from_env({}) == Ranks()
    assert not Ranks.from_env({"WORLD_SIZE": "1", "RANK": "0"}).distributed
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "abc"}
    r = Ranks.from_env(env)
    assert (r.rank, r.world_size, r.local_rank, r.run_id, r.timeout_s) == (3, 4, 1, "abc", 3600)
    assert r.distributed and not r.is_main
    assert r.device("cpu") == "cpu"
    assert Ranks.from_env(env | {"QWENVL_EVAL_RANK_TIMEOUT": "20"}).timeout_s == 20
    with pytest.raises(UserError, match="LOCAL_RANK is not set"):
        Ranks.from_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(UserError, match="RANK=2, LOCAL_RANK=0: out of range for WORLD_SIZE=2"):
        Ranks.from_env({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    with pytest.raises(UserError, match="WORLD_SIZE='two': expected an integer"):
        Ranks.from_env({"WORLD_SIZE": "two"})


def test_a_single_process_rerun_does_only_what_no_rank_file_holds(tmp_path, monkeypatch, toy_task):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    runners: list[FakeRunner] = []
    monkeypatch.setattr(
        app, "load_runner", lambda m, o: runners.append(FakeRunner()) or runners[-1]
    )
    config = RunConfig(
        model=str(model_dir),
        tasks=["toy"],
        data_dir=str(write_toy_data(tmp_path / "data")),
        output_dir=tmp_path / "out",
    )
    full = app.run(config)  # the reference, then the same answers cut into a killed 2-rank run
    lines = (full.run_dir / "toy.predictions.jsonl").read_text().splitlines(keepends=True)
    (full.run_dir / "toy.predictions.jsonl").unlink()
    (full.run_dir / "toy.rank0-of-2.predictions.jsonl").write_text("".join(lines[0:6:2]))
    (full.run_dir / "toy.rank1-of-2.predictions.jsonl").write_text(lines[1])

    rerun = app.run(config)
    assert sorted(runners[1].seen) == ["q3", "q5"]
    assert rerun.results["tasks"]["toy"]["counts"] == {"items": 6, "errors": 0, "resumed": 4}
    assert rerun.results["tasks"]["toy"]["metrics"] == full.results["tasks"]["toy"]["metrics"]
    assert (rerun.run_dir / "toy.predictions.jsonl").read_text() == "".join(lines)
    assert sorted(p.name for p in rerun.run_dir.glob("toy.*")) == ["toy.predictions.jsonl"]
    assert "data_parallel" not in rerun.results["environment"]
