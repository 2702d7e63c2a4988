"""eval_mm's files read as the eval_mm scripts read them: the VQA annotations file beside a
jsonl wins over the line's answer, GQA and ChartQA take the answer as a string or a list of
any length (best of the list, as eval_mm's exact-match and relaxed scorers do), ScienceQA's
`scienceqa_test_img.jsonl` is read, and the parquet VizWiz test submission names the image
file with its extension."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.check import check_tasks
from tests.fakes import FakeRunner
from tests.tasks import _docs_fixtures as dfx
from tests.tasks import _evalmm_fixtures as fx


def _rewrite_jsonl(path, change):
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(change(r)) + "\n" for r in rows))


def _score(name, root, tmp_path, answers):
    run = prepare_task(name, root, QWEN_VL.info, data_layout="eval_mm")
    store = PredictionStore(tmp_path / f"run-{name}")
    (result,) = evaluate([run], FakeRunner(lambda r: answers[r.id], family=QWEN_VL), store)
    return result, store.load(name)


# -- VQA: the annotations file wins, the line's answers are only a fallback --------------------


@pytest.mark.parametrize(
    "task,jsonl,qid,annotated",
    [
        ("textvqa", "textvqa/textvqa_val.jsonl", "34602", ["nokia"] * 8 + ["x"] * 2),
        (
            "vizwiz",
            "vizwiz/vizwiz_val.jsonl",
            "VizWiz_val_00000000.jpg",
            ["soup"] * 9 + ["unanswerable"],
        ),
    ],
)
def test_the_annotations_file_wins_over_three_answers_on_the_line(
    task, jsonl, qid, annotated, tmp_path
):
    root = fx.write_tree(tmp_path)
    _rewrite_jsonl(root / jsonl, lambda r: r | {"answer": ["a", "b", "c"]})
    (doc,) = registry.get_task(task).load(root).docs
    assert doc.id == qid and doc.fields["answers"] == annotated


def test_the_line_is_the_fallback_for_a_question_the_annotations_lack(tmp_path):
    root = fx.write_tree(tmp_path)
    ann = root / "vqav2" / "v2_mscoco_val2014_annotations.json"
    blob = json.loads(ann.read_text())
    blob["annotations"] = blob["annotations"][:1]  # 421 is not annotated
    ann.write_text(json.dumps(blob))
    ten = ["4"] * 10
    _rewrite_jsonl(root / "vqav2/vqav2_val.jsonl", lambda r: r | {"answer": ten})
    docs = registry.get_task("vqav2").load(root).docs
    assert docs[0].fields["answers"] == ["red"] * 10  # from the file, not the line
    assert docs[1].fields["answers"] == ten
    # Neither the file nor 10 answers on the line: named, not scored wrongly.
    _rewrite_jsonl(root / "vqav2/vqav2_val.jsonl", lambda r: r | {"answer": ["4"] * 3})
    with pytest.raises(DataError, match="expected 10 human answers, got 3") as err:
        registry.get_task("vqav2").load(root)
    assert err.value.item == "421"


# -- GQA and ChartQA: a string or a list of any length ----------------------------------------


@pytest.mark.parametrize(
    "answer,output,expected",
    [
        (["red", "crimson"], "Crimson.", 1.0),  # best of the list, after GQA's post-processing
        (["red", "crimson"], "blue", 0.0),
        (["red"], "red", 1.0),
        ("red", "red", 1.0),
    ],
)
def test_gqa_takes_eval_mm_answers_as_a_string_or_a_list(answer, output, expected, tmp_path):
    root = fx.write_tree(tmp_path)
    _rewrite_jsonl(root / "gqa/testdev_balanced.jsonl", lambda r: r | {"answer": answer})
    result, saved = _score("gqa", root, tmp_path, {"201307251": output})
    assert saved["201307251"].score["acc"] == expected
    assert result.metrics["acc"] == 100 * expected


@pytest.mark.parametrize(
    "task,jsonl", [("gqa", "gqa/testdev_balanced.jsonl"), ("chartqa", "chartqa/test_human.jsonl")]
)
def test_an_empty_answer_list_is_refused_by_name(task, jsonl, tmp_path):
    # eval_mm's max() over an empty list would crash its script: nothing to score against.
    root = fx.write_tree(tmp_path)
    _rewrite_jsonl(root / jsonl, lambda r: r | {"answer": []})
    with pytest.raises(DataError) as err:
        registry.get_task(task).load(root)
    assert err.value.field == "answer" and jsonl.split("/")[1] in str(err.value)


@pytest.mark.parametrize(
    "output,expected",
    [
        ("twelve", 1.0),  # the second answer of the list
        ("12.5", 1.0),  # within 5% of 12 (eval_mm divides by the prediction: 0.5/12.5)
        ("13", 0.0),  # 1/13 > 5%
        ("Twelve ", 1.0),
    ],
)
def test_chartqa_scores_a_multi_answer_list_as_eval_mm_does(output, expected, tmp_path):
    root = fx.write_tree(tmp_path)
    _rewrite_jsonl(root / "chartqa/test_human.jsonl", lambda r: r | {"answer": ["12", "twelve"]})
    answers = {"human-0": output, "augmented-0": "nothing"}
    _, saved = _score("chartqa", root, tmp_path, answers)
    assert saved["human-0"].score["relaxed_acc"] == expected


# -- ScienceQA: eval_mm's scienceqa_test_img.jsonl ---------------------------------------------


def _sqa_jsonl(root):
    path = root / "scienceqa" / "scienceqa_test_img.jsonl"
    line = {
        "image": "data/scienceqa/images/test/5/image.png",
        "question": "Which is softer?",
        "choices": ["rock", "pillow", "nail"],
        "answer": 1,
        "hint": "",
    }
    path.write_text(json.dumps(line) + "\n")
    return path


def test_scienceqa_img_reads_eval_mms_jsonl_with_problems_json_beside_it(tmp_path):
    root = fx.write_tree(tmp_path)
    _sqa_jsonl(root)
    run = prepare_task("scienceqa_img", root, QWEN_VL.info, data_layout="eval_mm")
    (doc,) = run.docs
    assert run.data["format"] == "eval_mm jsonl + problems.json"
    # The line's question and choices (what eval_mm prompts with), problems.json's categories.
    assert doc.id == "5" and doc.fields["choices"] == ["rock", "pillow", "nail"]
    assert doc.fields["answer"] == 1 and doc.fields["subject"] == "natural science"
    assert doc.fields["options"] == "A. rock\nB. pillow\nC. nail"
    assert doc.images[0].path == root.resolve() / "scienceqa/images/test/5/image.png"


def test_data_check_names_the_scienceqa_jsonl_when_it_is_alone(tmp_path):
    root = fx.write_tree(tmp_path)
    _sqa_jsonl(root)
    (root / "scienceqa" / "problems.json").unlink()
    (row,) = check_tasks(["scienceqa_img"], str(root))
    assert row.format == "eval_mm jsonl" and row.items == 1, row.detail
    assert [f["path"] for f in row.files] == ["scienceqa/scienceqa_test_img.jsonl"]
    (root / "scienceqa" / "scienceqa_test_img.jsonl").unlink()
    (row,) = check_tasks(["scienceqa_img"], str(root))
    assert row.status == "missing"
    assert "scienceqa_test_img.jsonl" in row.detail


# -- VizWiz test from an HF copy: the submission names the file with its extension ----------


@pytest.mark.parametrize("cell_name", ["VizWiz_test_00000000.jpg", None])
def test_parquet_vizwiz_test_submission_names_the_image_file(cell_name, tmp_path):
    cell = dfx.png_cell(cell_name or "x")
    if cell_name is None:
        cell.pop("path")
    rows = [{"question_id": "VizWiz_test_00000000", "question": "What?", "image": cell}]
    dfx.write_parquet(tmp_path / "vizwiz/data/test-00000-of-00001.parquet", rows)
    run = prepare_task("vizwiz_test", tmp_path, QWEN_VL.info)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(lambda r: " soup ", family=QWEN_VL), store)
    rows = json.loads((store.run_dir / result.submission_file).read_text())
    assert rows == [{"image": "VizWiz_test_00000000.jpg", "answer": "soup"}]
