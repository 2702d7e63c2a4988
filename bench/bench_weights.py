"""Benchmark: the checkpoint content fingerprint (`model.weights_id`) on a multi-GB
synthetic safetensors checkpoint, first computation against the cached rerun.

Usage: python bench/bench_weights.py [--gb 4] [--shards 2] [--dir DIR] [--keep]

Writes a checkpoint folder of `--shards` safetensors files (one uint8 tensor each, real
safetensors headers) totalling `--gb` GB plus a config.json, evicts it from the page cache
(posix_fadvise DONTNEED, so "first" reads the disk as a fresh checkpoint would be read), then
times, each with a fresh cache file:
  - first:   no cached hash (every byte read and hashed),
  - cached:  the same folder again (one stat per file),
  - rewrite: one shard rewritten in place with the same size (that shard hashed again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qwenvl_eval.model.weights import weights_id  # noqa: E402

_CHUNK = 64 << 20


def write_shard(path: Path, nbytes: int, seed: int) -> None:
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "w": {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    block = (bytes(range(256)) * (_CHUNK // 256))[seed % 256 :] + bytes(seed % 256)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        left = nbytes
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())


def evict(folder: Path) -> None:
    for p in folder.iterdir():
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(folder: Path, cache: Path) -> tuple[float, str]:
    t = time.perf_counter()
    wid = weights_id(folder, cache)
    return time.perf_counter() - t, wid or ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=4.0)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a tmp dir)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-weights-", dir=args.dir))
    folder = base / "checkpoint"
    folder.mkdir()
    try:
        per = int(args.gb * 1e9 / args.shards)
        t = time.perf_counter()
        for k in range(args.shards):
            write_shard(folder / f"model-{k + 1:05d}-of-{args.shards:05d}.safetensors", per, k)
        (folder / "config.json").write_text('{"model_type": "qwen2_vl"}')
        print(f"wrote {args.shards} x {per / 1e9:.2f} GB in {time.perf_counter() - t:.1f} s")
        cache = base / "weights-hashes.json"
        evict(folder)
        first, wid = timed(folder, cache)
        cached, again = timed(folder, cache)
        assert again == wid
        shard = folder / f"model-00001-of-{args.shards:05d}.safetensors"
        with open(shard, "r+b") as f:  # a training job rewriting one shard in place
            f.seek(per // 2)
            f.write(b"\xff")
            f.flush()
            os.fsync(f.fileno())
        evict(folder)
        rewrite, changed = timed(folder, cache)
        assert changed != wid
        total = args.shards * per / 1e9
        print("| checkpoint | first (s) | GB/s | cached rerun | first / cached | rewritten (s) |")
        print("|---|---:|---:|---:|---:|---:|")
        print(
            f"| {args.shards} x {per / 1e9:.2f} GB | {first:.2f} | {total / first:.2f} | "
            f"{cached * 1000:.2f} ms | {first / cached:,.0f}x | {rewrite:.2f} |"
        )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
