"""Mini datasets in the official formats for captioning (NoCaps, Flickr30K), document and chart
VQA (DocVQA, ChartQA, AI2D, OCR-VQA) and ScienceQA. Deterministic: same bytes every run.

Images are small PNGs (scripts/builtin/_images.py); where an official format fixes a file
name's extension (OCR-VQA's `{id}.jpg`) the PNG keeps the stem and the reader's fallback
finds it, elsewhere the data files name the `.png` directly.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from scripts.builtin._images import make_png

COLOURS = [
    "red",
    "blue",
    "green",
    "yellow",
    "purple",
    "orange",
    "white",
    "black",
    "pink",
    "brown",
    "grey",
    "teal",
]
SHAPES = ["circle", "square", "rectangle", "ellipse", "triangle", "disc", "box", "oval"]
PLACES = [
    "on a plain background",
    "in a field",
    "next to a wall",
    "on a table",
    "in the corner",
    "near the centre",
]


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _caption(rng: random.Random) -> str:
    n = rng.choice(["A", "Two", "Three", "A small", "A large"])
    plural = n in ("Two", "Three")
    shape = rng.choice(SHAPES)
    if plural:
        shape += "es" if shape.endswith("x") else "s"
    verb = "are" if plural else "is"
    return f"{n} {rng.choice(COLOURS)} {shape} {verb} {rng.choice(PLACES)}."


# -- captioning -----------------------------------------------------------------------------
def nocaps(out: Path) -> None:
    """`nocaps_val_4500_captions.json` (COCO style, `domain` per image), 36 images."""
    rng = random.Random(101)
    images, annotations = [], []
    domains = ["in-domain", "near-domain", "out-domain"]
    for i in range(36):
        oid = f"{rng.getrandbits(64):016x}"
        name = f"{oid}.png"
        w, h = make_png(out / "images" / name, seed=1000 + i)
        images.append(
            {
                "id": i,
                "open_images_id": oid,
                "height": h,
                "width": w,
                "coco_url": f"https://s3.amazonaws.com/nocaps/val/{oid}.jpg",
                "file_name": name,
                "license": 0,
                "date_captured": "2018-11-06 11:04:33",
                "domain": domains[i % 3],
            }
        )
        for _ in range(10):
            annotations.append({"image_id": i, "id": len(annotations), "caption": _caption(rng)})
    _dump(
        out / "nocaps_val_4500_captions.json",
        {
            "licenses": [
                {
                    "url": "https://creativecommons.org/licenses/by/2.0/",
                    "id": 0,
                    "name": "Attribution License",
                }
            ],
            "info": {"description": "nocaps validation (builtin mini set)", "version": "0.1"},
            "images": images,
            "annotations": annotations,
        },
    )


def flickr30k(out: Path) -> None:
    """Karpathy's `dataset_flickr30k.json`: 40 train, 4 val, 32 test images, 5 captions each."""
    rng = random.Random(202)
    images, sentid = [], 0
    splits = ["train"] * 40 + ["val"] * 4 + ["test"] * 32
    for imgid, split in enumerate(splits):
        name = f"{1000092795 + 7919 * imgid}.png"
        make_png(out / "flickr30k-images" / name, seed=2000 + imgid)
        sentences = []
        for _ in range(5):
            raw = _caption(rng)
            tokens = raw.lower().rstrip(".").split()
            sentences.append({"tokens": tokens, "raw": raw, "imgid": imgid, "sentid": sentid})
            sentid += 1
        images.append(
            {
                "sentids": [s["sentid"] for s in sentences],
                "imgid": imgid,
                "sentences": sentences,
                "split": split,
                "filename": name,
            }
        )
    _dump(out / "dataset_flickr30k.json", {"images": images, "dataset": "flickr30k"})


# -- document / chart VQA -------------------------------------------------------------------
def docvqa(out: Path) -> None:
    """`val/val_v1.0.json` (32 questions with answers) and `test/test_v1.0.json` (32 without)."""
    rng = random.Random(303)
    fields = [
        ("What is the date mentioned?", ["March 3, 1998", "3/3/98"]),
        ("What is the title of the document?", ["MEMORANDUM"]),
        ("Who is the sender?", ["John Smith", "J. Smith"]),
        ("What is the total amount?", ["$1,250.00", "1250"]),
        ("What is the page number?", ["2"]),
        ("What is the fax number?", ["(212) 555-0199"]),
    ]
    qid = 49153
    for split in ("val", "test"):
        rows = []
        for i in range(32):
            doc = f"{'abcdefgh'[i % 8]}{rng.randrange(10**4):04d}_{i % 3}"
            make_png(
                out / split / "documents" / f"{doc}.png",
                seed=3000 + 100 * len(split) + i,
                size=(48, 64),
            )
            question, answers = fields[rng.randrange(len(fields))]
            row = {
                "questionId": qid,
                "question": question,
                "question_types": ["form"],
                "image": f"documents/{doc}.png",
                "docId": 1000 + i,
                "ucsf_document_id": doc.split("_")[0],
                "ucsf_document_page_no": "1",
            }
            if split == "val":
                row["answers"] = answers
            rows.append(row)
            qid += 1
        _dump(
            out / split / f"{split}_v1.0.json",
            {
                "dataset_name": "docvqa",
                "dataset_split": split,
                "dataset_version": "1.0",
                "data": rows,
            },
        )


def chartqa(out: Path) -> None:
    """`test/test_human.json` and `test/test_augmented.json`, 32 questions each."""
    rng = random.Random(404)
    for s, split in enumerate(("human", "augmented")):
        rows = []
        for i in range(32):
            name = f"{'multi_col_' if i % 2 else ''}{100 + 37 * i + s}.png"
            make_png(out / "test" / "png" / name, seed=4000 + 100 * s + i)
            kind = i % 3
            if kind == 0:
                query, label = "What is the value of the highest bar?", str(rng.randint(1, 99))
            elif kind == 1:
                query = "What is the share of the largest segment?"
                label = f"{rng.randint(1, 60)}.{rng.randint(0, 9)}"
            else:
                query, label = "Which colour is the smallest bar?", rng.choice(COLOURS)
            rows.append({"imgname": name, "query": query, "label": label})
        _dump(out / "test" / f"test_{split}.json", rows)


def ai2d(out: Path) -> None:
    """Qwen-VL's `test.jsonl` form: {image, question (with its options), answer}, 32 lines."""
    rng = random.Random(505)
    lines = []
    for i in range(32):
        make_png(out / "images" / f"{i}.png", seed=5000 + i)
        options = rng.sample(SHAPES, 4)
        answer = rng.randrange(4)
        question = f"Which shape is labelled {'ABCD'[i % 4]}?\n" + "\n".join(
            f"{'ABCD'[k]}. {o}" for k, o in enumerate(options)
        )
        lines.append(
            json.dumps(
                {
                    "image": f"images/{i}.png",
                    "question": question,
                    "answer": options[answer],
                    "question_id": i,
                }
            )
        )
    (out / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def ocrvqa(out: Path) -> None:
    """`dataset.json`: 8 train, 4 val, 16 test books with 2 questions each."""
    rng = random.Random(606)
    genres = ["Cookbooks, Food & Wine", "Travel", "Children's Books", "Science & Math"]
    data = {}
    for i, split in enumerate([1] * 8 + [2] * 4 + [3] * 16):
        book = f"{rng.randrange(10**10):010d}"
        make_png(out / "images" / f"{book}.png", seed=6000 + i, size=(40, 64))
        title = f"The {rng.choice(COLOURS).title()} {rng.choice(SHAPES).title()}"
        author = rng.choice(["Ann Lee", "Bo Chen", "Cy Diaz", "Di Evans"])
        genre = rng.choice(genres)
        data[book] = {
            "imageURL": f"http://ecx.images-amazon.com/images/I/{book}.jpg",
            "questions": ["Who wrote this book?", "What is the title of this book?"],
            "answers": [author, title],
            "title": title,
            "authorName": author,
            "genre": genre,
            "split": split,
        }
    _dump(out / "dataset.json", data)


# -- ScienceQA ------------------------------------------------------------------------------
SQA_TOPICS = [
    ("natural science", "Which of these objects is {c}?", ["a {c} ball", "a stone", "a leaf"]),
    ("social science", "Which state is highlighted?", ["Ohio", "Texas", "Maine", "Utah"]),
    ("language science", "Which word would you find on a dictionary page?", ["apple", "zebra"]),
]


def scienceqa(out: Path) -> None:
    """`problems.json` + `pid_splits.json`: test 40 with an image + 16 without, train 16,
    val 4; images `images/{split}/{pid}/image.png`."""
    rng = random.Random(707)
    problems, splits = {}, {"train": [], "val": [], "test": []}
    plan = (
        [("train", True)] * 8
        + [("train", False)] * 8
        + [("val", True)] * 2
        + [("val", False)] * 2
        + [("test", True)] * 40
        + [("test", False)] * 16
    )
    rng.shuffle(plan)
    for n, (split, with_image) in enumerate(plan):
        pid = str(4 + 3 * n)
        subject, question, choices = SQA_TOPICS[n % 3]
        colour = rng.choice(COLOURS)
        choices = [c.format(c=colour) for c in choices]
        rng.shuffle(choices)
        hint = "" if n % 4 == 0 else f"This {colour} thing is shown in the picture."
        if with_image:
            make_png(out / "images" / split / pid / "image.png", seed=7000 + n)
        problems[pid] = {
            "question": question.format(c=colour),
            "choices": choices,
            "answer": rng.randrange(len(choices)),
            "hint": hint,
            "image": "image.png" if with_image else None,
            "task": "closed choice",
            "grade": f"grade{1 + n % 12}",
            "subject": subject,
            "topic": "mini",
            "category": "Mini category",
            "skill": "Mini skill",
            "lecture": "",
            "solution": "",
            "split": split,
        }
        splits[split].append(pid)
    splits["trainval"] = splits["train"] + splits["val"]
    for name in ("train", "val", "test"):
        splits[f"mini{name}"] = splits[name][: max(1, len(splits[name]) // 10)]
    _dump(out / "problems.json", problems)
    _dump(out / "pid_splits.json", splits)


BUILDERS = {
    "nocaps": nocaps,
    "flickr30k": flickr30k,
    "docvqa": docvqa,
    "chartqa": chartqa,
    "ai2d": ai2d,
    "ocrvqa": ocrvqa,
    "scienceqa": scienceqa,
}


def main(out_root: Path) -> None:
    for name, build in BUILDERS.items():
        folder = out_root / name
        shutil.rmtree(folder, ignore_errors=True)  # stale images must not survive a rebuild
        build(folder)


if __name__ == "__main__":
    main(Path(__file__).resolve().parents[2] / "qwenvl_eval" / "tasks" / "builtin")
