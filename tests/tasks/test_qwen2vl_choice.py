"""MMBench (CircularEval), MMStar and RealWorldQA: both data formats, the Qwen2-VL prompt,
scoring end to end, the real tiny model on the built-in sets, batch-size invariance."""

from __future__ import annotations

import base64
import io

import pandas as pd
import pytest
from PIL import Image

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError, UserError
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.types import Text
from tests.fakes import FakeRunner
from tests.tasks import _docs_fixtures as dfx
from tests.tasks import _hf_cards as cards

# MMBench dev: VLMEvalKit's file and the lmms-lab/MMBench config (None: no public HF copy).
MMBENCH = {
    "mmbench_dev_en": ("MMBench_DEV_EN.tsv", "en"),
    "mmbench_dev_cn": ("MMBench_DEV_CN.tsv", "cn"),
    "mmbench_v11_dev_en": ("MMBench_DEV_EN_V11.tsv", None),
    "mmbench_v11_dev_cn": ("MMBench_DEV_CN_V11.tsv", None),
}
CHOICE_TASKS = [*MMBENCH, "mmstar", "realworldqa"]


def _b64(seed: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (6, 5), (seed * 40 % 256, 10, 20)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def _prompt_text(task, doc, family=QWEN2_VL.info) -> str:
    req = task.request(doc, family)
    return "".join(p.text for p in req.parts if isinstance(p, Text))


# -- data: VLMEvalKit TSV and the HF copies -------------------------------------------------
@pytest.mark.parametrize("name", MMBENCH)
def test_mmbench_tsv_rotations_share_the_first_rows_image(name, tmp_path):
    rows = [
        {"index": 5 + k * 1_000_000, "question": "Which?", "hint": "Look." if k == 0 else None,
         "A": ["cat", "dog"][k], "B": ["dog", "cat"][k], "answer": "AB"[k],
         "category": "image_scene", "l2-category": "coarse_perception", "split": "dev",
         "image": _b64(1) if k == 0 else "5"}
        for k in range(2)
    ]  # fmt: skip
    _tsv(tmp_path / "mmbench" / MMBENCH[name][0], rows)
    task = registry.get_task(name)
    split = task.load(tmp_path)
    assert split.info["format"] == "vlmeval tsv"
    assert split.info["files"][0]["path"].endswith(MMBENCH[name][0])
    a, b = split.docs
    assert (a.id, b.id) == ("5", "1000005")
    assert a.fields["group"] == b.fields["group"] == 5
    assert a.images[0].read_bytes() == b.images[0].read_bytes()
    assert a.fields["options"] == {"A": "cat", "B": "dog"} and b.fields["answer"] == "B"
    assert _prompt_text(task, a) == (
        "Hint: Look.\nQuestion: Which?\nOptions:\nA. cat\nB. dog\n"
        "Please select the correct answer from the options above."
    )
    assert _prompt_text(task, b).startswith("Question: Which?\nOptions:\nA. dog\nB. cat\n")


@pytest.mark.parametrize("name", ["mmbench_dev_cn", "mmbench_v11_dev_cn"])
def test_mmbench_cn_keeps_the_english_labels_and_asks_in_chinese(name, tmp_path):
    # VLMEvalKit's Qwen2-VL `_build_mcq_prompt`: the same Hint/Question/Options labels; the
    # instruction is the Chinese one because the text has a CJK character.
    rows = [{"index": 7, "question": "图中哪个形状是红色的？", "hint": "这是一张合成的图片。",
             "A": "圆形", "B": "正方形", "answer": "B", "category": "image_scene",
             "l2-category": "coarse_perception", "split": "dev", "image": _b64(4)}]  # fmt: skip
    _tsv(tmp_path / "mmbench" / MMBENCH[name][0], rows)
    task = registry.get_task(name)
    (doc,) = task.load(tmp_path).docs
    assert _prompt_text(task, doc) == (
        "Hint: 这是一张合成的图片。\nQuestion: 图中哪个形状是红色的？\nOptions:\n"
        "A. 圆形\nB. 正方形\n请直接回答选项字母。"
    )


def test_mmbench_files_are_not_mixed_up(tmp_path):
    rows = [{"index": 1, "question": "Q", "A": "x", "B": "y", "answer": "A", "image": _b64(5)}]
    _tsv(tmp_path / "mmbench" / "MMBench_DEV_EN.tsv", rows)
    assert len(registry.get_task("mmbench_dev_en").load(tmp_path).docs) == 1
    for name in ("mmbench_dev_cn", "mmbench_v11_dev_en", "mmbench_v11_dev_cn"):
        (row,) = check_tasks([name], str(tmp_path))
        assert row.status == "missing" and MMBENCH[name][0] in row.detail, row


def test_mmbench_groups():
    assert registry.resolve(["mmbench"]) == list(MMBENCH)
    image = registry.resolve(["qwen2vl-image"])
    # The report's table: MMBench-EN, MMBench-CN and MMBench-V1.1 (EN); no V1.1 CN.
    assert {"mmbench_dev_en", "mmbench_dev_cn", "mmbench_v11_dev_en"} <= set(image)
    assert "mmbench_v11_dev_cn" not in image


def test_a_chinese_question_gets_the_chinese_instruction(tmp_path):
    rows = [{"index": 1, "question": "哪一个是红色？", "A": "红", "B": "蓝", "answer": "A",
             "image": _b64(2)}]  # fmt: skip
    _tsv(tmp_path / "mmstar" / "MMStar.tsv", rows)
    task = registry.get_task("mmstar")
    (doc,) = task.load(tmp_path).docs
    assert _prompt_text(task, doc).endswith("B. 蓝\n请直接回答选项字母。")


def test_an_answer_that_is_no_option_names_the_item(tmp_path):
    rows = [{"index": 9, "question": "Q", "A": "x", "B": "y", "answer": "C", "image": _b64(3)}]
    _tsv(tmp_path / "mmstar" / "MMStar.tsv", rows)
    with pytest.raises(DataError, match=r"MMStar.tsv.*9.*answer"):
        registry.get_task("mmstar").load(tmp_path)


def test_mmbench_lmms_lab_parquet_en(tmp_path):
    # Config `en`: string index, and "nan" where VLMEvalKit's TSV has an empty cell (lmms-eval's
    # en_utils drops a "nan" hint and "nan" options): no `Hint: nan` line, no option "nan".
    rows = [
        {"index": str(3 + k * 1_000_000), "question": "Which?", "hint": "nan", "A": o[0],
         "B": o[1], "C": "nan", "D": "nan", "answer": "AB"[k], "category": "c",
         "L2-category": "l2", "source": "s", "comment": "nan", "split": "dev",
         "image": dfx.png_cell("a.png", k)}
        for k, o in enumerate([("x", "y"), ("y", "x")])
    ]  # fmt: skip
    shard = tmp_path / "mmbench" / "en" / "dev-00000-of-00001.parquet"
    dfx.write_hf_parquet(shard, rows, cards.MMBENCH_EN)
    task = registry.get_task("mmbench_dev_en")
    split = task.load(tmp_path, "hf")
    assert split.info["format"] == "hf parquet"
    a, b = split.docs
    assert (a.id, a.fields["group"], b.fields["group"]) == ("3", 3, 3)
    assert a.fields["options"] == {"A": "x", "B": "y"} and a.fields["hint"] is None
    assert b.fields["l2_category"] == "l2" and b.images[0].read_bytes()
    assert _prompt_text(task, a) == (
        "Question: Which?\nOptions:\nA. x\nB. y\n"
        "Please select the correct answer from the options above."
    )


def test_mmbench_lmms_lab_parquet_cn(tmp_path):
    rows = [
        {"index": 4 + k * 1_000_000, "question": "哪一个？", "hint": None if k else "提示",
         "A": o[0], "B": o[1], "C": None, "D": None, "answer": "AB"[k], "category": "c",
         "L2-category": "l2", "source": "s", "comment": None, "split": "dev",
         "image": dfx.png_cell("c.png", k)}
        for k, o in enumerate([("甲", "乙"), ("乙", "甲")])
    ]  # fmt: skip
    shard = tmp_path / "mmbench" / "cn" / "dev-00000-of-00001.parquet"
    dfx.write_hf_parquet(shard, rows, cards.MMBENCH_CN)
    task = registry.get_task("mmbench_dev_cn")
    a, b = task.load(tmp_path, "hf").docs
    assert (a.id, b.id, b.fields["group"]) == ("4", "1000004", 4)
    assert b.fields["hint"] is None and b.fields["options"] == {"A": "乙", "B": "甲"}
    assert _prompt_text(task, a) == (
        "Hint: 提示\nQuestion: 哪一个？\nOptions:\nA. 甲\nB. 乙\n请直接回答选项字母。"
    )


@pytest.mark.parametrize("name", ["mmbench_v11_dev_en", "mmbench_v11_dev_cn"])
def test_mmbench_v11_has_no_hf_copy(name, tmp_path):
    with pytest.raises(UserError, match="no hf layout is known"):
        registry.get_task(name).load(tmp_path, "hf")


def test_mmstar_hf_copy_reads_the_options_out_of_the_question(tmp_path):
    rows = [{"index": 0, "question": "Which is on top?\nOptions: A: a cat, B: a dog, sleeping, "
             "C: a fox, D: none", "answer": "B", "category": "c", "l2_category": "l2",
             "meta_info": {"source": "x", "split": "val", "image_path": "images/0.jpg"},
             "image": dfx.png_cell("m.png")}]  # fmt: skip
    # the card's one file for split `val`, as downloaded (no `val-*` shard names)
    dfx.write_hf_parquet(tmp_path / "mmstar" / "mmstar.parquet", rows, cards.MMSTAR)
    split = registry.get_task("mmstar").load(tmp_path, "hf")
    assert split.info["files"][0]["path"].endswith("mmstar/mmstar.parquet")
    (doc,) = split.docs
    assert (doc.id, doc.fields["answer"], doc.fields["l2_category"]) == ("0", "B", "l2")
    assert doc.fields["question"] == "Which is on top?"
    expected = {"A": "a cat", "B": "a dog, sleeping", "C": "a fox", "D": "none"}
    assert doc.fields["options"] == expected


def test_realworldqa_hf_copy_multiple_choice_and_open(tmp_path):
    rows = [
        {"question": "Where is the car?\nA. left\nB. right\nPlease answer directly with only "
         "the letter of the correct option and nothing else.", "answer": "B",
         "image": dfx.png_cell("0.png")},
        {"question": "How many cars are there? Please answer directly with a single word or "
         "number.", "answer": "2", "image": dfx.png_cell("1.png", 1)},
    ]  # fmt: skip
    shard = tmp_path / "realworldqa" / "data" / "test-00000-of-00002.parquet"
    dfx.write_hf_parquet(shard, rows, cards.REALWORLDQA)
    task = registry.get_task("realworldqa")
    mc, open_ = task.load(tmp_path).docs
    assert mc.fields["question"] == "Where is the car?"
    assert mc.fields["options"] == {"A": "left", "B": "right"}
    assert open_.fields["options"] == {}
    assert _prompt_text(task, open_) == "Question: " + rows[1]["question"]


@pytest.mark.parametrize("name", CHOICE_TASKS)
def test_data_check_reports_the_builtin_tsv(name):
    (row,) = check_tasks([name], "builtin")
    # a file with a known official size is partial; V1.1 has no published size
    expected = "ok" if name.startswith("mmbench_v11") else "partial"
    assert row.status == expected and row.format == "vlmeval tsv", row
    assert row.files[0]["path"].endswith(".tsv") and len(row.files[0]["sha256"]) == 64


def test_qwen_vl_family_gets_the_text_after_its_image_span():
    task = registry.get_task("mmstar")
    doc = task.load(builtin_root()).docs[0]
    req = task.request(doc, QWEN_VL.info)
    assert req.style == "raw" and isinstance(req.parts[1], Text)
    assert req.parts[1].text.startswith("Question: ")


# -- scoring end to end (a scripted model) ---------------------------------------------------
def _answering(per_id: dict[str, str]):
    return lambda request: per_id[request.id]


def _run(name, answers, tmp_path):
    run = prepare_task(name, builtin_root(), QWEN2_VL.info)
    docs = {d.id: d for d in run.docs}
    texts = {i: answers(d) for i, d in docs.items()}
    (result,) = evaluate([run], FakeRunner(_answering(texts)), PredictionStore(tmp_path))
    return result, docs


@pytest.mark.parametrize("name", MMBENCH)
def test_mmbench_circular_eval_needs_every_rotation_right(name, tmp_path):
    # Right on every rotation except rotation 1 of question 2: that question fails as a whole.
    def answers(doc):
        if doc.id == "1000002":
            return "The answer is " + ("A" if doc.fields["answer"] != "A" else "B")
        return f"{doc.fields['answer']}. {doc.fields['options'][doc.fields['answer']]}"

    result, docs = _run(name, answers, tmp_path)
    # the built-in file: 12 questions of 2, 3, 4, 2, ... options = 36 rotations
    assert len(docs) == 36 and len({d.fields["group"] for d in docs.values()}) == 12
    assert result.metrics["circular_acc"] == pytest.approx(100 * 11 / 12)
    assert result.metrics["acc"] == pytest.approx(100 * 35 / 36)
    # per level-2 ability, under VLMEvalKit's abbreviations; questions 2, 5, 8, 11 are
    # relation_reasoning, so one of the four fails
    assert result.metrics["circular_acc/RR"] == pytest.approx(75.0)
    assert result.metrics["circular_acc/CP"] == 100.0
    assert result.notes == ["circular_acc over 12 questions (36 rotations)"]


@pytest.mark.parametrize("name", ["mmbench_dev_cn", "mmbench_v11_dev_cn"])
def test_mmbench_cn_answers_read_by_their_chinese_option_text(name, tmp_path):
    # No letter: the rules find the one option whose text the answer contains (can_infer_text).
    result, docs = _run(name, lambda d: d.fields["options"][d.fields["answer"]], tmp_path)
    assert all(d.fields["mcq_instruction"] == "请直接回答选项字母。" for d in map(
        registry.get_task(name).prompt_doc, docs.values()))  # fmt: skip
    assert result.metrics["circular_acc"] == 100.0 and result.metrics["acc"] == 100.0


@pytest.mark.parametrize("name", MMBENCH)
def test_mmbench_an_unreadable_rotation_fails_its_question(name, tmp_path):
    result, docs = _run(name, lambda d: "I am not sure.", tmp_path)
    assert result.metrics["circular_acc"] == 0.0 and result.metrics["acc"] == 0.0


def test_realworldqa_letters_and_open_answers(tmp_path):
    def answers(doc):
        if not doc.fields["options"]:
            return f" {doc.fields['answer']} "
        return doc.fields["options"][doc.fields["answer"]]  # the option's text, no letter

    result, _ = _run("realworldqa", answers, tmp_path)
    assert result.metrics["acc"] == 100.0


def test_mmstar_breakdown_per_capability(tmp_path):
    result, docs = _run(
        "mmstar",
        lambda d: d.fields["answer"] if d.fields["category"] == "math" else "Z",
        tmp_path,
    )
    assert result.metrics["acc/math"] == 100.0
    assert result.metrics["acc/coarse perception"] == 0.0
    assert result.metrics["acc"] == 50.0
