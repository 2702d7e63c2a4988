"""Train the demo checkpoints shipped in qwenvl_eval/model/demo_weights/ (the `demo-*` presets).

The tiny random-weight Qwen2-VL of `tiny-qwen2-vl` (the real architecture, 2 layers, hidden
size 64) is trained on synthetic items made by the same generators as the bundled mini data
(scripts/builtin/vqa_grounding.py) with other seeds and ids: VQA questions (VQAv2 layout) and
referring expressions (RefCOCO layout). Training reads them through the harness's own task
loaders, prompts and image preprocessing (HFRunner.prepare), so it sees exactly the inputs an
evaluation sees. No item of the bundled evaluation sets is used: the script asserts that no
image (by content), question id, image id or annotation id is shared.

The bundled labels are drawn independently of the images (the pictures are random shapes),
so what a model can learn is the answer format and the answer prior per question: that is what
this demo shows, not visual understanding.

Seeded and CPU-only, one thread: about a quarter of an hour for the 1200-step checkpoint,
under a minute for the 40-step one:

    python scripts/train_demo_model.py                      # both checkpoints, shipped folder
    python scripts/train_demo_model.py --steps 40 --out DIR  # one checkpoint
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file: make `scripts` and the package importable
    sys.path.insert(0, str(ROOT))

from scripts.builtin import vqa_grounding as gen  # noqa: E402

DEMO_DIR = ROOT / "qwenvl_eval" / "model" / "demo_weights"
SEED = 20260
# (name, optimisation steps): the shipped strong checkpoint and a deliberately weaker one
# (the same recipe stopped early), for showing the regression gate on a real drop.
CHECKPOINTS = (("qwen2-vl", 1200), ("qwen2-vl-weak", 40))
TRAIN_TASKS = ("vqav2_val", "refcoco_val")


def make_training_data(root: Path) -> None:
    """Training sets in the official layouts the tasks read, from other seeds and id ranges
    than scripts/builtin/ (VQAv2 val images there start at 42, RefCOCO ids below 1100)."""
    gen._vqa_pair(
        root / "vqav2",
        subtype="val2014",
        folder="val2014",
        questions_name="v2_OpenEnded_mscoco_val2014_questions.json",
        annotations_name="v2_mscoco_val2014_annotations.json",
        n_images=160,
        per_image=3,
        seed=9011,
        first_image=500_000,
    )
    gen._refer(
        root / "refcoco",
        refs_name="refs(unc).p",
        splits={"val": 120},
        seed=9061,
        first_image=700_000,
        first_ann=800_000,
        ref_id_base=900_000,
    )


def _digests(folder: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.png")}


def _ids(root: Path) -> set[tuple[str, int]]:
    """Question, image, annotation and ref ids of the VQAv2 and RefCOCO sets under root."""
    from qwenvl_eval.tasks.data.safe_pickle import load_plain

    out: set[tuple[str, int]] = set()
    vqa = root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"
    for q in json.loads(vqa.read_text())["questions"]:
        out |= {("question", q["question_id"]), ("image", q["image_id"])}
    inst = json.loads((root / "refcoco" / "instances.json").read_text())
    out |= {("coco_image", i["id"]) for i in inst["images"]}
    out |= {("ann", a["id"]) for a in inst["annotations"]}
    refs = load_plain(root / "refcoco" / "refs(unc).p")
    out |= {("ref", r["ref_id"]) for r in refs}
    return out


def assert_apart(train_root: Path, builtin_root: Path) -> None:
    """No evaluation item in training: no shared image (by bytes) or id."""
    shared_images = _digests(train_root) & _digests(builtin_root)
    assert not shared_images, f"{len(shared_images)} training images are evaluation images"
    shared_ids = _ids(train_root) & _ids(builtin_root)
    assert not shared_ids, f"ids shared with the evaluation sets: {sorted(shared_ids)[:5]}"


def _target(doc, task: str) -> str:
    """The answer taught for an item: the majority human answer, or the box in the
    Qwen2-VL format (integer coordinates in [0, 1000))."""
    if task.startswith("refcoco"):
        (x1, y1, x2, y2), (w, h) = doc.fields["bbox"], doc.fields["image_size"]
        return "({},{}),({},{})".format(
            *(min(999, round(v * 1000 / s)) for v, s in ((x1, w), (y1, h), (x2, w), (y2, h)))
        )
    answers = doc.fields["answers"]
    texts = [a["answer"] if isinstance(a, dict) else a for a in answers]
    return max(sorted(set(texts)), key=texts.count)


def _examples(runner, data_root: Path) -> list[dict]:
    from qwenvl_eval.evaluator import prepare_task

    eos = runner.tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = []
    for task in TRAIN_TASKS:
        prepared = prepare_task(task, data_root, runner.family.info)
        for doc, request in zip(prepared.docs, prepared.requests, strict=True):
            inputs = runner.prepare(request, 0).inputs
            answer = runner.tokenizer(_target(doc, task), add_special_tokens=False)["input_ids"]
            out.append(
                {
                    "ids": list(inputs.ids) + answer + [eos],
                    "types": list(inputs.types) + [0] * (len(answer) + 1),
                    "n_prompt": len(inputs.ids),
                    "pixel_values": inputs.pixel_values,
                    "grid": inputs.grid,
                }
            )
    return out


def _batch(examples: list[dict], pad_id: int) -> dict:
    import torch

    width = max(len(e["ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, e in enumerate(examples):
        n = len(e["ids"])
        ids[row, :n] = torch.tensor(e["ids"])
        mask[row, :n] = 1
        types[row, :n] = torch.tensor(e["types"])
        labels[row, e["n_prompt"] : n] = ids[row, e["n_prompt"] : n]
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "mm_token_type_ids": types,
        "pixel_values": torch.cat([e["pixel_values"] for e in examples]),
        "image_grid_thw": torch.cat([e["grid"] for e in examples]),
    }


def readme(steps: int, seed: int) -> str:
    return (
        "Tiny Qwen2-VL (the architecture of qwenvl_eval.model.tiny) trained by "
        f"scripts/train_demo_model.py for {steps} steps from seed {seed} on synthetic VQA and "
        "referring items generated apart from the bundled evaluation sets. A demo: it has "
        "learnt the answer formats and answer priors, not to see.\n"
    )


def train(out: Path, steps: int, *, seed: int = SEED, batch_size: int = 16) -> None:
    import torch

    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.families import get_family
    from qwenvl_eval.model.hf import HFRunner
    from qwenvl_eval.model.presets import PRESETS, ResolvedModel, build_tiny

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    rng = random.Random(seed)
    base, _ = build_tiny(PRESETS["tiny-qwen2-vl"])
    model = ResolvedModel("tiny-qwen2-vl", base, get_family("qwen2-vl"), None, None)
    runner = HFRunner(model, RunnerOptions(device="cpu", dtype="float32", preprocess_workers=1))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_training_data(data)
        assert_apart(data, ROOT / "qwenvl_eval" / "tasks" / "builtin")
        examples = _examples(runner, data)
    net = runner.model
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.0)
    # Warm-up, then cosine decay: the late small steps settle the box digits into one
    # coherent box instead of per-digit modes.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    for step in range(steps):
        batch = _batch(rng.sample(examples, batch_size), runner.pad_id)
        loss = net(**batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 20 == 0 or step == steps - 1:
            print(f"{out.name}: step {step + 1}/{steps} loss {loss.item():.3f}", flush=True)
    net.eval()
    tmp_out = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp_out, ignore_errors=True)
    shutil.copytree(base, tmp_out)
    net.save_pretrained(tmp_out, safe_serialization=True)
    # save_pretrained rewrites config.json and generation_config.json in its own format:
    # keep the tiny checkpoint's (the shipped format) so only the weights differ.
    for name in ("config.json", "generation_config.json"):
        shutil.copy2(base / name, tmp_out / name)
    (tmp_out / "README.md").write_text(readme(steps, seed))
    (tmp_out / "TRAINING.json").write_text(
        json.dumps(
            {
                "script": "scripts/train_demo_model.py",
                "seed": seed,
                "steps": steps,
                "batch_size": batch_size,
                "tasks": list(TRAIN_TASKS),
                "train_items": len(examples),
            },
            indent=1,
        )
        + "\n"
    )
    shutil.rmtree(out, ignore_errors=True)
    tmp_out.rename(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, help="train one checkpoint with this many steps")
    ap.add_argument("--out", type=Path, help="folder for --steps (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    if args.steps is not None:
        train(args.out or DEMO_DIR / f"qwen2-vl-{args.steps}", args.steps, seed=args.seed)
        return
    for name, steps in CHECKPOINTS:
        train(DEMO_DIR / name, steps, seed=args.seed)


if __name__ == "__main__":
    main()
