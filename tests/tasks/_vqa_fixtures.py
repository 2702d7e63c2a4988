"""Tiny data sets in the official formats of VQAv2, OK-VQA, VizWiz, TextVQA, GQA and the
refer toolkit (RefCOCO family), written into a temporary data root by the tests.

The layouts and field names follow the official releases (VQA v2 questions/annotations
files, VizWiz `Annotations/*.json`, TextVQA 0.5.1, GQA `testdev_balanced_questions.json`,
refer `refs(unc).p` + `instances.json`); the contents are made up, small enough to assert
exact ids and scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from scripts.builtin.vqa_grounding import py2_pickle_dumps


def jpg(path: Path, size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (len(path.name) * 9 % 256, 80, 160)).save(path, format="JPEG")


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _answers(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    out = []
    for answer, count in pairs:
        out += [{"answer": answer, "answer_confidence": "yes"} for _ in range(count)]
    for n, a in enumerate(out, 1):
        a["answer_id"] = n
    return out


def _vqa_pair(
    folder: Path,
    subtype: str,
    image_dir: str,
    qfile: str,
    afile: str | None,
    rows: list[tuple[int, int, str, list[dict] | None]],
) -> None:
    questions = []
    annotations = []
    for qid, image_id, question, answers in rows:
        jpg(folder / image_dir / f"COCO_{image_dir}_{image_id:012d}.jpg")
        questions.append({"image_id": image_id, "question": question, "question_id": qid})
        if answers is not None:
            annotations.append(
                {
                    "question_id": qid,
                    "image_id": image_id,
                    "answers": answers,
                    "answer_type": "other",
                    "question_type": "what",
                    "multiple_choice_answer": answers[0]["answer"],
                }
            )
    write_json(
        folder / qfile,
        {
            "info": {},
            "task_type": "Open-Ended",
            "data_type": "mscoco",
            "data_subtype": subtype,
            "license": {},
            "questions": questions,
        },
    )
    if afile:
        write_json(
            folder / afile,
            {"info": {}, "license": {}, "data_subtype": subtype, "annotations": annotations},
        )


# VQAv2 val: the expected scores are worked out in test_vqa.py.
VQAV2_VAL = [
    (420, 42, "What color is the bus?", _answers(("red", 10))),
    (421, 42, "How many dogs are there?", _answers(("2", 3), ("3", 7))),
    (5000, 50, "Is it raining?", _answers(("no", 10))),
]


def write_vqav2(root: Path) -> Path:
    folder = root / "vqav2"
    _vqa_pair(
        folder,
        "val2014",
        "val2014",
        "v2_OpenEnded_mscoco_val2014_questions.json",
        "v2_mscoco_val2014_annotations.json",
        VQAV2_VAL,
    )
    _vqa_pair(
        folder,
        "test-dev2015",
        "test2015",
        "v2_OpenEnded_mscoco_test-dev2015_questions.json",
        None,
        [(10010, 1001, "What is on the table?", None), (10011, 1001, "Is the cup full?", None)],
    )
    return root


def _okvqa_row(qid: int, image_id: int, question: str, answer: str, other: str):
    return (qid, image_id, question, _answers((answer, 6), (other, 4)))


def write_okvqa(root: Path) -> Path:
    folder = root / "okvqa"
    _vqa_pair(
        folder,
        "val2014",
        "val2014",
        "OpenEnded_mscoco_val2014_questions.json",
        "mscoco_val2014_annotations.json",
        [
            _okvqa_row(2971475, 297147, "What sport can you use this for?", "race", "racing"),
            _okvqa_row(
                1419615,
                141961,
                "What is the hairstyle of the blond called?",
                "pony tail",
                "ponytail",
            ),
        ],
    )
    _vqa_pair(
        folder,
        "train2014",
        "train2014",
        "OpenEnded_mscoco_train2014_questions.json",
        "mscoco_train2014_annotations.json",
        [
            _okvqa_row(100 + k, 10 + k, f"Train question {k}?", f"answer{k}", f"other{k}")
            for k in range(5)
        ],
    )
    return root


def write_vizwiz(root: Path) -> Path:
    folder = root / "vizwiz"
    for split, n in (("val", 2), ("train", 5), ("test", 2)):
        rows = []
        for k in range(n):
            name = f"VizWiz_{split}_{k:08d}.jpg"
            jpg(folder / split / name)
            row: dict[str, Any] = {"image": name, "question": f"What is this {split} {k}?"}
            if split != "test":
                row["answers"] = [
                    {"answer": f"{split} thing {k}", "answer_confidence": "yes"}
                ] * 9 + [{"answer": "unanswerable", "answer_confidence": "maybe"}]
                row["answer_type"] = "other"
                row["answerable"] = 1
            rows.append(row)
        write_json(folder / "Annotations" / f"{split}.json", rows)
    return root


def write_textvqa(root: Path) -> Path:
    folder = root / "textvqa"
    for split, ids in (("val", [34602, 34603]), ("train", list(range(5)))):
        data = []
        for k, qid in enumerate(ids):
            image_id = f"{split}{k:013d}"
            jpg(folder / "train_images" / f"{image_id}.jpg")
            answers = [f"word{k}"] * 7 + ["other"] * 3
            data.append(
                {
                    "question": f"what does sign {k} say?",
                    "image_id": image_id,
                    "answers": answers,
                    "question_id": qid,
                    "set_name": split,
                    "image_classes": [],
                    "question_tokens": [],
                }
            )
        write_json(
            folder / f"TextVQA_0.5.1_{split}.json",
            {
                "dataset_type": split,
                "dataset_name": "textvqa",
                "dataset_version": "0.5.1",
                "data": data,
            },
        )
    return root


def write_gqa(root: Path) -> Path:
    folder = root / "gqa"
    rows = {
        "201307251": ("n15740", "What color is the bus?", "red"),
        "20968379": ("n15740", "Is the sky cloudy?", "yes"),
        "2033": ("n98122", "Which animal is this?", "dog"),
    }
    blob = {}
    for qid, (image_id, question, answer) in rows.items():
        jpg(folder / "images" / f"{image_id}.jpg")
        blob[qid] = {
            "imageId": image_id,
            "question": question,
            "answer": answer,
            "fullAnswer": f"It is {answer}.",
            "isBalanced": True,
            "types": {},
        }
    write_json(folder / "testdev_balanced_questions.json", blob)
    return root


# refer fixture: image 1 is 100x80, image 2 is 200x100.
REFER_IMAGES = {1: (100, 80), 2: (200, 100)}
REFER_ANNS = {
    10: (1, [10.0, 20.0, 30.0, 40.0]),
    11: (2, [0.0, 0.0, 100.0, 50.0]),
    12: (1, [50.0, 10.0, 20.0, 20.0]),
    13: (2, [5.0, 5.0, 10.0, 10.0]),
}


def refs_list(val_split: str = "val") -> list[dict[str, Any]]:
    def ref(ref_id, ann_id, split, sents):
        image_id = REFER_ANNS[ann_id][0]
        return {
            "sent_ids": [s for s, _ in sents],
            "ann_id": ann_id,
            "ref_id": ref_id,
            "image_id": image_id,
            "split": split,
            "category_id": 1,
            "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
            "sentences": [
                {"sent_id": s, "sent": t, "raw": t.capitalize(), "tokens": t.split()}
                for s, t in sents
            ],
        }

    return [
        ref(0, 10, val_split, [(0, "the red bus"), (1, "left bus")]),
        ref(1, 11, "train", [(2, "a train ref")]),
        ref(2, 12, "testA", [(3, "man on the right")]),
        ref(3, 11, val_split, [(4, "big café sign")]),
        ref(4, 13, "testB", [(5, "small cup"), (6, "the cup")]),
    ]


def write_refer(
    root: Path,
    subdir: str = "refcoco",
    refs_name: str = "refs(unc).p",
    refs: list[dict[str, Any]] | None = None,
) -> Path:
    folder = root / subdir
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, size in REFER_IMAGES.items():
        jpg(folder / "train2014" / f"COCO_train2014_{image_id:012d}.jpg", size)
    (folder / refs_name).write_bytes(py2_pickle_dumps(refs if refs is not None else refs_list()))
    write_json(
        folder / "instances.json",
        {
            "images": [
                {"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg", "width": w, "height": h}
                for i, (w, h) in REFER_IMAGES.items()
            ],
            "annotations": [
                {
                    "id": a,
                    "image_id": i,
                    "bbox": b,
                    "category_id": 1,
                    "iscrowd": 0,
                    "area": b[2] * b[3],
                }
                for a, (i, b) in REFER_ANNS.items()
            ],
            "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}],
        },
    )
    return root
