"""Small data sets in the official formats of NoCaps, Flickr30K (Karpathy), DocVQA, ChartQA,
AI2D (Qwen-VL JSONL), OCR-VQA and ScienceQA, written into a temporary data root, plus a fake
runner that answers from tables (texts for generation, log-probabilities for scoring).

The layouts and field names follow the official releases (see each reader's docstring);
the contents are made up and small enough to assert exact ids and scores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN_VL, Family
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.types import OptionScore, Response, ScoreRequest
from scripts.builtin._images import make_png
from tests.fakes import FakeRunner


def png(path: Path, seed: int = 0) -> None:
    make_png(path, seed, size=(12, 10))


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_hf_parquet(path: Path, rows: list[dict[str, Any]], features: dict[str, Any]) -> Path:
    """A parquet shard as `datasets` writes it for the Hub: the columns and dtypes of a dataset
    card's `dataset_info.features` (`"int64"`, `"string"`, `"image"`, a list of one dtype for
    a sequence, a dict for a struct), with the features in the file's metadata, as in the
    published copies."""
    import datasets

    datasets.disable_progress_bars()

    def feature(dtype: Any) -> Any:
        if isinstance(dtype, list):
            return datasets.Sequence(feature(dtype[0]))
        if isinstance(dtype, dict):
            return {k: feature(v) for k, v in dtype.items()}
        return datasets.Image() if dtype == "image" else datasets.Value(dtype)

    spec = datasets.Features({k: feature(v) for k, v in features.items()})
    extra = {k for row in rows for k in row} - set(features)
    assert not extra, f"columns not in the card: {extra}"
    ds = datasets.Dataset.from_list([{k: r.get(k) for k in features} for r in rows], features=spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return path


def png_cell(name: str, seed: int = 0) -> dict[str, Any]:
    """An HF `Image` cell: the PNG's bytes and its file name."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (6, 5), (seed * 40 % 256, 10, 20)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": name}


# -- the fake runner and a one-call task run ---------------------------------------------------
class TableRunner(FakeRunner):
    """Generation answers `texts[id]`; option scoring returns `logprobs[id]` as each option's
    mean log-probability."""

    def __init__(
        self,
        texts: dict[str, str] | None = None,
        logprobs: dict[str, Sequence[float]] | None = None,
        family: Family = QWEN_VL,
        fail: set[str] = frozenset(),
    ) -> None:
        super().__init__(lambda r: (texts or {})[r.id], family=family, fail=fail)
        self.logprobs = logprobs or {}

    def score_options(self, requests: Sequence[ScoreRequest]) -> Iterator[Response]:
        for r in requests:
            if r.id in self.fail:
                yield Response(id=r.id, error="out of memory")
                continue
            means = self.logprobs[r.id]
            assert len(means) == len(r.options)
            yield Response(
                id=r.id,
                options=tuple(
                    OptionScore(sum_logprob=2 * m, mean_logprob=m, num_tokens=2) for m in means
                ),
            )


def run_task(name: str, root: Path, tmp_path: Path, runner: TableRunner, **kw):
    run = prepare_task(name, root, runner.family.info, **kw)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], runner, store)
    return run, result, store


def predictions(store: PredictionStore, task: str) -> dict[str, dict[str, Any]]:
    lines = store.predictions_path(task).read_text().splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


# -- captioning -------------------------------------------------------------------------------
# NoCaps: (image id, domain, references); the expected scores come from pycocoevalcap itself.
NOCAPS = [
    (0, "in-domain", ["A man rides a horse on the beach.", "A person riding a brown horse."]),
    (1, "near-domain", ["A red bus parked on the street.", "A bus is parked near a curb."]),
    (2, "out-domain", ["A jellyfish floating in blue water.", "A pink jellyfish in the sea."]),
    (3, "in-domain", ["Two dogs play with a ball.", "Dogs playing in the grass."]),
    (4, "near-domain", ["A yellow taxi on a city street.", "A taxi drives past shops."]),
    (5, "out-domain", ["A tortoise walking on sand.", "A big tortoise in the sun."]),
]


def write_nocaps(root: Path) -> Path:
    folder = root / "nocaps"
    images, annotations = [], []
    for image_id, domain, refs in NOCAPS:
        name = f"{image_id:016x}.jpg"
        png(folder / "images" / name, image_id)
        images.append(
            {
                "id": image_id,
                "open_images_id": f"{image_id:016x}",
                "file_name": name,
                "height": 10,
                "width": 12,
                "domain": domain,
            }
        )
        for ref in refs:
            annotations.append({"image_id": image_id, "id": len(annotations), "caption": ref})
    write_json(
        folder / "nocaps_val_4500_captions.json",
        {"licenses": [], "info": {}, "images": images, "annotations": annotations},
    )
    return root


# Flickr30K Karpathy: (file name, split, references).
FLICKR = [
    ("1000092795.jpg", "train", ["Two young guys with shaggy hair.", "Two men outside."]),
    ("10002456.jpg", "train", ["Several men in hard hats.", "Workers look down."]),
    ("1000268201.jpg", "test", ["A child in a pink dress.", "A little girl climbing."]),
    ("1000344755.jpg", "val", ["Someone in a blue shirt.", "A man on a ladder."]),
    ("1000366164.jpg", "test", ["Two men, one in a gray shirt.", "Two guys cooking."]),
    ("1000523639.jpg", "train", ["A man in an orange hat.", "A man with pierced ears."]),
    ("1000919630.jpg", "train", ["A man sits in a chair.", "A man in a field."]),
    ("10010052.jpg", "train", ["A girl is on rollerskates.", "A woman skates."]),
]


def write_flickr_karpathy(root: Path) -> Path:
    folder = root / "flickr30k"
    images, sentid = [], 0
    for imgid, (name, split, refs) in enumerate(FLICKR):
        png(folder / "flickr30k-images" / name, imgid)
        sentences = []
        for raw in refs:
            sentences.append(
                {
                    "tokens": raw.lower().rstrip(".").split(),
                    "raw": raw,
                    "imgid": imgid,
                    "sentid": sentid,
                }
            )
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
    write_json(folder / "dataset_flickr30k.json", {"images": images, "dataset": "flickr30k"})
    return root


def write_flickr_coco_style(root: Path) -> Path:
    """Qwen-VL's converted `flickr30k_karpathy_test.json`: images named by path."""
    folder = root / "flickr30k"
    images, annotations = [], []
    for n, (name, split, refs) in enumerate(FLICKR):
        png(folder / "flickr30k-images" / name, n)
        if split != "test":
            continue
        images.append({"id": n, "image": f"data/flickr30k/flickr30k-images/{name}"})
        annotations += [{"image_id": n, "id": len(annotations), "caption": r} for r in refs]
    write_json(
        folder / "flickr30k_karpathy_test.json", {"images": images, "annotations": annotations}
    )
    return root


# -- document / chart VQA ---------------------------------------------------------------------
DOCVQA_VAL = [
    (57344, "What is the title?", "documents/pybv0228_81.png", ["MEMORANDUM"]),
    (57345, "What is the date?", "documents/pybv0228_81.png", ["March 3, 1998", "3/3/98"]),
    (57346, "Who signed it?", "documents/xnbl0037_1.png", ["John Smith"]),
    (57347, "What is the total?", "documents/xnbl0037_1.png", ["$1,250.00"]),
]


def write_docvqa(root: Path, flat: bool = False) -> Path:
    folder = root / "docvqa" if flat else root / "docvqa" / "val"
    rows = []
    for qid, question, image, answers in DOCVQA_VAL:
        png(folder / image, qid)
        rows.append(
            {
                "questionId": qid,
                "question": question,
                "question_types": ["form"],
                "image": image,
                "docId": 14465,
                "ucsf_document_id": "pybv0228",
                "ucsf_document_page_no": "81",
                "answers": answers,
            }
        )
    write_json(
        folder / "val_v1.0.json",
        {"dataset_name": "docvqa", "dataset_split": "val", "dataset_version": "1.0", "data": rows},
    )
    test = root / "docvqa" / "test"
    png(test / "documents/ffbf0023_4.png", 1)
    write_json(
        test / "test_v1.0.json",
        {
            "dataset_split": "test",
            "data": [
                {
                    "questionId": 1,
                    "question": "What is the name?",
                    "image": "documents/ffbf0023_4.png",
                },
                {
                    "questionId": 2,
                    "question": "What is the year?",
                    "image": "documents/ffbf0023_4.png",
                },
            ],
        },
    )
    return root


CHARTQA = {
    "human": [
        ("41699051005347.png", "What is the peak value?", "100"),
        ("two_col_1.png", "Which colour is the largest?", "Blue"),
    ],
    "augmented": [
        ("multi_col_20396.png", "What is the sum?", "42"),
        ("two_col_2.png", "Is the value above 10?", "Yes"),
    ],
}


def write_chartqa(root: Path) -> Path:
    folder = root / "chartqa" / "test"
    for split, rows in CHARTQA.items():
        for n, (name, _, _) in enumerate(rows):
            png(folder / "png" / name, n)
        write_json(
            folder / f"test_{split}.json",
            [{"imgname": i, "query": q, "label": a} for i, q, a in rows],
        )
    return root


AI2D = [
    {
        "image": "images/0.png",
        "question": "Which is a producer?\nA. fox\nB. grass",
        "answer": "grass",
        "question_id": 11,
    },
    {
        "image": "images/1.png",
        "question": "What stage is E?\nA. egg\nB. larva",
        "answer": "larva",
        "question_id": 12,
    },
]


def write_ai2d(root: Path) -> Path:
    folder = root / "ai2d"
    for n, row in enumerate(AI2D):
        png(folder / row["image"], n)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in AI2D))
    return root


def write_ocrvqa(root: Path) -> Path:
    folder = root / "ocrvqa"
    data = {
        "000100039X": {
            "imageURL": "http://ecx.images-amazon.com/images/I/51x.jpg",
            "questions": ["Who wrote this book?", "Is this a comedy book?"],
            "answers": ["Kahlil Gibran", "No"],
            "title": "The Prophet",
            "authorName": "Kahlil Gibran",
            "genre": "Religion",
            "split": 3,
        },
        "0001055178": {
            "imageURL": "http://x/2.jpg",
            "questions": ["What is the title?"],
            "answers": ["Master Your Mind"],
            "title": "t",
            "authorName": "a",
            "genre": "g",
            "split": 1,
        },
        "0001713353": {
            "imageURL": "http://x/3.jpg",
            "questions": ["What type of book?"],
            "answers": ["Children's Books"],
            "title": "t",
            "authorName": "a",
            "genre": "g",
            "split": 3,
        },
    }
    png(folder / "images" / "000100039X.jpg", 1)
    png(folder / "images" / "0001055178.jpg", 2)
    png(folder / "images" / "0001713353.png", 3)  # the download script kept a .png
    write_json(folder / "dataset.json", data)
    return root


# -- ScienceQA --------------------------------------------------------------------------------
# pid -> (split, question, choices, answer, hint, image?, subject, grade)
SQA = {
    "5": (
        "test",
        "Which property do these objects have in common?",
        ["hard", "soft"],
        1,
        "Select the best answer.",
        True,
        "natural science",
        "grade2",
    ),
    "11": (
        "test",
        "What is the name of the colony shown?",
        ["Maryland", "New Hampshire", "Rhode Island", "Vermont"],
        1,
        "",
        True,
        "social science",
        "grade5",
    ),
    "4": (
        "test",
        "Which figure of speech is used in this text?",
        ["chiasmus", "apostrophe"],
        1,
        "",
        False,
        "language science",
        "grade11",
    ),
    "22": (
        "test",
        "Which word would you find on a dictionary page?",
        ["cut", "dinner", "fog"],
        2,
        "Look at the guide words.",
        False,
        "language science",
        "grade3",
    ),
    "1": (
        "train",
        "Which tense does the sentence use?",
        ["past", "future"],
        0,
        "",
        True,
        "language science",
        "grade4",
    ),
}


def write_scienceqa(root: Path, official_images: bool = True) -> Path:
    folder = root / "scienceqa"
    problems, splits = {}, {"train": [], "val": [], "test": []}
    for pid, (split, q, choices, answer, hint, image, subject, grade) in SQA.items():
        if image:
            rel = f"images/{split}/{pid}" if official_images else f"images/{pid}"
            png(folder / rel / "image.png", int(pid))
        problems[pid] = {
            "question": q,
            "choices": choices,
            "answer": answer,
            "hint": hint,
            "image": "image.png" if image else None,
            "task": "closed choice",
            "grade": grade,
            "subject": subject,
            "topic": "t",
            "category": "c",
            "skill": "s",
            "lecture": "",
            "solution": "",
            "split": split,
        }
        splits[split].append(pid)
    write_json(folder / "problems.json", problems)
    write_json(folder / "pid_splits.json", splits)
    return root
