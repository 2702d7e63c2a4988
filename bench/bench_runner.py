"""Throughput of the batched runner against the per-sample loop peer harnesses use.

Not a test: it prints numbers. Two arms answer the same requests and must give the same
outputs (asserted):
  (a) peer loop: one item at a time, preprocessing inline, `model.generate` per item; for option
      scoring one full forward (image included) per option, as loglikelihood loops do;
  (b) our runner: overlapped preprocessing, length-sorted batches, prompt encoded once per
      scored item.

Workloads: VQAv2-like (one image of varied size, short question, <= 10 new tokens) and
ScienceQA-like scoring (4 options).

CPU, tiny random-weight models (always runnable):
    python bench/bench_runner.py --family qwen2-vl
Real-size random-weight Qwen2-VL (config values below, nothing downloaded), on a GPU:
    python bench/bench_runner.py --config qwen2-vl-7b --device cuda --dtype bf16
which also reports tokens/s, peak GPU memory and the prefill's fraction of the bf16 matmul
roofline (--peak-tflops, default 989 = H100 SXM dense bf16).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Published config.json values of Qwen2-VL-2B-Instruct / Qwen2-VL-7B-Instruct (architecture
# only; special-token ids are replaced by the tiny tokenizer's, the vocabulary size is kept so
# the embedding and LM head cost what they cost).
REAL_CONFIGS = {
    "qwen2-vl-2b": {
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "vision_hidden_size": 1536,
    },
    "qwen2-vl-7b": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "vision_hidden_size": 3584,
    },
}
COMMON_REAL = {
    "architectures": ["Qwen2VLForConditionalGeneration"],
    "model_type": "qwen2_vl",
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "use_sliding_window": False,
    "use_cache": True,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
}
REAL_VISION = {
    "depth": 32,
    "embed_dim": 1280,
    "mlp_ratio": 4,
    "num_heads": 16,
    "in_chans": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "spatial_patch_size": 14,
    "temporal_patch_size": 2,
}
# Qwen2-VL's shipped pixel limits.
REAL_PIXELS = {"min_pixels": 3136, "max_pixels": 12845056}

QUESTIONS = [
    "What color is the bus?",
    "How many people are in the picture?",
    "Is there a dog in the photo?",
    "What is the man holding?",
    "Where is the cat sitting?",
    "What sport is being played?",
    "Is it raining?",
    "What is on the table?",
]
VQA_SUFFIX = "\nAnswer the question using a single word or phrase."
COCO_SIZES = [(640, 480), (500, 375), (427, 640), (640, 427), (480, 640), (612, 612), (333, 500)]
TINY_SIZES = [(64, 48), (200, 120), (90, 300), (320, 240), (40, 40), (150, 150), (256, 64)]


# ---- setup -------------------------------------------------------------------------------
def make_images(d: Path, n: int, sizes: list[tuple[int, int]], seed: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        # Smooth noise compresses like a photo and still differs per image.
        small = rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
        p = d / f"im{i}.jpg"
        img.save(p, quality=90)
        paths.append(p)
    return paths


def vqa_requests(images: list[Path], n: int, seed: int):
    from qwenvl_eval.types import GenerateRequest, Generation, Image, ImageRef, Text

    rnd = random.Random(seed)
    gen = Generation(max_new_tokens=10, min_new_tokens=1)
    return [
        GenerateRequest(
            f"vqa{i}",
            (
                Image(ImageRef(f"im{i}", images[i % len(images)])),
                Text(rnd.choice(QUESTIONS) + VQA_SUFFIX),
            ),
            gen,
        )
        for i in range(n)
    ]


def sqa_requests(images: list[Path], n: int, seed: int):
    from qwenvl_eval.types import Image, ImageRef, ScoreRequest, Text

    rnd = random.Random(seed + 1)
    out = []
    for i in range(n):
        opts = rnd.sample(["Ohio", "Maine", "Texas", "Utah", "Iowa", "Idaho", "Nevada"], 4)
        listed = "\n".join(f"{'ABCD'[k]}. {o}" for k, o in enumerate(opts))
        ctx = rnd.choice(["N/A", "The map shows the United States. " * rnd.randint(1, 4)])
        prompt = (
            f"Context: {ctx}\nQuestion: Which of these states is farthest north?\n"
            f"Options: {listed}\nAnswer:"
        )
        img = Image(ImageRef(f"sq{i}", images[i % len(images)]))
        out.append(ScoreRequest(f"sqa{i}", (img, Text(prompt)), (" A", " B", " C", " D")))
    return out


def tiny_model(family: str):
    from qwenvl_eval.model.presets import resolve_model

    return resolve_model(
        {"qwen2-vl": "tiny-qwen2-vl", "qwen2.5-vl": "tiny-qwen2.5-vl", "qwen3-vl": "tiny-qwen3-vl"}[
            family
        ]
    )


def real_size_model(name: str, workdir: Path):
    """A checkpoint folder with the real architecture's config.json and the tiny tokenizer; the
    runner builds random weights on the device (the hf backend option random_weights)."""
    from qwenvl_eval.model.families import QWEN2_VL
    from qwenvl_eval.model.presets import ResolvedModel
    from qwenvl_eval.model.tiny import build_qwen2_vl

    tiny_dir = workdir / "tiny"
    build_qwen2_vl(tiny_dir)
    dest = workdir / name
    dest.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.json"):
        shutil.copy(tiny_dir / f, dest / f)
    tiny_cfg = json.loads((tiny_dir / "config.json").read_text())
    ids = {k: v for k, v in tiny_cfg.items() if k.endswith("token_id")}
    spec = dict(REAL_CONFIGS[name])
    vision = {**REAL_VISION, "hidden_size": spec.pop("vision_hidden_size")}
    cfg = {**COMMON_REAL, **spec, **ids, "vision_config": vision, "torch_dtype": "bfloat16"}
    (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    pre = json.loads((tiny_dir / "preprocessor_config.json").read_text()) | REAL_PIXELS
    (dest / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    shutil.copy(tiny_dir / "generation_config.json", dest / "generation_config.json")
    return ResolvedModel(name, dest, QWEN2_VL, "random-weights", None)


# ---- arms --------------------------------------------------------------------------------
def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peer_generate(runner, requests) -> tuple[dict, int, int]:
    """(a) one item at a time: preprocess inline, model.generate, decode."""
    import torch

    out, prompt_tokens, new_tokens = {}, 0, 0
    stops = set(runner.stop_ids)
    for i, req in enumerate(requests):
        p = runner.prepare(req, i)
        enc = runner._collate([p])
        with torch.inference_mode():
            ids = runner.model.generate(
                **enc,
                max_new_tokens=req.generation.max_new_tokens,
                min_new_tokens=req.generation.min_new_tokens or None,
                do_sample=False,
                num_beams=1,
                eos_token_id=runner.stop_ids,
                pad_token_id=runner.pad_id,
            )
        row = ids[0, enc["input_ids"].shape[1] :].tolist()
        n = next((k for k, t in enumerate(row) if t in stops), len(row))
        out[req.id] = row[: n + 1]
        prompt_tokens += p.num_tokens
        new_tokens += min(n + 1, len(row))
    return out, prompt_tokens, new_tokens


def peer_score(runner, requests) -> tuple[dict, int]:
    """(a) one full forward (image encoded again) per option."""
    import torch

    out, tokens = {}, 0
    for i, req in enumerate(requests):
        p = runner.prepare(req, i)
        x = p.inputs
        sums = []
        for opt in x.options:
            ids = torch.tensor([x.ids + opt], device=runner.device)
            kw = {
                "mm_token_type_ids": torch.tensor([x.types + [0] * len(opt)], device=runner.device)
            }
            if x.pixel_values is not None:
                kw["pixel_values"] = x.pixel_values.to(runner.device, runner.dtype)
                kw["image_grid_thw"] = x.grid.to(runner.device)
            with torch.inference_mode():
                logits = runner.model(
                    input_ids=ids, attention_mask=torch.ones_like(ids), **kw
                ).logits
            lp = torch.log_softmax(logits[0, len(x.ids) - 1 : -1].float(), dim=-1)
            sums.append(lp.gather(1, torch.tensor(opt, device=runner.device)[:, None]).sum().item())
            tokens += len(x.ids) + len(opt)
        out[req.id] = sums
    return out, tokens


def ours_generate(runner, requests) -> dict:
    return {r.id: r.meta["output_token_ids"] for r in runner.generate(requests) if not r.error}


def ours_score(runner, requests) -> dict:
    return {r.id: [o.sum_logprob for o in r.options] for r in runner.score_options(requests)}


def timed(fn, device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    t0 = time.perf_counter()
    result = fn()
    sync(device)
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return result, dt, peak


def best_of(fn_a, fn_b, device: str, repeats: int):
    """Run the arms alternately `repeats` times; keep each arm's fastest run (a shared machine
    only ever adds time) and its peak memory."""
    best_a = best_b = None
    for _ in range(repeats):
        ra = timed(fn_a, device)
        rb = timed(fn_b, device)
        best_a = ra if best_a is None or ra[1] < best_a[1] else best_a
        best_b = rb if best_b is None or rb[1] < best_b[1] else best_b
    return best_a, best_b


# ---- prefill roofline --------------------------------------------------------------------
def prefill_flops(model, batch) -> float:
    """Matmul FLOPs of one prefill forward over `batch` (useful tokens only, no padding):
    2 x params x tokens for every linear layer, plus causal attention 2 T^2 d per LM layer and
    full per-image attention 4 P^2 d per vision block; LM head on the last token only."""
    tc = model.config.get_text_config()
    vc = model.config.vision_config
    lm_layers = model.model.language_model.layers
    lm_params = sum(p.numel() for p in lm_layers.parameters() if p.ndim == 2)
    q_dim = tc.num_attention_heads * (tc.hidden_size // tc.num_attention_heads)
    visual = model.model.visual
    vis_params = sum(
        p.numel() for n, p in visual.named_parameters() if p.ndim >= 2 and "merger" not in n
    )
    merger_params = sum(
        p.numel() for n, p in visual.named_parameters() if p.ndim >= 2 and "merger" in n
    )
    vis_dim = getattr(vc, "embed_dim", None) or vc.hidden_size
    flops = 0.0
    for p in batch:
        t = len(p.inputs.ids)
        flops += 2 * lm_params * t + 2 * tc.num_hidden_layers * t * t * q_dim
        flops += 2 * tc.hidden_size * tc.vocab_size
        if p.inputs.grid is not None:
            for g in p.inputs.grid.tolist():
                n_patch = g[0] * g[1] * g[2]
                flops += 2 * vis_params * n_patch + 2 * merger_params * n_patch / 4
                flops += vc.depth * 4 * n_patch * n_patch * vis_dim
    return flops


def prefill_fraction(runner, requests, batch_size: int, peak_tflops: float) -> dict:
    import torch

    batch = [runner.prepare(r, i) for i, r in enumerate(requests[:batch_size])]
    enc = runner._collate(batch)
    times = []
    with torch.inference_mode():
        for k in range(4):
            sync(runner.device)
            t0 = time.perf_counter()
            runner.model(**enc, logits_to_keep=1)
            sync(runner.device)
            if k:  # first one is warm-up
                times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    flops = prefill_flops(runner.model, batch)
    return {
        "batch": len(batch),
        "tokens": sum(p.num_tokens for p in batch),
        "seconds": round(dt, 4),
        "tflops": round(flops / 1e12, 2),
        "achieved_tflop_s": round(flops / dt / 1e12, 1),
        "fraction_of_peak": round(flops / dt / 1e12 / peak_tflops, 3),
    }


# ---- main --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="qwen2-vl", choices=["qwen2-vl", "qwen2.5-vl", "qwen3-vl"])
    ap.add_argument("--config", choices=sorted(REAL_CONFIGS), help="real-size random-weight model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-batch-tokens", type=int, default=None)
    ap.add_argument("--vqa-items", type=int, default=64)
    ap.add_argument("--sqa-items", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument(
        "--max-mismatch",
        type=float,
        default=None,
        help="allowed fraction of items whose arms disagree (default 0 in fp32; bf16 batching "
        "can flip near-tied argmaxes of a random model, default 0.1 there)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per arm; best is kept")
    args = ap.parse_args(argv)

    import torch
    import transformers

    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.hf import HFRunner

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="qwenvl-bench-"))
    # Tiny checkpoints are built into the bench's own folder unless a cache is configured.
    os.environ.setdefault("QWENVL_EVAL_CACHE", str(work / "cache"))
    try:
        real = args.config is not None
        if real:
            model = real_size_model(args.config, work)
            sizes = COCO_SIZES
        else:
            model = tiny_model(args.family)
            sizes = TINY_SIZES
        images = make_images(work, 16, sizes, args.seed)
        opts = RunnerOptions(
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            max_batch_tokens=args.max_batch_tokens,
            preprocess_workers=args.workers,
            backend_options={"output_token_ids": True, "random_weights": real},
        )
        runner = HFRunner(model, opts)
        fp32 = runner.dtype == torch.float32
        max_mismatch = (
            args.max_mismatch if args.max_mismatch is not None else (0.0 if fp32 else 0.1)
        )
        vqa = vqa_requests(images, args.vqa_items, args.seed)
        sqa = sqa_requests(images, args.sqa_items, args.seed)
        print(
            f"model {model.spec} ({runner.family.name}) on {runner.device}, "
            f"{str(runner.dtype).replace('torch.', '')}, attention {runner.attn_implementation}, "
            f"batch size {args.batch_size}, torch threads {torch.get_num_threads()}"
        )

        # Warm-up both code paths (allocator, kernels, lazy imports) before timing.
        peer_generate(runner, vqa[:2])
        ours_generate(runner, vqa[:4])
        peer_score(runner, sqa[:1])
        ours_score(runner, sqa[:2])

        report: dict = {
            "model": model.spec,
            "device": runner.device,
            "dtype": str(runner.dtype),
            "batch_size": args.batch_size,
            "repeats": args.repeats,
        }

        # VQAv2-like generation
        def ours_vqa():
            runner.stats = type(runner.stats)()
            return ours_generate(runner, vqa)

        ((a_out, a_prompt, a_new), ta, pa), (b_out, tb, pb) = best_of(
            lambda: peer_generate(runner, vqa), ours_vqa, runner.device, args.repeats
        )
        diff = [k for k in a_out if a_out[k] != b_out.get(k)]
        frac = len(diff) / len(vqa)
        failures = []
        if frac > max_mismatch:
            failures.append(f"generation outputs differ for {len(diff)} items: {diff[:5]}")
        st = runner.stats
        report["vqa"] = {
            "items": len(vqa),
            "peer_items_s": round(len(vqa) / ta, 2),
            "ours_items_s": round(len(vqa) / tb, 2),
            "speedup": round(ta / tb, 2),
            "peer_tokens_s": round((a_prompt + a_new) / ta, 1),
            "ours_tokens_s": round((st.prompt_tokens + st.new_tokens) / tb, 1),
            "mismatched_items": len(diff),
            "peak_gib": [pa and round(pa, 2), pb and round(pb, 2)],
        }
        # ScienceQA-like option scoring
        ((a_sc, a_tok), ta, pa), (b_sc, tb, pb) = best_of(
            lambda: peer_score(runner, sqa),
            lambda: ours_score(runner, sqa),
            runner.device,
            args.repeats,
        )
        tol = 1e-4 if fp32 else 5e-2
        bad = [
            k
            for k in a_sc
            if not all(
                math.isclose(x, y, rel_tol=tol, abs_tol=tol)
                for x, y in zip(a_sc[k], b_sc[k], strict=True)
            )
        ]
        same_choice = sum(
            max(range(4), key=lambda j: a_sc[k][j]) == max(range(4), key=lambda j: b_sc[k][j])
            for k in a_sc
        )
        if len(bad) / len(sqa) > max_mismatch:
            failures.append(f"option scores differ for {len(bad)} items: {bad[:5]}")
        report["sqa"] = {
            "items": len(sqa),
            "peer_items_s": round(len(sqa) / ta, 2),
            "ours_items_s": round(len(sqa) / tb, 2),
            "speedup": round(ta / tb, 2),
            "peer_tokens_s": round(a_tok / ta, 1),
            "same_argmax": f"{same_choice}/{len(sqa)}",
            "score_mismatches": len(bad),
            "peak_gib": [pa and round(pa, 2), pb and round(pb, 2)],
        }
        if runner.device.startswith("cuda"):
            report["prefill"] = prefill_fraction(runner, vqa, args.batch_size, args.peak_tflops)
            report["prefill"]["peak_tflops_assumed"] = args.peak_tflops

        for name in ("vqa", "sqa"):
            r = report[name]
            print(
                f"{name}: peer {r['peer_items_s']} items/s, ours {r['ours_items_s']} items/s, "
                f"ours/peer = {r['speedup']}x"
            )
        print(json.dumps(report, indent=2))
        # Numbers are printed first so a mismatch never hides them; then the check fails loudly.
        if failures:
            print("FAILED: the arms disagree: " + "; ".join(failures), file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
