"""Three engines on one VQAv2-like workload: a per-sample `model.generate` loop, the
transformers backend (batched runner), and the vLLM backend (offline engine, continuous
batching). Not a test: it prints items/s, peak memory and how often the greedy answers agree.

All arms use the SAME weights: the real-size model gets random weights once, which are saved
to a temporary checkpoint that both backends load (vLLM's own dummy weights would differ).

GPU, real-size random-weight Qwen2-VL (nothing downloaded):
    python bench/bench_vllm.py --config qwen2-vl-2b --items 512
    python bench/bench_vllm.py --config qwen2-vl-7b --items 512
CPU smoke run with the CPU build of vLLM (tiny model with head size 32, see README Backends):
    python bench/bench_vllm.py --items 32 --threads 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# The engine in this process: its allocations then count in the peak memory measured here.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from bench_runner import (  # noqa: E402
    COCO_SIZES,
    TINY_SIZES,
    make_images,
    peer_generate,
    real_size_model,
    vqa_requests,
)


def head32_tiny(workdir: Path):
    """tiny-qwen2-vl with 2 query heads / 1 key-value head (head size 32, what vLLM's CPU
    attention accepts); the same weights, split into fewer, larger heads."""
    from qwenvl_eval.model.presets import resolve_model

    src = resolve_model("tiny-qwen2-vl").path
    dest = workdir / "tiny-qwen2-vl-head32"
    shutil.copytree(src, dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg.update(num_attention_heads=2, num_key_value_heads=1)
    cfg["rope_scaling"]["mrope_section"] = [4, 6, 6]
    (dest / "config.json").write_text(json.dumps(cfg))
    return resolve_model(str(dest))


def materialise(model, workdir: Path, device: str):
    """Random weights for the real-size architecture, written as a checkpoint both backends
    read."""
    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.hf import HFRunner
    from qwenvl_eval.model.presets import ResolvedModel

    runner = HFRunner(
        model, RunnerOptions(device=device, dtype="bf16", backend_options={"random_weights": True})
    )
    runner.model.save_pretrained(model.path, safe_serialization=True)
    runner.close()
    del runner
    gc.collect()
    return ResolvedModel(model.spec, model.path, model.family, "random-weights", None)


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def timed(fn, device: str):
    reset_peak(device)
    t0 = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return out, time.perf_counter() - t0, peak_gib(device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=["qwen2-vl-2b", "qwen2-vl-7b"], help="real-size model")
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32, help="transformers backend batch")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    ap.add_argument("--max-model-len", type=int, default=4096)
    ap.add_argument("--peer-items", type=int, default=None, help="items for the slow loop")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    import transformers

    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.hf import HFRunner
    from qwenvl_eval.model.vllm import VLLMRunner

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    work = Path(tempfile.mkdtemp(prefix="qwenvl-bench-vllm-"))
    os.environ.setdefault("QWENVL_EVAL_CACHE", str(work / "cache"))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    try:
        if args.config:
            model = materialise(real_size_model(args.config, work), work, device)
            sizes = COCO_SIZES
        else:
            model = head32_tiny(work)
            sizes = TINY_SIZES
        images = make_images(work, 64, sizes, args.seed)
        reqs = vqa_requests(images, args.items, args.seed)
        peer_reqs = reqs[: args.peer_items or len(reqs)]
        dtype = "bf16" if device == "cuda" else "fp32"
        report: dict = {"model": model.spec, "device": device, "dtype": dtype, "items": len(reqs)}

        # (1) per-sample generate loop and (2) the transformers backend: same loaded model.
        hf = HFRunner(
            model,
            RunnerOptions(device=device, dtype=dtype, batch_size=args.batch_size),
        )
        list(hf.generate(reqs[:4]))  # warm-up
        peer_generate(hf, peer_reqs[:2])
        (peer_tok, _, _), t_peer, m_peer = timed(lambda: peer_generate(hf, peer_reqs), device)
        peer = {
            k: hf.tokenizer.decode(v, skip_special_tokens=True).strip() for k, v in peer_tok.items()
        }
        hf_out, t_hf, m_hf = timed(lambda: {r.id: r.text for r in hf.generate(reqs)}, device)
        hf.close()  # frees the model before vLLM takes its share of the GPU
        gc.collect()

        # (3) the vLLM backend.
        extra = {"max_model_len": args.max_model_len}
        if device == "cuda":
            extra["gpu_memory_utilization"] = args.gpu_memory_utilization
        else:
            extra["enforce_eager"] = True
        vl = VLLMRunner(
            model, RunnerOptions(device=device, dtype=dtype, backend="vllm", backend_options=extra)
        )
        t0 = time.perf_counter()
        list(vl.generate(reqs[:4]))  # engine start-up + warm-up, reported apart
        startup = time.perf_counter() - t0
        vl_out, t_vl, m_vl = timed(lambda: {r.id: r.text for r in vl.generate(reqs)}, device)
        errors = sum(1 for r in vl_out.values() if r is None)
        vl.close()

        agree_hf = sum(vl_out[k] == hf_out[k] for k in hf_out)
        agree_peer = sum(peer[k] == hf_out[k] for k in peer)
        report["arms"] = {
            "peer_loop": {
                "items": len(peer_reqs),
                "items_s": round(len(peer_reqs) / t_peer, 2),
                "peak_gib": m_peer,
            },
            "transformers_backend": {"items_s": round(len(reqs) / t_hf, 2), "peak_gib": m_hf},
            "vllm_backend": {
                "items_s": round(len(reqs) / t_vl, 2),
                "peak_gib": m_vl,
                "engine_startup_s": round(startup, 1),
                "errors": errors,
            },
        }
        report["agreement"] = {
            "vllm_vs_transformers": f"{agree_hf}/{len(reqs)}",
            "peer_vs_transformers": f"{agree_peer}/{len(peer_reqs)}",
        }
        report["speedup_vllm_over_transformers"] = round(t_hf / t_vl, 2)
        report["speedup_transformers_over_peer"] = round(
            (len(reqs) / t_hf) / (len(peer_reqs) / t_peer), 2
        )
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
