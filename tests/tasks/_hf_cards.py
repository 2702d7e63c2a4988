"""The columns and dtypes of the public HF copies the Qwen2-VL report's benchmarks are read
from, as each dataset card's `dataset_info.features` lists them (in the card's order), for
test fixtures written with `_docs_fixtures.write_hf_parquet`. Where a card was not readable,
the columns lmms-eval's task reads (lmms_eval/tasks/<bench>/) are named instead. Each
entry names its card (huggingface.co/datasets/<id>, README front matter) and revision.
"""

from __future__ import annotations

from typing import Any

# lmms-lab/MMBench README (revision ac155b9): configs `cc`, `cn`, `en`; `en` has a string
# index, `cn` an int64 one; splits dev/test in `{config}/{split}-*.parquet`. No V1.1 config.
_MMBENCH = {"question": "string", "hint": "string", "answer": "string", "A": "string",
            "B": "string", "C": "string", "D": "string", "category": "string",
            "image": "image", "source": "string", "L2-category": "string",
            "comment": "string", "split": "string"}  # fmt: skip
MMBENCH_EN: dict[str, Any] = {"index": "string", **_MMBENCH}
MMBENCH_CN: dict[str, Any] = {"index": "int64", **_MMBENCH}

# Lin-Chen/MMStar README (commit a9beb09 "init"): config `mmstar`, split `val`, one file
# `mmstar.parquet` at the repository root.
MMSTAR: dict[str, Any] = {
    "index": "int64", "question": "string", "image": "image", "answer": "string",
    "category": "string", "l2_category": "string",
    "meta_info": {"source": "string", "split": "string", "image_path": "string"},
}  # fmt: skip

# xai-org/RealworldQA README (image, question, answer; split test, 765 rows); lmms-lab's copy
# (`data/test-0000{0,1}-of-00002.parquet`, 765 rows) has a 410-byte card not in the index;
# lmms-eval's realworldqa utils read the same three columns.
REALWORLDQA: dict[str, Any] = {"image": "image", "question": "string", "answer": "string"}

# lmms-lab/MMMU README (revision 5f93af8): splits dev/validation/test in `data/`.
MMMU: dict[str, Any] = {
    "id": "string", "question": "string", "options": "string", "explanation": "string",
    **{f"image_{n}": "image" for n in range(1, 8)},
    "img_type": "string", "answer": "string", "topic_difficulty": "string",
    "question_type": "string", "subfield": "string",
}  # fmt: skip

# AI4Math/MathVista README (revision d32e834): splits testmini/test in `data/`.
MATHVISTA: dict[str, Any] = {
    "pid": "string", "question": "string", "image": "string", "decoded_image": "image",
    "choices": ["string"], "unit": "string", "precision": "float64", "answer": "string",
    "question_type": "string", "answer_type": "string",
    "metadata": {"category": "string", "context": "string", "grade": "string",
                 "img_height": "int64", "img_width": "int64", "language": "string",
                 "skills": ["string"], "source": "string", "split": "string",
                 "task": "string"},
    "query": "string",
}  # fmt: skip

# echo840/OCRBench README (revision 92a54bd): split test in `data/`. lmms-eval's ocrbench
# task reads this copy (there is no lmms-lab/OCRBench).
OCRBENCH: dict[str, Any] = {"dataset": "string", "question": "string",
                            "question_type": "string", "answer": ["string"],
                            "image": "image"}  # fmt: skip

# lmms-lab/MME README (main): split test in `data/`, 2374 rows.
MME: dict[str, Any] = {"question_id": "string", "image": "image", "question": "string",
                       "answer": "string", "category": "string"}  # fmt: skip

# lmms-lab/HallusionBench README (main): splits `image` (951) and `non_image` (178) in `data/`.
HALLUSIONBENCH: dict[str, Any] = {
    **{k: "string" for k in ("category", "subcategory", "visual_input", "set_id", "figure_id",
                             "sample_note", "question_id", "question", "gt_answer_details",
                             "gt_answer", "filename")},
    "image": "image",
}  # fmt: skip

# lmms-lab/DocVQA README (revision 700643a), config `InfographicVQA`: splits validation (2801)
# and test in `InfographicVQA/`.
INFOGRAPHICVQA: dict[str, Any] = {
    "questionId": "string", "question": "string", "answers": ["string"],
    "answer_type": ["string"], "image": "image", "image_url": "string",
    "operation/reasoning": ["string"], "ocr": "string", "data_split": "string",
}  # fmt: skip
