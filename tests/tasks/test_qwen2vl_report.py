"""The Qwen2-VL report's protocol for the paper's text-oriented tasks (`*_qwen2vl` variants):
exact prompts per family, AI2D as multiple choice, ChartQA's relaxed accuracy, and the base
tasks' prompt hashes left as they were."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import prepare_task
from qwenvl_eval.model.families import FAMILIES, QWEN2_5_VL, QWEN2_VL, QWEN3_VL, QWEN_VL
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.tasks.prompts import render_raw
from qwenvl_eval.types import Document, Generation, Image, Response, Text
from tests.tasks import _docs_fixtures as fx
from tests.tasks.test_qwen2vl_choice import _b64, _tsv

# VLMEvalKit vlmeval/vlm/qwen2_vl/prompt.py, Qwen2VLPromptMixin._build_vqa_prompt (VQA_PROMPT)
# and _build_mcq_prompt (MCQ_EN_PROMPT); written out here, not imported from the code.
VQA_SUFFIX = "\nPlease try to answer the question with short words or phrases if possible."
MCQ_EN = "Please select the correct answer from the options above."
# vlmeval/vlm/qwen2_vl/model.py, Qwen2VLChat: max_new_tokens=2048, top_k=1 (greedy).
REFERENCE_GENERATION = Generation(max_new_tokens=2048)

CHAT_FAMILIES = [QWEN2_VL, QWEN2_5_VL, QWEN3_VL]
# The first question of each task's built-in mini set.
VQA_VARIANTS = {
    "textvqa_qwen2vl": "What does the sign say?",
    "docvqa_qwen2vl": "What is the title of the document?",
    "chartqa_qwen2vl": "What is the value of the highest bar?",
}


@pytest.mark.parametrize("family", CHAT_FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("name", sorted(VQA_VARIANTS))
def test_vqa_variant_chat_prompt_is_vlmevalkits_vqa_prompt(name, family):
    run = prepare_task(name, builtin_root(), family.info, limit=1)
    (req,) = run.requests
    assert req.parts == (Image(run.docs[0].images[0]), Text(VQA_VARIANTS[name] + VQA_SUFFIX))
    assert (req.style, req.system, req.generation) == ("chat", None, REFERENCE_GENERATION)


@pytest.mark.parametrize("name", sorted(VQA_VARIANTS))
def test_vqa_variant_qwen_vl_gets_the_same_text_after_its_image(name):
    run = prepare_task(name, builtin_root(), QWEN_VL.info, limit=1)
    (req,) = run.requests
    key = run.docs[0].images[0].key
    assert req.style == "raw"
    assert render_raw(req.parts) == f"<img>{key}</img>{VQA_VARIANTS[name]}{VQA_SUFFIX}"


# -- AI2D as multiple choice -----------------------------------------------------------------
def test_ai2d_variant_reads_options_and_answer_letter_out_of_the_jsonl(tmp_path):
    root = fx.write_ai2d(tmp_path)
    docs = registry.get_task("ai2d_qwen2vl").load(root).docs
    assert [d.fields for d in docs] == [
        {"question": "Which is a producer?", "options": {"A": "fox", "B": "grass"},
         "answer": "B", "hint": None},
        {"question": "What stage is E?", "options": {"A": "egg", "B": "larva"},
         "answer": "B", "hint": None},
    ]  # fmt: skip


def test_ai2d_variant_prefers_vlmevalkits_tsv(tmp_path):
    fx.write_ai2d(tmp_path)  # present too: the TSV wins
    rows = [
        {
            "index": 7,
            "image": _b64(1),
            "question": "Which is a producer?",
            "A": "fox",
            "B": "grass",
            "C": "owl",
            "D": None,
            "answer": "B",
            "category": "foodChains",
        }
    ]
    _tsv(tmp_path / "ai2d" / "AI2D_TEST.tsv", rows)
    task = registry.get_task("ai2d_qwen2vl")
    (doc,) = task.load(tmp_path).docs
    assert (doc.id, doc.fields["options"], doc.fields["answer"]) == (
        "7",
        {"A": "fox", "B": "grass", "C": "owl"},
        "B",
    )
    (req,) = task.request(doc, QWEN2_VL.info).parts[1:]
    assert req == Text(
        f"Question: Which is a producer?\nOptions:\nA. fox\nB. grass\nC. owl\n{MCQ_EN}"
    )
    _tsv(tmp_path / "ai2d" / "AI2D_TEST.tsv", [{**rows[0], "answer": "D"}])
    with pytest.raises(DataError, match=r"AI2D_TEST\.tsv, item 7, field 'answer': answer 'D' is"):
        task.load(tmp_path)
    assert registry.get_task("ai2d").load(tmp_path).docs[0].id == "11"  # base: eval_mm file


@pytest.mark.parametrize("family", CHAT_FAMILIES, ids=lambda f: f.name)
def test_ai2d_variant_prompt_is_vlmevalkits_mcq_prompt(family, tmp_path):
    run = prepare_task("ai2d_qwen2vl", fx.write_ai2d(tmp_path), family.info)
    req = run.requests[0]
    text = f"Question: Which is a producer?\nOptions:\nA. fox\nB. grass\n{MCQ_EN}"
    assert req.parts == (Image(run.docs[0].images[0]), Text(text))
    assert (req.style, req.generation) == ("chat", REFERENCE_GENERATION)
    raw = prepare_task("ai2d_qwen2vl", tmp_path, QWEN_VL.info).requests[0]
    assert render_raw(raw.parts) == f"<img>images/0.png</img>{text}"


def test_ai2d_variant_hf_copy_answer_index_becomes_the_letter(tmp_path):
    fx.write_parquet(
        tmp_path / "ai2d" / "data" / "test-00000-of-00001.parquet",
        [{"question": "Which is a producer?", "options": ["fox", "grass", "owl"],
          "answer": "2", "image": fx.png_cell("0.png")}],
    )  # fmt: skip
    (doc,) = registry.get_task("ai2d_qwen2vl").load(tmp_path).docs
    assert doc.fields["options"] == {"A": "fox", "B": "grass", "C": "owl"}
    assert doc.fields["answer"] == "C"


def test_ai2d_variant_is_scored_by_the_letter_read_from_the_answer(tmp_path):
    # "grass" names option B by its text (can_infer_text); "The answer is A" names A, and
    # the reference of item 12 is B (larva).
    root = fx.write_ai2d(tmp_path)
    runner = fx.TableRunner({"11": "grass", "12": "The answer is A"}, family=QWEN2_VL)
    _, result, store = fx.run_task("ai2d_qwen2vl", root, tmp_path, runner)
    rows = fx.predictions(store, "ai2d_qwen2vl")
    assert (rows["11"]["answer"], rows["12"]["answer"]) == ("B", "A")
    assert result.metrics == {"acc": 50.0}


@pytest.mark.parametrize(
    ("line", "field", "why"),
    [
        ({"question": "Which is a producer?", "answer": "grass"}, "question",
         r"no 'A\. \.\.\.' option lines in the question$"),
        ({"question": "Which?\nA. fox\nB. grass", "answer": "owl"}, "answer",
         r"\['owl'\] is neither an option letter nor an option's text \(options A, B\)$"),
    ],
)  # fmt: skip
def test_ai2d_variant_bad_item_names_file_item_and_field(line, field, why, tmp_path):
    root = fx.write_ai2d(tmp_path)
    row = {"image": "images/0.png", "question_id": 5, **line}
    (root / "ai2d" / "test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=rf"test\.jsonl, item 5, field '{field}': {why}"):
        registry.get_task("ai2d_qwen2vl").load(root)
    assert registry.get_task("ai2d").load(root).docs[0].id == "5"  # the base task reads it


# -- ChartQA: VLMEvalKit's relaxed accuracy divides by the target ------------------------------
def test_chartqa_variant_headline_divides_by_the_target():
    doc = Document(id="1", images=(), fields={"answers": ["100"], "split": "human"})
    response = Response(id="1", text="105.2")  # 5.2% off the target, 4.9% off the prediction
    variant = registry.get_task("chartqa_qwen2vl").score(doc, response, QWEN2_VL.info)
    base = registry.get_task("chartqa").score(doc, response, QWEN2_VL.info)
    assert variant.scores == {"relaxed_acc": 0.0, "relaxed_acc_correct": 0.0}
    assert base.scores == {"relaxed_acc": 1.0, "relaxed_acc_correct": 0.0}


# -- the base tasks are unchanged ---------------------------------------------------------------
# Prompt hashes of the paper's tasks on main before the variants were added (commit e34d21d):
# a change here would make every saved run of these tasks answer again on resume.
PINNED = {
    "docvqa": ("6d9403f97e094db6", "8df98c9d4ef00751", "8df98c9d4ef00751"),
    "docvqa_test": ("d1bcdc748a08848f", "035aaba8d77ffd95", "035aaba8d77ffd95"),
    "chartqa": ("357c4a2dfe589962", "409dd00e69f0a50d", "409dd00e69f0a50d"),
    "textvqa": ("52830ec9d4e82d0d", "a183cc4fccdaed4f", "a183cc4fccdaed4f"),
    "ai2d": ("45cc0cdf10509cef", "3b8ec135cc6c162e", "3b8ec135cc6c162e"),
    "refcoco_val": ("6e5f3890a11a4f6f", "4802f69cb191e3e0", "492268facc006b43"),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_base_tasks_keep_their_prompt_hashes(name):
    task = registry.get_task(name)
    paper, qwen2, qwen25 = PINNED[name]
    assert task.prompt_hash(FAMILIES["qwen-vl"].info) == paper
    assert task.prompt_hash(FAMILIES["qwen-vl-chat"].info) == paper
    assert task.prompt_hash(FAMILIES["qwen2-vl"].info) == qwen2
    assert task.prompt_hash(FAMILIES["qwen2.5-vl"].info) == qwen25


def test_refcoco_qwen2_vl_prompt_is_the_reports_grounding_format():
    run = prepare_task("refcoco_val", builtin_root(), QWEN2_VL.info, limit=1)
    expression = run.docs[0].fields["expression"]
    assert run.requests[0].parts[1] == Text(
        f"Output the bounding box of <|object_ref_start|>{expression}<|object_ref_end|> "
        "in the image."
    )


def test_variants_are_in_the_report_group_not_in_the_paper_tables():
    groups = registry.groups()
    variants = {*VQA_VARIANTS, "ai2d_qwen2vl"}
    assert variants <= set(groups["qwen2vl-image"])
    assert not variants & set(groups["paper-table5"])


# -- end to end: the CLI, the tiny Qwen2-VL model, the built-in data ---------------------------
def test_cli_run_on_builtin_data_with_the_tiny_qwen2_vl(tmp_path):
    tasks = [*sorted(VQA_VARIANTS), "ai2d_qwen2vl"]
    # 24 new tokens instead of 2048 keep it quick on a CPU (test_all_tasks_tiny runs these
    # tasks with their own 2048).
    argv = ["run", "--model", "tiny-qwen2-vl", "--tasks", ",".join(tasks), "--data-dir",
            "builtin", "--limit", "2", "--gen-kwargs", "max_new_tokens=24",
            "--output-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *argv], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = tmp_path.iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert list(results["tasks"]) == tasks
    for name in tasks:
        entry = results["tasks"][name]
        assert entry["counts"] == {"items": 2, "errors": 0, "resumed": 0}
        assert set(registry.get_task(name).metrics) <= set(entry["metrics"])
        assert any("vlmeval/vlm/qwen2_vl/prompt.py" in n for n in entry["notes"]), entry
    rows = (run_dir / "ai2d_qwen2vl.predictions.jsonl").read_text().splitlines()
    assert {json.loads(r)["answer"] for r in rows} <= {"A", "B", "C", "D", None}
