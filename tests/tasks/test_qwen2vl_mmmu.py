"""MMMU validation: both data formats, the Qwen2-VL MMMU prompt, official answer parsing end to
end, the real tiny model on the built-in set, batch-size invariance."""

from __future__ import annotations

import pytest

from qwenvl_eval import registry
from qwenvl_eval.model.families import QWEN_VL
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.types import Image, Text
from tests.tasks import _docs_fixtures as dfx
from tests.tasks import _hf_cards as cards
from tests.tasks.test_qwen2vl_choice import _b64, _prompt_text, _run, _tsv


def test_tsv_reads_validation_rows_with_their_pictures(tmp_path):
    rows = [
        {"index": 0, "id": "validation_Art_Theory_1", "question": "Which? <image 1>",
         "A": "x", "B": "y", "answer": "B", "split": "validation", "category": "Art Theory",
         "image": repr([_b64(1), _b64(2)])},
        {"index": 1, "id": "validation_Physics_2", "question": "How far?  ", "answer": "12",
         "split": "validation", "category": "Physics", "image": _b64(3)},
        {"index": 2, "id": "dev_Physics_1", "question": "Q", "answer": "1", "split": "dev",
         "category": "Physics", "image": _b64(4)},
    ]  # fmt: skip
    _tsv(tmp_path / "mmmu" / "MMMU_DEV_VAL.tsv", rows)
    task = registry.get_task("mmmu_val")
    mc, op = task.load(tmp_path).docs  # the dev row is not read
    assert (mc.fields["subject"], len(mc.images)) == ("Art_Theory", 2)
    assert (op.fields["question_type"], op.fields["options"]) == ("open", {})
    assert _prompt_text(task, mc) == (
        "Question: Which? <image 1>\nOptions:\nA. x\nB. y\n"
        "Please select the correct answer from the options above."
    )
    assert _prompt_text(task, op) == "Question: How far?"
    raw = task.request(mc, QWEN_VL.info)
    assert [type(p) for p in raw.parts] == [Image, Image, Text]


def test_lmms_lab_parquet(tmp_path):
    rows = [
        {"id": "validation_Accounting_3", "question": "Pick <image 1>",
         "options": "['1', '2', '3']", "explanation": "", "image_1": dfx.png_cell("a.png"),
         "image_2": None, "img_type": "['Tables']", "answer": "C",
         "topic_difficulty": "Easy", "question_type": "multiple-choice", "subfield": "Audit"},
        {"id": "validation_Accounting_4", "question": "How much?", "options": "[]",
         "explanation": "", "image_1": dfx.png_cell("b.png", 1), "image_2": None,
         "img_type": "['Tables']", "answer": "['5', '5.0']", "topic_difficulty": "Hard",
         "question_type": "open", "subfield": "Audit"},
    ]  # fmt: skip
    shard = tmp_path / "mmmu" / "data" / "validation-00000-of-00001.parquet"
    dfx.write_hf_parquet(shard, rows, cards.MMMU)  # image_3..image_7 null, as in the copy
    mc, op = registry.get_task("mmmu_val").load(tmp_path, "hf").docs
    assert mc.id == "validation_Accounting_3" and len(mc.images) == 1
    assert mc.fields["options"] == {"A": "1", "B": "2", "C": "3"}
    assert op.fields["answer"] == ["5", "5.0"] and op.fields["subject"] == "Accounting"


def test_data_check_reports_the_builtin_tsv():
    (row,) = check_tasks(["mmmu_val"], "builtin")
    assert row.status == "partial" and row.items == 32, row


def test_official_parsing_end_to_end(tmp_path):
    # Multiple choice answered "(X)" (right), open answered "the answer is N" (right), except
    # Physics, answered with nothing readable: its letters are drawn at random.
    def answers(doc):
        f = doc.fields
        if f["subject"] == "Physics":
            return "hmm"
        if f["options"]:
            return f"I think ({f['answer']}) is right."
        return f"so the answer is {f['answer']}"

    result, docs = _run("mmmu_val", answers, tmp_path)
    assert result.metrics["acc/Art_Theory"] == 100.0 and result.metrics["acc/Accounting"] == 100.0
    physics = [d for d in docs.values() if d.fields["subject"] == "Physics"]
    assert result.metrics["acc/Physics"] < 100.0
    # Overall: weighted by subject size as the official script.
    n = {s: sum(d.fields["subject"] == s for d in docs.values()) for s in ("Physics",)}
    assert n["Physics"] == len(physics)
    right = len(docs) - len(physics) + result.metrics["acc/Physics"] / 100 * len(physics)
    assert result.metrics["acc"] == pytest.approx(100 * right / len(docs))
    assert result.metrics["acc/Overall-Science"] == result.metrics["acc/Physics"]


def test_random_draw_is_the_same_on_every_run(tmp_path):
    a, _ = _run("mmmu_val", lambda d: "", tmp_path / "a")
    b, _ = _run("mmmu_val", lambda d: "", tmp_path / "b")
    assert a.metrics == b.metrics


def test_builtin_has_two_picture_items():
    docs = registry.get_task("mmmu_val").load(builtin_root()).docs
    assert any(len(d.images) == 2 for d in docs)
