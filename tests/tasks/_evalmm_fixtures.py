"""A tiny Qwen-VL `data/` tree as the Qwen-VL repository's eval_mm/EVALUATION.md lays it out,
with its converted files under their own names and in their own schemas:

- VQA family (`evaluate_vqa.py`'s ds_collections): `vqav2/vqav2_{val,testdev}.jsonl`,
  `okvqa/okvqa_val.jsonl`, `textvqa/textvqa_val.jsonl`, `vizwiz/vizwiz_{val,test}.jsonl`,
  lines `{image, question, question_id, answer}` (no `answer` on test splits), scored with
  the VQA-format annotation files named there (`vqav2/v2_mscoco_val2014_annotations.json`,
  `okvqa/mscoco_val2014_annotations.json`, `textvqa/textvqa_val_annotations.json`,
  `vizwiz/vizwiz_val_annotations.json`); `gqa/testdev_balanced.jsonl`,
  `docvqa/{val,test}.jsonl`, `chartqa/test_{human,augmented}.jsonl`,
  `ai2diagram/test.jsonl`, `ocrvqa/ocrvqa_test.jsonl`;
- grounding (`evaluate_grounding.py`): `refcoco/refcoco_val.jsonl`, lines `{image, sent,
  bbox: [x1, y1, x2, y2] pixels, width, height}`;
- captions (`evaluate_caption.py`): `nocaps/nocaps_val.json`,
  `flickr30k/flickr30k_karpathy_test.json`, COCO-style with `images[].image`;
- ScienceQA: `scienceqa/problems.json` and `images/test/<pid>/image.png`, no pid_splits.json.

Every `image` is relative to the folder that holds `data/` (e.g.
`data/vizwiz/test/VizWiz_test_00000000.jpg`), as the eval_mm scripts open them. Contents are
made up and small enough to assert exact values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.tasks._docs_fixtures import png, write_json
from tests.tasks._vqa_fixtures import jpg


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _vqa_annotations(path: Path, answers: dict[Any, list[str]]) -> None:
    write_json(
        path,
        {
            "annotations": [
                {
                    "question_id": qid,
                    "answers": [
                        {"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                        for i, a in enumerate(ans)
                    ],
                }
                for qid, ans in answers.items()
            ]
        },
    )


def _image(data: Path, rel: str) -> str:
    """Writes the image `data/<rel>` and returns the path as eval_mm names it."""
    (png if rel.endswith(".png") else jpg)(data / rel)
    return f"data/{rel}"


# VQAv2 val: 2 questions on one COCO image, scored from the annotation file.
VQAV2 = [(420, "What color is the bus?", ["red"] * 10), (421, "How many?", ["2"] * 3 + ["3"] * 7)]


def write_tree(base: Path) -> Path:
    """The `data/` tree under `base`; returns the data root (`base/data`)."""
    data = base / "data"
    coco = _image(data, "coco/val2014/COCO_val2014_000000000042.jpg")
    _jsonl(
        data / "vqav2" / "vqav2_val.jsonl",
        [{"image": coco, "question": q, "question_id": i, "answer": a[0]} for i, q, a in VQAV2],
    )
    _vqa_annotations(
        data / "vqav2" / "v2_mscoco_val2014_annotations.json", {i: a for i, _, a in VQAV2}
    )
    test = _image(data, "coco/test2015/COCO_test2015_000000000001.jpg")
    _jsonl(
        data / "vqav2" / "vqav2_testdev.jsonl",
        [{"image": test, "question": "What is it?", "question_id": 10010}],
    )
    _jsonl(
        data / "okvqa" / "okvqa_val.jsonl",
        [{"image": coco, "question": "What sport?", "question_id": 2971475, "answer": "race"}],
    )
    _vqa_annotations(
        data / "okvqa" / "mscoco_val2014_annotations.json",
        {2971475: ["race"] * 6 + ["racing"] * 4},
    )
    tv = _image(data, "textvqa/train_images/0054c91397f2fe05.jpg")
    _jsonl(
        data / "textvqa" / "textvqa_val.jsonl",
        [{"image": tv, "question": "what brand?", "question_id": 34602, "answer": "nokia"}],
    )
    _vqa_annotations(
        data / "textvqa" / "textvqa_val_annotations.json", {34602: ["nokia"] * 8 + ["x"] * 2}
    )
    vz = _image(data, "vizwiz/val/VizWiz_val_00000000.jpg")
    _jsonl(
        data / "vizwiz" / "vizwiz_val.jsonl",
        [{"image": vz, "question": "What is this?", "question_id": 0, "answer": "soup"}],
    )
    _vqa_annotations(
        data / "vizwiz" / "vizwiz_val_annotations.json", {0: ["soup"] * 9 + ["unanswerable"]}
    )
    _jsonl(
        data / "vizwiz" / "vizwiz_test.jsonl",
        [
            {
                "image": _image(data, f"vizwiz/test/VizWiz_test_{k:08d}.jpg"),
                "question": f"What is this {k}?",
                "question_id": k,
            }
            for k in range(2)
        ],
    )
    _jsonl(
        data / "gqa" / "testdev_balanced.jsonl",
        [
            {
                "image": _image(data, "gqa/images/n15740.jpg"),
                "question": "What color is the bus?",
                "question_id": "201307251",
                "answer": "red",
            }
        ],
    )
    ref_img = _image(data, "coco/train2014/COCO_train2014_000000000001.jpg")
    _jsonl(
        data / "refcoco" / "refcoco_val.jsonl",
        [
            {"image": ref_img, "sent": "the red bus", "bbox": [10, 20, 40, 60], "width": 100,
             "height": 80},
            {"image": ref_img, "sent": "left man", "bbox": [0.5, 1, 30, 41.5], "width": 100,
             "height": 80},
        ],
    )  # fmt: skip
    nocaps_img = _image(data, "nocaps/images/0013ea2087020901.jpg")
    write_json(
        data / "nocaps" / "nocaps_val.json",
        {
            "images": [{"id": 0, "image": nocaps_img}],
            "annotations": [
                {"image_id": 0, "id": 1, "caption": "A man rides a horse."},
                {"image_id": 0, "id": 2, "caption": "A person on a horse."},
            ],
        },
    )
    flickr_img = _image(data, "flickr30k/flickr30k-images/1000092795.jpg")
    write_json(
        data / "flickr30k" / "flickr30k_karpathy_test.json",
        {
            "images": [{"id": 0, "image": flickr_img}],
            "annotations": [{"image_id": 0, "id": 1, "caption": "Two young guys."}],
        },
    )
    doc_img = _image(data, "docvqa/val/documents/pybv0228_81.png")
    _jsonl(
        data / "docvqa" / "val.jsonl",
        [{"image": doc_img, "question": "What is the title?", "question_id": 57344,
          "answer": ["MEMORANDUM", "memo"]}],
    )  # fmt: skip
    _jsonl(
        data / "docvqa" / "test.jsonl",
        [
            {
                "image": _image(data, "docvqa/test/documents/ffbf0023_4.png"),
                "question": "What is the name?",
                "question_id": 1,
            }
        ],
    )
    for split, (name, q, a) in {
        "human": ("41699051005347.png", "What is the peak value?", "100"),
        "augmented": ("multi_col_20396.png", "What is the sum?", "42"),
    }.items():
        _jsonl(
            data / "chartqa" / f"test_{split}.jsonl",
            [{"image": _image(data, f"chartqa/test/png/{name}"), "question": q, "answer": a}],
        )
    _jsonl(
        data / "ai2diagram" / "test.jsonl",
        [
            {
                "image": _image(data, "ai2diagram/ai2d/images/0.png"),
                "question": "Which is a producer?\nA. fox\nB. grass",
                "answer": "grass",
                "question_id": "0.png-0",
            }
        ],
    )
    _jsonl(
        data / "ocrvqa" / "ocrvqa_test.jsonl",
        [
            {
                "image": _image(data, "ocrvqa/images/000100039X.jpg"),
                "question": "Who wrote this book?",
                "question_id": "000100039X_0",
                "answer": "Kahlil Gibran",
            }
        ],
    )
    problems = {
        "5": _problem("test", True, 1),
        "4": _problem("test", False, 0),
        "1": _problem("train", True, 0),
    }
    _image(data, "scienceqa/images/test/5/image.png")
    write_json(data / "scienceqa" / "problems.json", problems)
    return data


def _problem(split: str, image: bool, answer: int) -> dict[str, Any]:
    return {
        "question": "Which one?",
        "choices": ["hard", "soft"],
        "answer": answer,
        "hint": "",
        "image": "image.png" if image else None,
        "subject": "natural science",
        "grade": "grade2",
        "split": split,
    }
