"""The README's demo command, end to end on the tiny model, and its reproducibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys

DEMO = [
    "run",
    "--model",
    "tiny-qwen2-vl",
    "--tasks",
    "vqav2,refcoco",
    "--data-dir",
    "builtin",
    "--limit",
    "8",
]


def run_demo(out_dir, *extra: str) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *DEMO, "--output-dir", str(out_dir), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_demo_writes_results_and_reproduces_them(tmp_path):
    first = run_demo(tmp_path / "a")
    assert first.returncode == 0, first.stderr
    assert "vqav2" in first.stdout and "refcoco_val" in first.stdout and "acc@0.5" in first.stdout
    (run_dir,) = (tmp_path / "a").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert list(results["tasks"]) == ["vqav2", "refcoco_val"]
    for task in ("vqav2", "refcoco_val"):
        assert results["tasks"][task]["counts"] == {"items": 8, "errors": 0, "resumed": 0}
        lines = (run_dir / f"{task}.predictions.jsonl").read_text().splitlines()
        rows = [json.loads(x) for x in lines]
        assert len(rows) == 8 and all(
            {"id", "prompt_hash", "output", "answer", "score"} <= set(r) for r in rows
        )
        assert len({r["output"] for r in rows}) > 1  # the tiny model's answers vary

    # Same inputs, same config, another batch size: the same predictions, byte for byte.
    second = run_demo(tmp_path / "b", "--batch-size", "3")
    assert second.returncode == 0, second.stderr
    (run_dir_b,) = (tmp_path / "b").iterdir()
    assert run_dir_b.name == run_dir.name
    for task in ("vqav2", "refcoco_val"):
        assert (run_dir_b / f"{task}.predictions.jsonl").read_bytes() == (
            run_dir / f"{task}.predictions.jsonl"
        ).read_bytes()


def test_sigkilled_run_resumes_to_the_same_predictions(tmp_path):
    """Kill the process (no clean-up code runs) while it writes; the rerun finishes the job
    without recomputing what was saved, and ends with the uninterrupted run's predictions."""
    import signal
    import time

    args = [
        "run",
        "--model",
        "tiny-qwen2-vl",
        "--tasks",
        "refcoco",
        "--data-dir",
        "builtin",
        "--limit",
        "32",
        "--batch-size",
        "1",
    ]
    env = os.environ | {"COLUMNS": "200"}
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwenvl_eval", *args, "--output-dir", str(killed_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 300
    saved = 0
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(killed_dir.glob("*/refcoco_val.predictions.jsonl"))
        saved = len(files[0].read_text().splitlines()) if files else 0
        if saved >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = killed_dir.iterdir()
    assert not (run_dir / "results.json").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *args, "--output-dir", str(killed_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr
    counts = json.loads((run_dir / "results.json").read_text())["tasks"]["refcoco_val"]["counts"]
    assert counts["items"] == 32 and counts["resumed"] >= 3 and counts["errors"] == 0

    clean = subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *args, "--output-dir", str(tmp_path / "clean")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert clean.returncode == 0, clean.stderr
    (clean_dir,) = (tmp_path / "clean").iterdir()
    assert (run_dir / "refcoco_val.predictions.jsonl").read_bytes() == (
        clean_dir / "refcoco_val.predictions.jsonl"
    ).read_bytes()
