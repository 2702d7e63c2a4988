"""`qwenvl-eval compare` at full VQAv2 val scale: two synthetic 214,354-item runs, the gate
before (per-item objects, index bootstrap: the algorithm of the first release, kept below) and
after (the `compare` command itself), each in its own process, side by side: wall time, peak
RSS, and the intervals they give.

    python bench/bench_compare.py                  # 214,354 items, both arms
    python bench/bench_compare.py --items 20000    # smaller, quicker
    python bench/bench_compare.py --skip-old       # only the current command

The runs are written the way the harness writes them (results.json with the task's declared
metric meanings, one JSON line per item with id, prompt hash, run, output, answer, scores and
the runner's meta); per-item VQA scores take the values 0, 0.3, 0.6, 0.9, 1 with VQAv2-like
frequencies, and the current run differs on 4% of the items (a drop of about 2.3 points)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VQAV2_VAL = 214_354
VALUES = np.array([0.0, 0.3, 0.6, 0.9, 1.0])
FREQ = np.array([0.17, 0.03, 0.03, 0.05, 0.72])


def write_run(run_dir: Path, scores: np.ndarray, official: np.ndarray, model: str) -> None:
    from qwenvl_eval import registry

    run_dir.mkdir(parents=True)
    task = registry.get_task("vqav2")
    metrics = {"vqa_acc": 100 * float(scores.mean()), "vqa_acc_official": 100 * official.mean()}
    results = {
        "schema_version": 1,
        "config": {"model": model, "tasks": ["vqav2"], "limit": None, "seed": 1234},
        "model": {"spec": model, "family": "qwen2-vl", "backend": "hf-transformers"},
        "environment": {"harness_version": "bench", "harness_commit": None},
        "tasks": {
            "vqav2": {
                "task": "vqav2",
                "metrics": metrics,
                "counts": {"items": len(scores), "errors": 0, "resumed": 0},
                "prompt_hash": "0123456789abcdef",
                "generation": {"max_new_tokens": 10},
                "headline": "vqa_acc",
                "metric_meanings": {
                    k: m.to_json() for k, m in task.metric_meanings(metrics).items()
                },
            }
        },
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    with open(run_dir / "vqav2.predictions.jsonl", "w", encoding="utf-8") as f:
        for i, (s, o) in enumerate(zip(scores.tolist(), official.tolist(), strict=True)):
            answer = "yes" if s >= 0.5 else "two"
            rec = {
                "id": str(262148000 + i),
                "prompt_hash": f"{i:016x}",
                "run": "9800298cafe4cff4",
                "output": answer,
                "answer": answer,
                "score": {"vqa_acc": s, "vqa_acc_official": o},
                "extra": {"meta": {"prompt_tokens": 71, "input_sizes": [[448, 336]]}},
            }
            f.write(json.dumps(rec) + "\n")


def build(root: Path, n: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    base = rng.choice(VALUES, size=n, p=FREQ)
    cur = base.copy()
    changed = rng.random(n) < 0.04
    cur[changed] = rng.choice(VALUES, size=int(changed.sum()), p=FREQ[::-1])
    official = np.where(rng.random(n) < 0.02, np.round(base * 0.9, 1), base)
    cur_official = np.where(changed, cur, official)
    write_run(root / "base", base, official, "candidate")
    write_run(root / "cur", cur, cur_official, "candidate")
    return root / "base", root / "cur"


# -- before: the gate of the first release --------------------------------------------------
def old_bootstrap(base, cur, *, alpha: float, resamples: int = 10000):
    d = cur - base
    rng = np.random.default_rng(20230824)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):
        k = min(1000, resamples - start)
        idx = rng.integers(0, len(d), size=(k, len(d)))
        means[start : start + k] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def old_gate(base_dir: Path, cur_dir: Path) -> dict[str, list[float]]:
    from qwenvl_eval.results.runs import load_run

    baseline, current = load_run(base_dir), load_run(cur_dir)
    b_items = {it.id: it for it in baseline.items("vqav2")}
    c_items = {it.id: it for it in current.items("vqav2")}
    ids = [i for i in b_items if i in c_items]
    out = {}
    for key in ("vqa_acc", "vqa_acc_official"):
        b = np.array([float(b_items[i].score.get(key, 0.0)) for i in ids]) * 100
        c = np.array([float(c_items[i].score.get(key, 0.0)) for i in ids]) * 100
        lo, hi = old_bootstrap(b, c, alpha=0.05)
        out[key] = [float((c - b).mean()), lo, hi]
    return out


def new_figures(out_dir: Path) -> dict[str, list[float]]:
    rows = {}
    for line in (out_dir / "compare.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 7 and cells[1] == "vqav2":
            lo, hi = cells[7].strip("[]").split(",")
            rows[cells[2].split()[0]] = [float(cells[6]), float(lo), float(hi)]
    return rows


def measure(cmd: list[str]) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Wall seconds, CPU seconds (user + system: what a shared machine's load does not
    inflate) and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, subprocess.CompletedProcess(cmd, code, out, err)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=VQAV2_VAL)
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--arm", choices=["old"], help=argparse.SUPPRESS)
    ap.add_argument("--runs", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arm == "old":
        print(json.dumps(old_gate(*args.runs)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        base, cur = build(root, args.items)
        size = (base / "vqav2.predictions.jsonl").stat().st_size / 2**20
        print(
            f"built 2 runs of {args.items:,} items ({size:.0f} MB of predictions each) in "
            f"{time.perf_counter() - t:.1f} s"
        )
        gate = [sys.executable, "-m", "qwenvl_eval", "compare", str(base), str(cur)]
        gate += ["--output", str(root / "out" / "compare.md")]
        new_wall, new_cpu, new_rss, done = measure(gate)
        assert done.returncode in (0, 1), done.stderr[-2000:]
        new = new_figures(root / "out")
        rows = [("after (compare command)", new_wall, new_cpu, new_rss, new)]
        if not args.skip_old:
            old_cmd = [sys.executable, __file__, "--arm", "old", "--runs", str(base), str(cur)]
            old_wall, old_cpu, old_rss, done = measure(old_cmd)
            assert done.returncode == 0, done.stderr[-2000:]
            old = json.loads(done.stdout)
            rows.insert(0, ("before (first release)", old_wall, old_cpu, old_rss, old))
    print("\n| arm | items | wall s | CPU s | peak RSS MB | vqa_acc diff [95% CI] | official |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name, wall, cpu, rss, figs in rows:
        cells = [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" for d, lo, hi in figs.values()]
        print(
            f"| {name} | {args.items:,} | {wall:.2f} | {cpu:.2f} | {rss:.0f} "
            f"| {' | '.join(cells)} |"
        )
    if len(rows) == 2:
        (_, ow, oc, orss, _), (_, nw, nc, nrss, _) = rows
        print(
            f"\nafter vs before: {ow / nw:.1f}x less wall time, {oc / nc:.1f}x less CPU time, "
            f"{orss / nrss:.1f}x less peak memory"
        )


if __name__ == "__main__":
    main()
