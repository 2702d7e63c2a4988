"""Benchmark: qwenvl_eval's caption_scores against the per-metric pycocoevalcap pattern.

Usage: python bench/bench_caption.py [--items N] [--refs R] [--seed S] [--no-meteor]
                                     [--lmms-eval-idle-meteor]

The peer arm does what lmms-eval's COCO/NoCaps/Flickr aggregation does: one call per
reported metric (Bleu_1, Bleu_2, Bleu_3, Bleu_4, METEOR, ROUGE_L, CIDEr), each with a
fresh PTBTokenizer run on references and predictions (two JVMs) and a fresh scorer.
(lmms-eval additionally constructs an unused METEOR JVM in every call; that waste is
reproduced only with --lmms-eval-idle-meteor, so the default comparison is
conservative.) Our arm is one ``caption_scores`` call. Both arms must give identical
scores.

The data are synthetic but realistic and deterministic: references are real COCO
captions (test fixture); a prediction is the start of one of its references followed by
the end of another image's caption, seeded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qwenvl_eval.metrics import caption_scores  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "metrics" / "coco_captions_val2014_fakecap_1000.json"
KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


def synthesize(n_items: int, n_refs: int, seed: int) -> tuple[dict[int, list[str]], dict[int, str]]:
    """``n_items`` items of ``n_refs`` real COCO captions and one spliced prediction."""
    data = json.loads(FIXTURE.read_text("utf-8"))
    pools = [caps for caps in data["references"] if len(caps) >= n_refs]
    rng = random.Random(seed)
    refs: dict[int, list[str]] = {}
    preds: dict[int, str] = {}
    for item in range(n_items):
        caps = rng.choice(pools)
        refs[item] = rng.sample(caps, n_refs)
        # Like a model caption: starts as one reference would, ends like another
        # image's caption (scores land near real captioning models, CIDEr ~ 1).
        head = rng.choice(caps).split()
        tail = rng.choice(rng.choice(pools)).split()
        cut_head = rng.randint(min(2, len(head)), max(2, len(head) - 2))
        cut_tail = rng.randint(min(2, len(tail)), len(tail))
        text = " ".join(head[:cut_head] + tail[cut_tail:])
        if rng.random() < 0.5:
            text = text.lower().rstrip(".")
        preds[item] = text
    return refs, preds


def peer_arm(
    refs: dict[int, list[str]],
    preds: dict[int, str],
    keys: tuple[str, ...],
    idle_meteor: bool = False,
) -> tuple[dict[str, float], dict[str, float], float]:
    """One pycocoevalcap call per metric key, fresh tokenization each time.

    ``idle_meteor`` also starts the METEOR JVM that lmms-eval constructs (and never
    uses) in every non-METEOR call.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts_in = {k: [{"caption": c} for c in v] for k, v in refs.items()}
    res_in = {k: [{"caption": preds[k]}] for k in refs}
    scores: dict[str, float] = {}
    timing: dict[str, float] = {}
    tokenize_total = 0.0
    for key in keys:
        start = time.perf_counter()
        unused = Meteor() if idle_meteor and key != "METEOR" else None
        with contextlib.redirect_stdout(io.StringIO()):
            tokenizer = PTBTokenizer()
            gts = tokenizer.tokenize(gts_in)
            res = tokenizer.tokenize(res_in)
            tokenized = time.perf_counter()
            if key.startswith("Bleu"):
                score, _ = Bleu(4).compute_score(gts, res)
                scores[key] = float(score[int(key[-1]) - 1])
            elif key == "METEOR":
                scorer = Meteor()
                scores[key] = float(scorer.compute_score(gts, res)[0])
                del scorer  # its __del__ stops the JVM
            elif key == "ROUGE_L":
                scores[key] = float(Rouge().compute_score(gts, res)[0])
            else:
                scores[key] = float(Cider().compute_score(gts, res)[0])
        del unused
        end = time.perf_counter()
        tokenize_total += tokenized - start
        timing[key] = end - start
    return scores, timing, tokenize_total


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the JVMs), less load-sensitive
    than wall time on a shared machine."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--refs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-meteor", action="store_true", help="leave METEOR out of both arms")
    parser.add_argument(
        "--lmms-eval-idle-meteor",
        action="store_true",
        help="peer arm also starts the unused METEOR JVM lmms-eval builds in every call",
    )
    args = parser.parse_args()

    keys = tuple(k for k in KEYS if not (args.no_meteor and k == "METEOR"))
    refs, preds = synthesize(args.items, args.refs, args.seed)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # Java's progress lines on stderr
    print(f"items={args.items} refs/item={args.refs} seed={args.seed} metrics={','.join(keys)}")

    start, cpu = time.perf_counter(), cpu_seconds()
    ours = caption_scores(refs, preds, metrics=keys)
    ours_s, ours_cpu = time.perf_counter() - start, cpu_seconds() - cpu
    print(
        f"ours : {ours_s:7.2f} s wall, {ours_cpu:7.2f} s CPU"
        "  (caption_scores: 1 PTB call, METEOR JVM in parallel)"
    )

    start, cpu = time.perf_counter(), cpu_seconds()
    peer, timing, tokenize_s = peer_arm(refs, preds, keys, args.lmms_eval_idle_meteor)
    peer_s, peer_cpu = time.perf_counter() - start, cpu_seconds() - cpu
    detail = ", ".join(f"{k} {v:.2f}" for k, v in timing.items())
    print(
        f"peer : {peer_s:7.2f} s wall, {peer_cpu:7.2f} s CPU"
        f"  ({len(keys)} calls, {2 * len(keys)} PTB runs)"
    )
    print(f"       per call (s): {detail}; of which PTB tokenization {tokenize_s:.2f} s")
    print(f"ratio: {peer_s / ours_s:.2f}x wall, {peer_cpu / ours_cpu:.2f}x CPU")
    print(f"load average at end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    mismatched = {k: (ours[k], peer[k]) for k in keys if ours[k] != peer[k]}
    for key in keys:
        print(f"  {key:8s} ours {ours[key]!r:24} peer {peer[key]!r}")
    assert not mismatched, f"scores differ: {mismatched}"
    print("scores identical: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
