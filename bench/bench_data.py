"""Benchmark: data check, task preparation and scoring on a full-size VQAv2 val split.

Usage: python bench/bench_data.py [--questions 214354] [--images 40504] [--dir DIR]
                                  [--layout official|eval_mm] [--keep]

Builds the official VQAv2 val files at their real sizes (214,354 questions over 40,504
images, 10 answers each; synthetic text, one tiny JPEG written per image) under a data root
with the images in a shared `coco/val2014/` folder linked from `vqav2/val2014` (the InternVL
layout), plus the Qwen-VL eval_mm `vqav2/vqav2_val.jsonl`. Then it times, in this process:

- `data check` (format detection, sha256 of the files read, full load),
- task preparation (`prepare_task`: load, one request per question, the prompt hash),
- the request fingerprints the store keys answers by (once per request, as a run does),
- scoring (one `score_item` per question, then the task's aggregate),

and prints seconds and peak RSS. No model: the answer of each question is a fixed string.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qwenvl_eval.evaluator import prepare_task, score_item  # noqa: E402
from qwenvl_eval.model.families import QWEN_VL  # noqa: E402
from qwenvl_eval.tasks.data.check import check_tasks  # noqa: E402
from qwenvl_eval.types import Response  # noqa: E402

WORDS = ["red", "blue", "two", "yes", "no", "dog", "cat", "table", "man", "woman", "tree", "sky"]


def tiny_jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def build(root: Path, n_questions: int, n_images: int, link: bool = True, seed: int = 0) -> None:
    rng = random.Random(seed)
    vqa = root / "vqav2"
    vqa.mkdir()
    if link:
        coco = root / "coco" / "val2014"
        coco.mkdir(parents=True)
        os.symlink("../coco/val2014", vqa / "val2014")
    else:
        coco = vqa / "val2014"
        coco.mkdir()
    jpeg = tiny_jpeg()
    image_ids = [9 + 7 * k for k in range(n_images)]
    for image_id in image_ids:
        (coco / f"COCO_val2014_{image_id:012d}.jpg").write_bytes(jpeg)
    questions, annotations, lines = [], [], []
    for k in range(n_questions):
        image_id = image_ids[k % n_images]
        qid = image_id * 1000 + k // n_images
        words = rng.choices(WORDS, k=rng.randint(4, 9))
        question = " ".join(words).capitalize() + "?"
        answers = [rng.choice(WORDS[:6]) for _ in range(10)]
        questions.append({"image_id": image_id, "question": question, "question_id": qid})
        annotations.append(
            {
                "question_id": qid,
                "image_id": image_id,
                "question_type": "what",
                "answer_type": "other",
                "multiple_choice_answer": answers[0],
                "answers": [
                    {"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                    for i, a in enumerate(answers)
                ],
            }
        )
        lines.append(
            json.dumps(
                {
                    "image": f"data/coco/val2014/COCO_val2014_{image_id:012d}.jpg",
                    "question": question,
                    "question_id": qid,
                    "answer": answers[0],
                }
            )
        )
    meta = {"info": {}, "license": {}, "data_subtype": "val2014"}
    (vqa / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(
        json.dumps({**meta, "task_type": "Open-Ended", "questions": questions})
    )
    (vqa / "v2_mscoco_val2014_annotations.json").write_text(
        json.dumps({**meta, "annotations": annotations})
    )
    (vqa / "vqav2_val.jsonl").write_text("\n".join(lines) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn):
    # CPU seconds beside wall seconds: on a shared machine the wall clock includes waiting.
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"{label:<30} {wall:7.2f} s wall {cpu:7.2f} s CPU   peak RSS {peak_rss_mb():6.0f} MB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=214354)
    ap.add_argument("--images", type=int, default=40504)
    ap.add_argument("--dir", type=Path, default=None, help="build here (default: a temp dir)")
    ap.add_argument("--layout", default="official", choices=("official", "eval_mm"))
    ap.add_argument("--keep", action="store_true", help="keep the built data")
    ap.add_argument(
        "--no-link",
        action="store_true",
        help="images in vqav2/val2014 itself, not linked to coco/ (older harness versions "
        "refuse the link)",
    )
    args = ap.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        if not (root / "vqav2").is_dir():
            root.mkdir(parents=True, exist_ok=True)
            timed(
                f"build {args.questions} questions",
                lambda: build(root, args.questions, args.images, link=not args.no_link),
            )
        sizes = {p.name: p.stat().st_size for p in (root / "vqav2").iterdir() if p.is_file()}
        print("files:", ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))

        # Older harness versions (for a side-by-side baseline) take no layout argument.
        kw = {} if args.layout == "official" else {"layout": args.layout}
        (row,) = timed("data check", lambda: check_tasks(["vqav2"], str(root), **kw))
        print(f"  -> {row.status}, {row.items} items, format {getattr(row, 'format', '?')}")
        run = timed(
            "prepare (load + requests)",
            lambda: prepare_task(
                "vqav2", root, QWEN_VL.info, **({"data_layout": args.layout} if kw else {})
            ),
        )
        fingerprints = timed(
            "request fingerprints", lambda: [r.fingerprint() for r in run.requests]
        )
        assert len(set(fingerprints)) == len(run.requests)

        def score_all():
            items = [
                score_item(run, r, Response(id=r.id, text="yes"), QWEN_VL.info)
                for r in run.requests
            ]
            out = run.task.aggregate(items, run.by_id)
            return getattr(out, "metrics", out)  # older versions return the metrics dict

        metrics = timed("score every item + aggregate", score_all)
        print(f"  -> {len(run.requests)} items, vqa_acc {metrics['vqa_acc']:.2f}")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
