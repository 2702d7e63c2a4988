"""MMBench (CircularEval), MMStar and RealWorldQA: both data formats, the Qwen2-VL prompt,
scoring end to end, the real tiny model on the built-in sets, batch-size invariance."""

from __future__ import annotations

import base64
import io

import pandas as pd
import pytest
from PIL import Image

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.model.loader import load_runner
from qwenvl_eval.model.presets import resolve_model
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.types import Text
from tests.fakes import FakeRunner
from tests.tasks import _docs_fixtures as dfx

CHOICE_TASKS = ["mmbench_dev_en", "mmstar", "realworldqa"]


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
def test_mmbench_tsv_rotations_share_the_first_rows_image(tmp_path):
    rows = [
        {"index": 5 + k * 1_000_000, "question": "Which?", "hint": "Look." if k == 0 else None,
         "A": ["cat", "dog"][k], "B": ["dog", "cat"][k], "answer": "AB"[k],
         "category": "image_scene", "l2-category": "coarse_perception", "split": "dev",
         "image": _b64(1) if k == 0 else "5"}
        for k in range(2)
    ]  # fmt: skip
    _tsv(tmp_path / "mmbench" / "MMBench_DEV_EN.tsv", rows)
    task = registry.get_task("mmbench_dev_en")
    split = task.load(tmp_path)
    assert split.info["format"] == "vlmeval tsv"
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


def test_mmbench_lmms_lab_parquet(tmp_path):
    rows = [
        {"index": 3 + k * 1_000_000, "question": "Which?", "hint": "nan", "A": o[0], "B": o[1],
         "C": "nan", "D": "nan", "answer": "AB"[k], "category": "c", "L2-category": "l2",
         "source": "s", "comment": "nan", "split": "dev", "image": dfx.png_cell("a.png", k)}
        for k, o in enumerate([("x", "y"), ("y", "x")])
    ]  # fmt: skip
    dfx.write_parquet(tmp_path / "mmbench" / "en" / "dev-00000-of-00001.parquet", rows)
    split = registry.get_task("mmbench_dev_en").load(tmp_path, "hf")
    assert split.info["format"] == "hf parquet"
    a, b = split.docs
    assert (a.id, a.fields["group"], b.fields["group"]) == ("3", 3, 3)
    assert a.fields["options"] == {"A": "x", "B": "y"} and a.fields["hint"] == "nan"
    assert b.fields["l2_category"] == "l2" and b.images[0].read_bytes()


def test_mmstar_hf_copy_reads_the_options_out_of_the_question(tmp_path):
    rows = [{"index": 0, "question": "Which is on top?\nOptions: A: a cat, B: a dog, sleeping, "
             "C: a fox, D: none", "answer": "B", "category": "c", "l2_category": "l2",
             "meta_info": {"source": "x"}, "image": dfx.png_cell("m.png")}]  # fmt: skip
    dfx.write_parquet(tmp_path / "mmstar" / "val-00000-of-00001.parquet", rows)
    (doc,) = registry.get_task("mmstar").load(tmp_path).docs
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
    dfx.write_parquet(tmp_path / "realworldqa" / "test-00000-of-00001.parquet", rows)
    task = registry.get_task("realworldqa")
    mc, open_ = task.load(tmp_path).docs
    assert mc.fields["question"] == "Where is the car?"
    assert mc.fields["options"] == {"A": "left", "B": "right"}
    assert open_.fields["options"] == {}
    assert _prompt_text(task, open_) == "Question: " + rows[1]["question"]


@pytest.mark.parametrize("name", CHOICE_TASKS)
def test_data_check_reports_the_builtin_tsv(name):
    (row,) = check_tasks([name], "builtin")
    assert row.status == "partial" and row.format == "vlmeval tsv", row
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


def test_mmbench_circular_eval_needs_every_rotation_right(tmp_path):
    # Right on every rotation except rotation 1 of question 2: that question fails as a whole.
    def answers(doc):
        if doc.id == "1000002":
            return "The answer is " + ("A" if doc.fields["answer"] != "A" else "B")
        return f"{doc.fields['answer']}. {doc.fields['options'][doc.fields['answer']]}"

    result, docs = _run("mmbench_dev_en", answers, tmp_path)
    n_rot = len(docs)
    n_q = len({d.fields["group"] for d in docs.values()})
    assert result.metrics["circular_acc"] == pytest.approx(100 * (n_q - 1) / n_q)
    assert result.metrics["acc"] == pytest.approx(100 * (n_rot - 1) / n_rot)
    # per level-2 ability, under VLMEvalKit's abbreviations; question 2 is relation_reasoning
    assert result.metrics["circular_acc/RR"] < 100 and result.metrics["circular_acc/CP"] == 100


def test_mmbench_an_unreadable_rotation_fails_its_question(tmp_path):
    result, docs = _run("mmbench_dev_en", lambda d: "I am not sure.", tmp_path)
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


# -- the real tiny model ---------------------------------------------------------------------
_RUNNERS: dict[int, object] = {}


def _tiny(batch_size: int):
    if batch_size not in _RUNNERS:
        _RUNNERS[batch_size] = load_runner(
            resolve_model("tiny-qwen2-vl"),
            RunnerOptions(device="cpu", dtype="fp32", batch_size=batch_size),
        )
    return _RUNNERS[batch_size]


def _tiny_run(name, batch_size, tmp_path):
    run = prepare_task(
        name, builtin_root(), QWEN2_VL.info, limit=6, gen_overrides={"max_new_tokens": 6}
    )
    (result,) = evaluate([run], _tiny(batch_size), PredictionStore(tmp_path))
    rows = PredictionStore(tmp_path).load(name)
    return result, {i: r.output for i, r in rows.items()}


@pytest.mark.parametrize("name", CHOICE_TASKS)
def test_tiny_model_scores_and_batch_size_does_not_change_answers(name, tmp_path):
    one, out_one = _tiny_run(name, 1, tmp_path / "b1")
    three, out_three = _tiny_run(name, 3, tmp_path / "b3")
    assert one.counts["errors"] == 0 and one.counts["items"] == 6
    assert out_one == out_three and all(isinstance(t, str) for t in out_one.values())
    assert one.metrics == three.metrics
    assert set(registry.get_task(name).metrics) <= set(one.metrics)
