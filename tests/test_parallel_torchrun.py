"""Real `torchrun --nproc-per-node 2` runs (gloo, CPU, the tiny Qwen2-VL) against one process.

A generation task (vqav2) and an option-scoring one (scienceqa_img). Generated text is
batch-invariant, so its predictions lines are identical byte for byte. Option log-probs
depend on the batch's padding in the last float32 bits (as with any change of --batch-size,
see tests/model/test_hf.py), and a rank's batches hold other items than one process's, so
those are compared to 1e-5 and everything else, metrics included, exactly.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.results.shards import FAULT_ENV, read_items

TASKS = ["vqav2", "scienceqa_img"]
ITEMS = 8


def _config(out: Path) -> RunConfig:
    return RunConfig(
        model="tiny-qwen2-vl", tasks=TASKS, data_dir="builtin", limit=ITEMS, output_dir=out
    )


def _torchrun(out: Path, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "qwenvl_eval", "run", "--model", "tiny-qwen2-vl", "--tasks", ",".join(TASKS)]
    cmd += ["--data-dir", "builtin", "--limit", str(ITEMS), "--output-dir", str(out)]
    full_env = os.environ | {"OMP_NUM_THREADS": "1", "QWENVL_EVAL_RANK_TIMEOUT": "120"} | env
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=300)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _assert_same_predictions(ref_dir: Path, run_dir: Path) -> None:
    assert run_dir.name == ref_dir.name  # the same run directory name: the same fingerprint
    gen = "vqav2.predictions.jsonl"
    assert (run_dir / gen).read_text() == (ref_dir / gen).read_text()
    ref = (ref_dir / "scienceqa_img.predictions.jsonl").read_text().splitlines()
    got = (run_dir / "scienceqa_img.predictions.jsonl").read_text().splitlines()
    assert len(got) == len(ref) == ITEMS
    for r, g in zip(ref, got, strict=True):
        r, g = json.loads(r), json.loads(g)
        assert {k: g[k] for k in ("id", "prompt_hash", "answer", "score")} == {
            k: r[k] for k in ("id", "prompt_hash", "answer", "score")
        }
        assert _same(g, r), (g, r)
    assert sorted(p.name for p in run_dir.glob("*.jsonl")) == sorted(
        f"{t}.predictions.jsonl" for t in TASKS
    )  # the rank files were merged away


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Any]:
    outcome = app.run(_config(tmp_path_factory.mktemp("single")))
    return {"dir": outcome.run_dir, "results": outcome.results}


def test_two_ranks_give_the_single_process_results(reference, tmp_path):
    proc = _torchrun(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    _assert_same_predictions(reference["dir"], run_dir)
    res = json.loads((run_dir / "results.json").read_text())
    for task in TASKS:
        want, got = reference["results"]["tasks"][task], res["tasks"][task]
        assert got["metrics"] == want["metrics"]
        assert got["counts"] == want["counts"] == {"items": ITEMS, "errors": 0, "resumed": 0}
        assert got["prompt_hash"] == want["prompt_hash"]
    dp = res["environment"]["data_parallel"]
    assert dp["world_size"] == 2
    # Each rank answered its half of each task; throughput sums the ranks.
    assert [s["items"] for s in dp["rank_throughput"]] == [ITEMS, ITEMS]
    assert res["throughput"]["items"] == 2 * ITEMS
    assert proc.stdout.count("vqa_acc ") == 1  # one results table, from rank 0


def test_a_killed_rank_leaves_its_answers_and_the_rerun_does_only_the_rest(reference, tmp_path):
    # Rank 1 SIGKILLs itself right after writing its 2nd answer; torchrun then stops rank 0.
    proc = _torchrun(tmp_path, **{FAULT_ENV: "1:2"})
    assert proc.returncode != 0
    (run_dir,) = tmp_path.iterdir()
    rank1 = read_items(run_dir / "vqav2.rank1-of-2.predictions.jsonl")
    assert len(rank1) == 2
    saved = {t: set() for t in TASKS}
    for task in TASKS:
        for path in run_dir.glob(f"{task}.rank*-of-2.predictions.jsonl"):
            saved[task] |= set(read_items(path))
    assert not (run_dir / "results.json").exists()

    rerun = app.run(_config(tmp_path))  # one process this time
    assert rerun.run_dir == run_dir
    for task in TASKS:
        counts = rerun.results["tasks"][task]["counts"]
        assert counts == {"items": ITEMS, "errors": 0, "resumed": len(saved[task])}
        assert (
            rerun.results["tasks"][task]["metrics"]
            == reference["results"]["tasks"][task]["metrics"]
        )
    computed = 2 * ITEMS - sum(len(s) for s in saved.values())
    assert rerun.results["throughput"]["items"] == computed
    _assert_same_predictions(reference["dir"], run_dir)
