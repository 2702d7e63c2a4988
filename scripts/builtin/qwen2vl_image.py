"""Mini sets of the Qwen2-VL report's image benchmarks, as VLMEvalKit's TSV files (base64 PNG
images, one row per question, options in columns A-D). Deterministic: same bytes every run.

MMBench has its rotations (rows `index + k x 1e6`, the image cell naming the first row).
"""

from __future__ import annotations

import base64
import csv
import random
import shutil
import tempfile
from pathlib import Path

from scripts.builtin._images import make_png

SHAPES = ["circle", "square", "triangle", "star", "ring", "cross"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange"]


def _b64_png(seed: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.png"
        make_png(path, seed=seed)
        return base64.b64encode(path.read_bytes()).decode()


def _write_tsv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """As pandas `to_csv(sep="\\t", index=False)` writes it (an empty cell is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])


def _mcq(rng: random.Random, n_options: int) -> tuple[str, list[str], int]:
    colour = rng.choice(COLOURS)
    options = rng.sample(SHAPES, n_options)
    right = rng.randrange(n_options)
    return f"Which shape is {colour} in the image?", options, right


SHAPES_CN = dict(zip(SHAPES, ["圆形", "正方形", "三角形", "星形", "圆环", "十字"], strict=True))
COLOURS_CN = dict(zip(COLOURS, ["红色", "蓝色", "绿色", "黄色", "紫色", "橙色"], strict=True))

# One mini file per MMBench dev file: (VLMEvalKit's name, Chinese?, question seed, image seed).
MMBENCH_FILES = [
    ("MMBench_DEV_EN", False, 7001, 7100),
    ("MMBench_DEV_CN", True, 7011, 8100),
    ("MMBench_DEV_EN_V11", False, 7012, 8200),
    ("MMBench_DEV_CN_V11", True, 7013, 8300),
]


def _mmbench_file(path: Path, chinese: bool, seed: int, image_seed: int) -> None:
    """12 questions of 2-4 options, each with all its rotations (36 rows); a Chinese file
    has its question, hint and options in Chinese (VLMEvalKit's CN files translate those,
    the category names stay English)."""
    rng = random.Random(seed)
    cats = [
        ("image_scene", "coarse_perception"),
        ("object_localization", "finegrained_perception (instance-level)"),
        ("spatial_relationship", "relation_reasoning"),
    ]
    rows = []
    for q in range(12):
        question, options, right = _mcq(rng, 2 + q % 3)
        hint = "The picture is synthetic."
        if chinese:
            colour = question.removeprefix("Which shape is ").removesuffix(" in the image?")
            question = f"图中哪个形状是{COLOURS_CN[colour]}的？"
            options = [SHAPES_CN[o] for o in options]
            hint = "这是一张合成的图片。"
        category, l2 = cats[q % len(cats)]
        for k in range(len(options)):
            rotated = options[k:] + options[:k]
            rows.append(
                {
                    "index": q + k * 1_000_000,
                    "question": question,
                    "hint": hint if q % 2 else None,
                    **dict(zip("ABCD", rotated, strict=False)),
                    "answer": "ABCD"[(right - k) % len(options)],
                    "category": category,
                    "l2-category": l2,
                    "split": "dev",
                    "image": _b64_png(image_seed + q) if k == 0 else str(q),
                }
            )
    rows.sort(key=lambda r: r["index"])
    cols = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category"]
    _write_tsv(path, cols + ["split", "image"], rows)


def mmbench(out: Path) -> None:
    for name, chinese, seed, image_seed in MMBENCH_FILES:
        _mmbench_file(out / "mmbench" / f"{name}.tsv", chinese, seed, image_seed)


def mmstar(out: Path) -> None:
    rng = random.Random(7002)
    cats = [("coarse perception", "image scene and topic"), ("math", "geometry")]
    rows = []
    for q in range(32):
        question, options, right = _mcq(rng, 4)
        category, l2 = cats[q % 2]
        rows.append(
            {
                "index": q,
                "question": question,
                **dict(zip("ABCD", options, strict=True)),
                "answer": "ABCD"[right],
                "category": category,
                "l2-category": l2,
                "image": _b64_png(7200 + q),
            }
        )
    cols = ["index", "question", "A", "B", "C", "D", "answer", "category", "l2-category", "image"]
    _write_tsv(out / "mmstar" / "MMStar.tsv", cols, rows)


def realworldqa(out: Path) -> None:
    """24 multiple-choice questions and 8 open ones (a number as the answer)."""
    rng = random.Random(7003)
    rows = []
    for q in range(32):
        row = {"index": q, "image": _b64_png(7300 + q)}
        if q % 4 == 3:
            row.update(question="How many shapes are in the image?", answer=str(rng.randint(2, 5)))
        else:
            question, options, right = _mcq(rng, 3)
            row.update(
                question=question, answer="ABC"[right], **dict(zip("ABC", options, strict=True))
            )
        rows.append(row)
    cols = ["index", "image", "question", "A", "B", "C", "answer"]
    _write_tsv(out / "realworldqa" / "RealWorldQA.tsv", cols, rows)


def ocrbench(out: Path) -> None:
    """32 questions over four categories, answers as VLMEvalKit writes them (a list literal)."""
    rng = random.Random(7004)
    cats = [
        "Regular Text Recognition",
        "Scene Text-centric VQA",
        "Key Information Extraction",
        "Handwritten Mathematical Expression Recognition",
    ]
    rows = []
    for q in range(32):
        category = cats[q % 4]
        if category.startswith("Handwritten"):
            answer = [f"x^{{{rng.randint(2, 9)}}} + {rng.randint(1, 9)}"]
        else:
            word = rng.choice(COLOURS) + rng.choice(SHAPES)
            answer = [word, word.upper()]
        rows.append(
            {
                "index": q,
                "image": _b64_png(7400 + q),
                "question": "what is written in the image?",
                "answer": repr(answer),
                "category": category,
            }
        )
    _write_tsv(
        out / "ocrbench" / "OCRBench.tsv",
        ["index", "image", "question", "answer", "category"],
        rows,
    )


def mme(out: Path) -> None:
    """16 images in four subtasks, two questions each (one Yes, one No), 32 rows; the second
    question's image cell names the first row."""
    rng = random.Random(7005)
    subtasks = ["existence", "color", "OCR", "commonsense_reasoning"]
    rows = []
    for i in range(16):
        subtask = subtasks[i % 4]
        colour = rng.choice(COLOURS)
        other = rng.choice([c for c in COLOURS if c != colour])
        for k, (c, ans) in enumerate(((colour, "Yes"), (other, "No"))):
            rows.append(
                {
                    "index": 2 * i + k,
                    "image": _b64_png(7500 + i) if k == 0 else str(2 * i),
                    "question": f"Is there a {c} shape in the image? Please answer yes or no.",
                    "answer": ans,
                    "category": subtask,
                    "image_path": f"{subtask}/{i:04d}.png",
                }
            )
    cols = ["index", "image", "question", "answer", "category", "image_path"]
    _write_tsv(out / "mme" / "MME.tsv", cols, rows)


def hallusionbench(out: Path) -> None:
    """4 sets x 2 figures x 4 questions (32 rows), VD and VS categories."""
    rng = random.Random(7006)
    subs = [("VD", "illusion"), ("VD", "math"), ("VS", "chart"), ("VS", "map")]
    rows = []
    for s, (category, sub) in enumerate(subs):
        for fig in range(2):
            image = _b64_png(7600 + 2 * s + fig)
            for q in range(4):
                rows.append(
                    {
                        "index": len(rows),
                        "image": image,
                        "question": f"Is the {rng.choice(SHAPES)} {rng.choice(COLOURS)}?",
                        "answer": rng.choice(["Yes", "No"]),
                        "category": category,
                        "l2-category": sub,
                        "set_id": s,
                        "figure_id": fig,
                        "question_id": q,
                    }
                )
    cols = ["index", "image", "question", "answer", "category", "l2-category", "set_id"]
    _write_tsv(
        out / "hallusionbench" / "HallusionBench.tsv", cols + ["figure_id", "question_id"], rows
    )


def infovqa(out: Path) -> None:
    """32 questions, answers as a list literal (VLMEvalKit's InfoVQA_VAL form)."""
    rng = random.Random(7007)
    rows = []
    for q in range(32):
        n = rng.randint(2, 90)
        rows.append(
            {
                "index": q,
                "image": _b64_png(7700 + q),
                "question": "What percentage of people prefer the " + rng.choice(COLOURS) + " one?",
                "answer": repr([f"{n}%", str(n)]),
            }
        )
    _write_tsv(out / "infovqa" / "InfoVQA_VAL.tsv", ["index", "image", "question", "answer"], rows)
    infovqa_test(out)


def infovqa_test(out: Path) -> None:
    """32 test questions without answers (VLMEvalKit's InfoVQA_TEST form); the index is the
    question id the submission file carries."""
    rng = random.Random(7017)
    rows = [
        {
            "index": 65000 + 7 * q,
            "image": _b64_png(7750 + q),
            "question": "What percentage of people prefer the " + rng.choice(COLOURS) + " one?",
        }
        for q in range(32)
    ]
    _write_tsv(out / "infovqa" / "InfoVQA_TEST.tsv", ["index", "image", "question"], rows)


def mmmu(out: Path) -> None:
    """32 validation questions (24 multiple choice, 8 open; every 4th with two images, the
    image cell then a list) over four subjects, and 4 dev rows the task must skip."""
    rng = random.Random(7008)
    subjects = ["Art_Theory", "Accounting", "Physics", "Clinical_Medicine"]
    rows = []
    for q in range(36):
        split = "dev" if q >= 32 else "validation"
        subject = subjects[q % 4]
        pictures = [_b64_png(7800 + 2 * q + k) for k in range(2 if q % 4 == 1 else 1)]
        row = {
            "index": q,
            "id": f"{split}_{subject}_{q + 1}",
            "image": repr(pictures) if len(pictures) > 1 else pictures[0],
            "category": subject.replace("_", " "),
            "split": split,
        }
        if q % 4 == 3:
            row.update(question="How many shapes are in <image 1>?", answer=str(rng.randint(2, 9)))
        else:
            question, options, right = _mcq(rng, 4)
            row.update(question=question + " <image 1>", answer="ABCD"[right])
            row.update(zip("ABCD", options, strict=True))
        rows.append(row)
    cols = ["index", "id", "question", "A", "B", "C", "D", "answer", "category", "split", "image"]
    _write_tsv(out / "mmmu" / "MMMU_DEV_VAL.tsv", cols, rows)


def mathvista(out: Path) -> None:
    """32 testmini-like questions: multiple choice (the answer is the option's text),
    integer and float (precision 1) answers, with MathVista's metadata columns."""
    rng = random.Random(7009)
    tasks = ["figure question answering", "math word problem", "geometry problem solving"]
    rows = []
    for q in range(32):
        kind = ("multi_choice", "integer", "float")[q % 3]
        row = {"index": q, "image": _b64_png(7900 + q), "precision": None, "choices": None}
        if kind == "multi_choice":
            question, options, right = _mcq(rng, 4)
            letters = "\n".join(f"({c}) {o}" for c, o in zip("ABCD", options, strict=True))
            hint = "Hint: Please answer the question and provide the correct option letter, "
            hint += "e.g., A, B, C, D, at the end.\n"
            row.update(
                question=f"{hint}Question: {question}\nChoices:\n{letters}",
                answer=options[right],
                answer_type="text",
                choices=repr(options),
            )
        elif kind == "integer":
            row.update(
                question="Hint: Please answer the question requiring an integer answer "
                "and provide the final value, e.g., 1, 2, 3, at the end.\nQuestion: "
                "How many shapes are there?",
                answer=str(rng.randint(2, 9)),
                answer_type="integer",
            )
        else:
            row.update(
                question="Hint: Please answer the question requiring a floating-point "
                "number with one decimal place and provide the final value, e.g., "
                "1.2, 1.3, 1.4, at the end.\nQuestion: What is the ratio of the "
                "shapes?",
                answer=f"{rng.randint(1, 9)}.{rng.randint(0, 9)}",
                answer_type="float",
                precision=1.0,
            )
        row.update(question_type="multi_choice" if kind == "multi_choice" else "free_form",
                   task=tasks[q % 3], category="math-targeted-vqa", source="synthetic",
                   context="synthetic scene", grade="elementary school",
                   skills=repr(["arithmetic reasoning"] + (["logical reasoning"] if q % 2 else [])),
                   language="english")  # fmt: skip
        rows.append(row)
    cols = ["index", "image", "question", "answer", "question_type", "answer_type", "choices"]
    cols += ["precision", "task", "category", "source", "context", "grade", "skills", "language"]
    _write_tsv(out / "mathvista" / "MathVista_MINI.tsv", cols, rows)


BUILDERS = {
    "mathvista": mathvista,
    "mmmu": mmmu,
    "infovqa": infovqa,
    "mmbench": mmbench,
    "mmstar": mmstar,
    "realworldqa": realworldqa,
    "ocrbench": ocrbench,
    "mme": mme,
    "hallusionbench": hallusionbench,
}


def main(out_root: Path) -> None:
    for name, build in BUILDERS.items():
        shutil.rmtree(out_root / name, ignore_errors=True)
        build(out_root)


if __name__ == "__main__":
    main(Path(__file__).resolve().parents[2] / "qwenvl_eval" / "tasks" / "builtin")
