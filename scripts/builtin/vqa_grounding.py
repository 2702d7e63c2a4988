"""Bundled mini sets for the VQA family, GQA and the RefCOCO family, in their official formats.

Writes under `out_root`: vqav2/, okvqa/, vizwiz/, textvqa/, gqa/ (questions, annotations,
images) and refcoco/, refcoco+/, refcocog/ (`refs(unc).p` / `refs(umd).p` pickled at
protocol 2 the way Python 2's cPickle wrote the real ones, `instances.json`, `train2014/`).
Images are tiny deterministic PNGs stored under the official file names' stems (`.png`).
Deterministic: the same run writes the same bytes.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.builtin._images import make_png

SUBDIRS = ("vqav2", "okvqa", "vizwiz", "textvqa", "gqa", "refcoco", "refcoco+", "refcocog")

COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]
SHAPES = ["circle", "square", "rectangle", "ellipse", "triangle"]
QUESTIONS = [
    ("What color is the background?", "other", "what color is the", COLOURS),
    ("How many shapes are there?", "number", "how many", ["2", "3", "4", "5"]),
    ("Is there a circle in the picture?", "yes/no", "is there a", ["yes", "no"]),
    ("What shape is the largest object?", "other", "what", SHAPES),
    ("What color is the biggest shape?", "other", "what color is the", COLOURS),
]


# -- helpers ---------------------------------------------------------------------------------
def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _ten_answers(rng: random.Random, choices: list[str]) -> list[str]:
    """Ten human answers: mostly one answer, with some disagreement, as in the real sets."""
    main = rng.choice(choices)
    out = [main] * rng.randint(6, 10)
    while len(out) < 10:
        out.append(rng.choice(choices))
    rng.shuffle(out)
    return out


def _question(rng: random.Random) -> tuple[str, str, str, list[str]]:
    text, atype, qtype, choices = rng.choice(QUESTIONS)
    return text, atype, qtype, _ten_answers(rng, choices)


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol 2 the way Python 2's cPickle wrote it: ASCII text as byte strings
    (SHORT_BINSTRING / BINSTRING), other text as BINUNICODE."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_str(self, obj: str) -> None:
        if not obj.isascii():
            pickle._Pickler.save_str(self, obj)  # type: ignore[attr-defined]
            return
        data = obj.encode("ascii")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_str


def py2_pickle_dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


# -- VQAv2 and OK-VQA -------------------------------------------------------------------------
def _vqa_pair(
    task_dir: Path,
    *,
    subtype: str,
    folder: str,
    questions_name: str,
    annotations_name: str | None,
    n_images: int,
    per_image: int,
    seed: int,
    first_image: int,
    okvqa: bool = False,
) -> None:
    rng = random.Random(seed)
    questions, annotations = [], []
    for k in range(n_images):
        image_id = first_image + 7 * k
        make_png(task_dir / folder / f"COCO_{folder}_{image_id:012d}.png", seed * 1000 + k)
        for j in range(per_image):
            qid = image_id * 10 + j
            text, atype, qtype, answers = _question(rng)
            questions.append({"image_id": image_id, "question": text, "question_id": qid})
            entries = []
            for n, a in enumerate(answers, 1):
                entry = {
                    "answer": a,
                    "answer_confidence": rng.choice(["yes", "yes", "maybe"]),
                    "answer_id": n,
                }
                if okvqa:
                    entry["raw_answer"] = a
                entries.append(entry)
            ann = {
                "question_type": "other" if okvqa else qtype,
                "multiple_choice_answer": max(set(answers), key=answers.count),
                "answers": entries,
                "image_id": image_id,
                "answer_type": "other" if okvqa else atype,
                "question_id": qid,
            }
            if okvqa:
                ann["confidence"] = 3
            annotations.append(ann)
    info = {"description": "qwenvl-eval builtin mini set (synthetic)", "version": "2.0"}
    _write_json(
        task_dir / questions_name,
        {
            "info": info,
            "task_type": "Open-Ended",
            "data_type": "mscoco",
            "license": {"name": "CC BY 4.0"},
            "data_subtype": subtype,
            "questions": questions,
        },
    )
    if annotations_name:
        _write_json(
            task_dir / annotations_name,
            {
                "info": info,
                "license": {"name": "CC BY 4.0"},
                "data_subtype": subtype,
                "annotations": annotations,
            },
        )


def make_vqav2(root: Path) -> None:
    d = root / "vqav2"
    _vqa_pair(
        d,
        subtype="val2014",
        folder="val2014",
        questions_name="v2_OpenEnded_mscoco_val2014_questions.json",
        annotations_name="v2_mscoco_val2014_annotations.json",
        n_images=12,
        per_image=3,
        seed=11,
        first_image=42,
    )
    _vqa_pair(
        d,
        subtype="test-dev2015",
        folder="test2015",
        questions_name="v2_OpenEnded_mscoco_test-dev2015_questions.json",
        annotations_name=None,
        n_images=11,
        per_image=3,
        seed=12,
        first_image=1001,
    )


def make_okvqa(root: Path) -> None:
    d = root / "okvqa"
    _vqa_pair(
        d,
        subtype="val2014",
        folder="val2014",
        questions_name="OpenEnded_mscoco_val2014_questions.json",
        annotations_name="mscoco_val2014_annotations.json",
        n_images=32,
        per_image=1,
        seed=21,
        first_image=133,
        okvqa=True,
    )
    _vqa_pair(
        d,
        subtype="train2014",
        folder="train2014",
        questions_name="OpenEnded_mscoco_train2014_questions.json",
        annotations_name="mscoco_train2014_annotations.json",
        n_images=32,
        per_image=1,
        seed=22,
        first_image=9,
        okvqa=True,
    )


# -- VizWiz, TextVQA, GQA ---------------------------------------------------------------------
def make_vizwiz(root: Path) -> None:
    d = root / "vizwiz"
    for split, seed, n in (("val", 31, 32), ("train", 32, 32), ("test", 33, 32)):
        rng = random.Random(seed)
        rows = []
        for k in range(n):
            name = f"VizWiz_{split}_{k:08d}.png"
            make_png(d / split / name, seed * 1000 + k)
            text, atype, _, answers = _question(rng)
            row: dict[str, Any] = {"image": name, "question": text}
            if split != "test":
                unanswerable = k % 9 == 4
                if unanswerable:
                    answers = ["unanswerable"] * 8 + answers[:2]
                row["answers"] = [
                    {"answer": a, "answer_confidence": rng.choice(["yes", "maybe"])}
                    for a in answers
                ]
                row["answer_type"] = "unanswerable" if unanswerable else atype
                row["answerable"] = 0 if unanswerable else 1
            rows.append(row)
        _write_json(d / "Annotations" / f"{split}.json", rows)


def make_textvqa(root: Path) -> None:
    d = root / "textvqa"
    words = ["stop", "exit", "coca cola", "nike", "open", "sale", "2015", "york", "taxi"]
    qid = 34602
    for split, seed in (("train", 41), ("val", 42)):
        rng = random.Random(seed)
        data = []
        for k in range(32):
            image_id = f"{rng.getrandbits(64):016x}"
            w, h = make_png(d / "train_images" / f"{image_id}.png", seed * 1000 + k)
            text = rng.choice(
                [
                    "What does the sign say?",
                    "What brand is this?",
                    "What word is written on the wall?",
                    "What year is shown?",
                ]
            )
            data.append(
                {
                    "question": text,
                    "image_id": image_id,
                    "image_classes": ["Sign"],
                    "flickr_original_url": "",
                    "flickr_300k_url": "",
                    "image_width": w,
                    "image_height": h,
                    "answers": _ten_answers(rng, words),
                    "question_tokens": text.lower().rstrip("?").split(),
                    "question_id": qid,
                    "set_name": split,
                }
            )
            qid += 1
        _write_json(
            d / f"TextVQA_0.5.1_{split}.json",
            {
                "dataset_type": split,
                "dataset_name": "textvqa",
                "dataset_version": "0.5.1",
                "data": data,
            },
        )


def make_gqa(root: Path) -> None:
    d = root / "gqa"
    rng = random.Random(51)
    out: dict[str, Any] = {}
    for k in range(34):
        image_id = f"n{rng.randrange(10**5, 10**6)}"
        make_png(d / "images" / f"{image_id}.png", 51000 + k)
        colour, shape = rng.choice(COLOURS), rng.choice(SHAPES)
        if k % 2:
            q, a, full = f"What color is the {shape}?", colour, f"The {shape} is {colour}."
        else:
            q, a = "Is the background dark?", rng.choice(["yes", "no"])
            full = "Yes, it is dark." if a == "yes" else "No, it is light."
        out[str(20968000 + 7 * k)] = {
            "semantic": [],
            "entailed": [],
            "equivalent": [str(20968000 + 7 * k)],
            "question": q,
            "imageId": image_id,
            "isBalanced": True,
            "groups": {"global": None, "local": "10c-color"},
            "answer": a,
            "semanticStr": "",
            "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
            "types": {"structural": "query", "semantic": "attr", "detailed": "color"},
            "fullAnswer": full,
        }
    _write_json(d / "testdev_balanced_questions.json", out)


# -- RefCOCO family ---------------------------------------------------------------------------
CATEGORIES = [
    (1, "person", "person"),
    (3, "vehicle", "car"),
    (18, "animal", "dog"),
    (47, "kitchen", "cup"),
    (62, "furniture", "chair"),
]


def _refer(
    task_dir: Path,
    *,
    refs_name: str,
    splits: dict[str, int],
    seed: int,
    first_image: int,
    first_ann: int,
    ref_id_base: int,
) -> None:
    """`splits`: split -> number of images; 3 refs per image, 2 or 3 sentences per ref."""
    rng = random.Random(seed)
    images, annotations, refs = [], [], []
    image_id, ann_id, ref_id, sent_id = first_image, first_ann, ref_id_base, 0
    for split, n_images in splits.items():
        for _ in range(n_images):
            size = (rng.choice([64, 72, 80, 96]), rng.choice([48, 56, 64]))
            name = f"COCO_train2014_{image_id:012d}.png"
            make_png(task_dir / "train2014" / name, seed * 1000 + image_id, size)
            images.append(
                {
                    "license": 1,
                    "file_name": name,
                    "coco_url": "",
                    "height": size[1],
                    "width": size[0],
                    "date_captured": "",
                    "flickr_url": "",
                    "id": image_id,
                }
            )
            for _ in range(3):
                w, h = rng.randint(8, size[0] // 2), rng.randint(8, size[1] // 2)
                x = round(rng.uniform(0, size[0] - w), 2)
                y = round(rng.uniform(0, size[1] - h), 2)
                cat_id, _, cat = rng.choice(CATEGORIES)
                annotations.append(
                    {
                        "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                        "area": float(w * h),
                        "iscrowd": 0,
                        "image_id": image_id,
                        "bbox": [x, y, float(w), float(h)],
                        "category_id": cat_id,
                        "id": ann_id,
                    }
                )
                sentences = []
                for _ in range(2 + ref_id % 2):
                    raw = (
                        f"{rng.choice(['the', 'a', ''])} {rng.choice(COLOURS)} {cat} "
                        f"{rng.choice(['on the left', 'on the right', 'in the middle', ''])}"
                    )
                    raw = " ".join(raw.split())
                    if sent_id == 5:
                        raw = f"the café {cat}"  # real refs hold some non-ASCII text
                    sentences.append(
                        {
                            "tokens": raw.split(),
                            "raw": raw.capitalize(),
                            "sent_id": sent_id,
                            "sent": raw,
                        }
                    )
                    sent_id += 1
                refs.append(
                    {
                        "sent_ids": [s["sent_id"] for s in sentences],
                        "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                        "ann_id": ann_id,
                        "ref_id": ref_id,
                        "image_id": image_id,
                        "split": split,
                        "sentences": sentences,
                        "category_id": cat_id,
                    }
                )
                ann_id += 1
                ref_id += 1
            image_id += 3
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / refs_name).write_bytes(py2_pickle_dumps(refs))
    _write_json(
        task_dir / "instances.json",
        {
            "info": {"description": "qwenvl-eval builtin mini set (synthetic)"},
            "images": images,
            "licenses": [{"id": 1, "name": "CC BY 4.0", "url": ""}],
            "type": "instances",
            "annotations": annotations,
            "categories": [{"supercategory": s, "id": i, "name": n} for i, s, n in CATEGORIES],
        },
    )


def make_refcoco(root: Path) -> None:
    unc = {"train": 2, "val": 5, "testA": 5, "testB": 5}
    _refer(
        root / "refcoco",
        refs_name="refs(unc).p",
        splits=unc,
        seed=61,
        first_image=9,
        first_ann=1000,
        ref_id_base=0,
    )
    _refer(
        root / "refcoco+",
        refs_name="refs(unc).p",
        splits=unc,
        seed=62,
        first_image=9,
        first_ann=1000,
        ref_id_base=0,
    )
    _refer(
        root / "refcocog",
        refs_name="refs(umd).p",
        splits={"train": 2, "val": 5, "test": 5},
        seed=63,
        first_image=9,
        first_ann=1000,
        ref_id_base=0,
    )


def main(out_root: Path) -> None:
    out_root = Path(out_root)
    for sub in SUBDIRS:
        shutil.rmtree(out_root / sub, ignore_errors=True)
    make_vqav2(out_root)
    make_okvqa(out_root)
    make_vizwiz(out_root)
    make_textvqa(out_root)
    make_gqa(out_root)
    make_refcoco(out_root)


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "qwenvl_eval" / "tasks" / "builtin"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
