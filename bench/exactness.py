"""Exactness of the batched runner: batch size 1 against batch size N, token for token.

Two checks on the same requests (workloads and models from bench/bench_runner.py):
  1. greedy generation (VQAv2-like: images of mixed sizes, questions of mixed lengths): the
     generated token ids at batch size 1 and at batch size N must be identical per item;
  2. option scoring (ScienceQA-like prompts; options of one to several tokens, 2-4 per item):
     the summed log-probabilities at batch size 1 and N must agree, and must equal a direct
     computation from the model's logits (one plain forward over prompt + option, no cache, no
     batching, log_softmax, gather) for the first few items.

fp32 (the CPU default) must agree exactly: exit 1 otherwise. In bf16, a different batch shape
changes rounding, which can flip a near-tied greedy choice or option argmax of a random model;
the script then reports the agreement rate, where generations first diverge and the
log-probability margin between the two competing tokens there (a small margin says near-tie,
a large one a bug), and exits 0 unless --strict.

CPU, tiny random-weight models:
    python bench/exactness.py --family qwen2-vl
Real-size random-weight Qwen2-VL (config values in bench_runner.py, nothing downloaded), GPU:
    python bench/exactness.py --config qwen2-vl-2b --device cuda --dtype bf16
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import bench_runner as br  # noqa: E402  (the shared workloads and model builders)

# Option sets of different lengths and counts, so that scoring also runs the runner's cached
# continuation over multi-token options (ScienceQA's " A".." D" are one token each).
OPTION_SETS = [
    (" A", " B", " C", " D"),
    (" Ohio", " Maine", " Texas", " Utah"),
    (" The answer is A.", " The answer is B.", " The answer is C."),
    (" yes", " a red bus on the left of the tree"),
]
MARGIN_ITEMS = 20  # mismatched generations whose divergence margin is measured


# ---- workloads ---------------------------------------------------------------------------
def generation_requests(images, n: int, seed: int, max_new_tokens: int | None):
    reqs = br.vqa_requests(images, n, seed)
    if max_new_tokens is not None:
        g = reqs[0].generation.replace(max_new_tokens=max_new_tokens)
        reqs = [replace(r, generation=g) for r in reqs]
    return reqs


def score_requests(images, n: int, seed: int):
    return [
        replace(r, options=OPTION_SETS[i % len(OPTION_SETS)])
        for i, r in enumerate(br.sqa_requests(images, n, seed))
    ]


# ---- runs --------------------------------------------------------------------------------
def with_batch_size(runner, batch_size: int) -> None:
    runner.options = replace(runner.options, batch_size=batch_size)


def run_generate(runner, requests, batch_size: int) -> tuple[dict, float]:
    with_batch_size(runner, batch_size)
    t0 = time.perf_counter()
    out = {}
    for r in runner.generate(requests):
        if r.error:
            raise RuntimeError(f"generation of {r.id} failed at batch size {batch_size}: {r.error}")
        out[r.id] = r.meta["output_token_ids"]
    return out, time.perf_counter() - t0


def run_score(runner, requests, batch_size: int) -> tuple[dict, float]:
    with_batch_size(runner, batch_size)
    t0 = time.perf_counter()
    out = {}
    for r in runner.score_options(requests):
        if r.error:
            raise RuntimeError(f"scoring failed for {r.id} at batch size {batch_size}: {r.error}")
        out[r.id] = [o.sum_logprob for o in r.options]
    return out, time.perf_counter() - t0


def divergence(runner, request, a: list[int], b: list[int]) -> dict:
    """Where two generations of one prompt first differ, and the log-probability gap between
    the two tokens chosen there, from one plain unbatched forward over prompt + common prefix."""
    import torch

    k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if k is None:  # one is a prefix of the other: only a length cut can do that
        return {"id": request.id, "position": min(len(a), len(b)), "margin": None}
    x = runner.prepare(request, 0).inputs
    ids = torch.tensor([x.ids + a[:k]], device=runner.device)
    kw = {"mm_token_type_ids": torch.tensor([x.types + [0] * k], device=runner.device)}
    if x.pixel_values is not None:
        kw["pixel_values"] = x.pixel_values.to(runner.device, runner.dtype)
        kw["image_grid_thw"] = x.grid.to(runner.device)
    with torch.inference_mode():
        logits = runner.model(input_ids=ids, attention_mask=torch.ones_like(ids), **kw).logits
    lp = torch.log_softmax(logits[0, -1].float(), dim=-1)
    return {
        "id": request.id,
        "position": k,
        "tokens": [a[k], b[k]],
        "margin": abs(lp[a[k]].item() - lp[b[k]].item()),
    }


def argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=xs.__getitem__)


def max_abs_diff(x: dict, y: dict, ids) -> float:
    return max(abs(p - q) for k in ids for p, q in zip(x[k], y[k], strict=True))


def compare_scores(x: dict, y: dict, ids, tol: float) -> dict:
    ids = list(ids)

    def close(k) -> bool:
        return all(
            math.isclose(p, q, rel_tol=tol, abs_tol=tol) for p, q in zip(x[k], y[k], strict=True)
        )

    return {
        "items": len(ids),
        "max_abs_diff": max_abs_diff(x, y, ids),
        "items_over_tol": sum(not close(k) for k in ids),
        "same_argmax": sum(argmax(x[k]) == argmax(y[k]) for k in ids),
    }


# ---- report ------------------------------------------------------------------------------
def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100.0 * n / d:.1f}%)" if d else "-"


def summary_rows(rep: dict) -> list[tuple[str, str]]:
    g, s, d = rep["generation"], rep["scoring"], rep["direct"]
    rows = [
        ("generation: identical tokens", pct(g["identical"], g["items"])),
        ("  tokens generated (bs 1)", str(g["new_tokens"])),
    ]
    if g["first_diff_positions"]:
        pos = ", ".join(f"{k}: {v}" for k, v in sorted(g["first_diff_positions"].items()))
        rows.append(("  first differing position", f"{{{pos}}} (position: items)"))
        margins = [m["margin"] for m in g["divergences"] if m["margin"] is not None]
        if margins:
            rows.append(
                (
                    "  margin there (logprob)",
                    f"median {statistics.median(margins):.3g}, max {max(margins):.3g} "
                    f"(n={len(margins)})",
                )
            )
    rows += [
        ("scoring: same argmax bs 1 / N", pct(s["same_argmax"], s["items"])),
        ("  max |sum logprob| diff", f"{s['max_abs_diff']:.2e}"),
        ("  items over tolerance", f"{s['items_over_tol']} (rel/abs tol {rep['tol']:g})"),
        (
            f"direct vs runner ({d['items']} items)",
            f"max |diff| bs 1 {d['bs1']['max_abs_diff']:.2e}, bs N {d['bsN']['max_abs_diff']:.2e}",
        ),
        (
            "  same argmax direct / bs 1 / N",
            f"{d['bs1']['same_argmax']}/{d['items']}, {d['bsN']['same_argmax']}/{d['items']}",
        ),
    ]
    return rows


def failures_of(rep: dict) -> list[str]:
    g, s, d = rep["generation"], rep["scoring"], rep["direct"]
    out = []
    if g["identical"] != g["items"]:
        out.append(f"{g['items'] - g['identical']} generations differ")
    if s["same_argmax"] != s["items"]:
        out.append(f"{s['items'] - s['same_argmax']} option argmaxes differ")
    if s["items_over_tol"]:
        out.append(f"{s['items_over_tol']} items' option scores differ beyond {rep['tol']:g}")
    for arm in ("bs1", "bsN"):
        if d[arm]["items_over_tol"] or d[arm]["same_argmax"] != d["items"]:
            out.append(f"direct computation disagrees with the runner at {arm}")
    return out


# ---- main --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="qwen2-vl", choices=["qwen2-vl", "qwen2.5-vl", "qwen3-vl"])
    ap.add_argument(
        "--config", choices=sorted(br.REAL_CONFIGS), help="real-size random-weight model"
    )
    ap.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda")
    ap.add_argument("--dtype", default="auto", help="auto: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--items", type=int, default=64, help="items per check")
    ap.add_argument("--batch-size", type=int, default=16, help="N, compared with 1")
    ap.add_argument("--direct-items", type=int, default=8, help="items checked against logits")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default 10 (VQAv2-like)")
    ap.add_argument("--max-pixels", type=int, default=None, help="cap image size (smoke runs)")
    ap.add_argument("--tol", type=float, default=None, help="default 1e-4 fp32, 5e-2 otherwise")
    ap.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="exit 1 on any disagreement (default: on in fp32, report only otherwise)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--workers", type=int, default=2, help="preprocessing threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = ap.parse_args(argv)
    if args.items < 1 or args.batch_size < 2:
        ap.error("--items must be >= 1 and --batch-size >= 2")

    import torch
    import transformers

    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.hf import HFRunner

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="qwenvl-exact-"))
    os.environ.setdefault("QWENVL_EVAL_CACHE", str(work / "cache"))
    t_start = time.perf_counter()
    try:
        real = args.config is not None
        model = br.real_size_model(args.config, work) if real else br.tiny_model(args.family)
        images = br.make_images(work, 16, br.COCO_SIZES if real else br.TINY_SIZES, args.seed)
        opts = RunnerOptions(
            device=args.device,
            dtype=args.dtype,
            batch_size=1,
            max_pixels=args.max_pixels,
            preprocess_workers=args.workers,
            seed=args.seed,
            backend_options={"output_token_ids": True, "random_weights": real},
        )
        if real:
            torch.manual_seed(args.seed)  # the random weights
        runner = HFRunner(model, opts)
        fp32 = runner.dtype == torch.float32
        tol = args.tol if args.tol is not None else (1e-4 if fp32 else 5e-2)
        strict = args.strict if args.strict is not None else fp32
        dtype = str(runner.dtype).replace("torch.", "")
        print(
            f"model {model.spec} ({runner.family.name}) on {runner.device}, {dtype}, "
            f"attention {runner.attn_implementation}, batch size 1 vs {args.batch_size}, "
            f"{args.items} items, torch threads {torch.get_num_threads()}",
            flush=True,
        )
        gen = generation_requests(images, args.items, args.seed, args.max_new_tokens)
        sco = score_requests(images, args.items, args.seed)
        n = args.batch_size

        # 1. generation
        g1, tg1 = run_generate(runner, gen, 1)
        gn, tgn = run_generate(runner, gen, n)
        diff = [r for r in gen if g1[r.id] != gn[r.id]]
        divs = [divergence(runner, r, g1[r.id], gn[r.id]) for r in diff[:MARGIN_ITEMS]]
        positions = Counter(
            next(
                (i for i, (x, y) in enumerate(zip(g1[r.id], gn[r.id], strict=False)) if x != y),
                min(len(g1[r.id]), len(gn[r.id])),
            )
            for r in diff
        )
        # 2. option scoring, and the direct computation (bench_runner's per-option forward)
        s1, ts1 = run_score(runner, sco, 1)
        sn, tsn = run_score(runner, sco, n)
        direct_reqs = sco[: args.direct_items]
        direct, _ = br.peer_score(runner, direct_reqs)
        direct_ids = [r.id for r in direct_reqs]

        rep = {
            "command": "python bench/exactness.py " + shlex.join(argv),
            "model": model.spec,
            "family": runner.family.name,
            "device": str(runner.device),
            "dtype": dtype,
            "attn_implementation": runner.attn_implementation,
            "batch_size": n,
            "tol": tol,
            "strict": strict,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "generation": {
                "items": len(gen),
                "identical": len(gen) - len(diff),
                "new_tokens": sum(len(v) for v in g1.values()),
                "first_diff_positions": dict(positions),
                "divergences": divs,
                "seconds": [round(tg1, 2), round(tgn, 2)],
            },
            "scoring": {
                **compare_scores(s1, sn, [r.id for r in sco], tol),
                "options": sum(len(r.options) for r in sco),
                "seconds": [round(ts1, 2), round(tsn, 2)],
            },
            "direct": {
                "items": len(direct_ids),
                "bs1": compare_scores(direct, s1, direct_ids, tol),
                "bsN": compare_scores(direct, sn, direct_ids, tol),
            },
        }
        failures = failures_of(rep)
        rep["failures"] = failures
        rep["seconds_total"] = round(time.perf_counter() - t_start, 1)

        rows = summary_rows(rep)
        width = max(len(k) for k, _ in rows)
        print()
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
        for dv in divs:
            print(f"  diverged: {json.dumps(dv)}")
        verdict = "PASS" if not failures else ("FAIL" if strict else "DIFFERENCES (reported)")
        print(f"\nverdict: {verdict} ({dtype}, {'strict' if strict else 'report only'})")
        for f in failures:
            print(f"  - {f}")
        print(f"time: {rep['seconds_total']} s")
        print(f"command: {rep['command']}")
        if args.json:
            args.json.write_text(json.dumps(rep, indent=2) + "\n")
        return 1 if failures and strict else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
