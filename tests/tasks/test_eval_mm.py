"""The Qwen-VL eval_mm converted files (the data the paper's numbers came from), read from the
`data/` tree its EVALUATION.md builds, under `--data-layout eval_mm` and by detection."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError, UserError
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.prompts import render_raw
from tests.fakes import FakeRunner
from tests.tasks import _evalmm_fixtures as fx

# task -> (ids in file order, the format read)
EXPECTED = {
    "vqav2": (["420", "421"], "eval_mm jsonl + annotations"),
    "vqav2_testdev": (["10010"], "eval_mm jsonl"),
    "okvqa": (["2971475"], "eval_mm jsonl + annotations"),
    "textvqa": (["34602"], "eval_mm jsonl + annotations"),
    "vizwiz": (["VizWiz_val_00000000.jpg"], "eval_mm jsonl + annotations"),
    "vizwiz_test": (["VizWiz_test_00000000.jpg", "VizWiz_test_00000001.jpg"], "eval_mm jsonl"),
    "gqa": (["201307251"], "eval_mm jsonl"),
    "refcoco_val": (["1", "2"], "eval_mm jsonl"),
    "nocaps": (["0"], "eval_mm json"),
    "flickr30k": (["1000092795"], "eval_mm json"),
    "docvqa": (["57344"], "eval_mm jsonl"),
    "docvqa_test": (["1"], "eval_mm jsonl"),
    "chartqa": (["human-0", "augmented-0"], "eval_mm jsonl"),
    "ai2d": (["0.png-0"], "eval_mm jsonl"),
    "ocrvqa": (["000100039X_0"], "eval_mm jsonl"),
    "scienceqa_img": (["5"], "problems.json (split per problem)"),
    "scienceqa": (["5", "4"], "problems.json (split per problem)"),
}


@pytest.mark.parametrize("layout", ["eval_mm", "auto"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_paper_task_reads_the_eval_mm_tree(name, layout, tmp_path):
    root = fx.write_tree(tmp_path)
    run = prepare_task(name, root, QWEN_VL.info, data_layout=layout)
    ids, fmt = EXPECTED[name]
    assert [d.id for d in run.docs] == ids
    assert run.data["format"] == fmt
    assert run.data["layout"] == "eval_mm"
    for doc in run.docs:  # every image resolved inside the data root
        for im in doc.images:
            assert im.path is not None and im.path.is_file()
            assert im.path.is_relative_to(root.resolve())


def test_vqa_answers_come_from_the_annotations_file_eval_mm_scores_with(tmp_path):
    root = fx.write_tree(tmp_path)
    docs = registry.get_task("vqav2").load(root).docs
    assert docs[1].fields["answers"] == ["2"] * 3 + ["3"] * 7  # not the line's single "answer"
    # `data/coco/...` is relative to the folder holding data/: the data root here
    assert docs[0].images[0].path == root.resolve() / "coco/val2014/COCO_val2014_000000000042.jpg"
    run = prepare_task("vqav2", root, QWEN_VL.info)
    assert render_raw(run.requests[0].parts) == (
        "<img>coco/val2014/COCO_val2014_000000000042.jpg</img>What color is the bus? Answer:"
    )


def test_eval_mm_line_without_an_annotation_is_named(tmp_path):
    root = fx.write_tree(tmp_path)
    ann = root / "vqav2" / "v2_mscoco_val2014_annotations.json"
    blob = json.loads(ann.read_text())
    blob["annotations"] = blob["annotations"][:1]
    ann.write_text(json.dumps(blob))
    with pytest.raises(DataError) as err:
        registry.get_task("vqav2").load(root)
    assert err.value.item == "421" and err.value.field == "question_id"
    assert err.value.path == str(ann)


def test_eval_mm_jsonl_alone_needs_the_answers(tmp_path):
    root = fx.write_tree(tmp_path)
    (root / "textvqa" / "textvqa_val_annotations.json").unlink()
    with pytest.raises(DataError, match="10 human answers on the line") as err:
        registry.get_task("textvqa").load(root)
    assert err.value.item == "34602" and err.value.field == "answers"


def _run(name, root, tmp_path, answer):
    run = prepare_task(name, root, QWEN_VL.info, data_layout="eval_mm")
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(answer, family=QWEN_VL), store)
    return result, store


def test_vizwiz_test_submission_names_the_bare_image_file(tmp_path):
    root = fx.write_tree(tmp_path)
    result, store = _run("vizwiz_test", root, tmp_path, lambda r: " soup ")
    rows = json.loads((store.run_dir / result.submission_file).read_text())
    assert rows == [
        {"image": "VizWiz_test_00000000.jpg", "answer": "soup"},
        {"image": "VizWiz_test_00000001.jpg", "answer": "soup"},
    ]
    assert result.data["format"] == "eval_mm jsonl"
    assert result.data["files"] == [
        {
            "path": "vizwiz/vizwiz_test.jsonl",
            "bytes": (root / "vizwiz/vizwiz_test.jsonl").stat().st_size,
        }
    ]


def test_vqav2_scores_from_the_eval_mm_files(tmp_path):
    root = fx.write_tree(tmp_path)
    outputs = {"420": "red", "421": "2"}  # 1.0, and 3 of 10 humans said "2": 0.9
    result, _ = _run("vqav2", root, tmp_path, lambda r: outputs[r.id])
    assert result.metrics["vqa_acc"] == pytest.approx(100 * (1.0 + 0.9) / 2)


def test_refcoco_eval_mm_boxes_are_corner_pixels(tmp_path):
    root = fx.write_tree(tmp_path)
    docs = registry.get_task("refcoco_val").load(root).docs
    assert docs[0].fields == {
        "expression": "the red bus",
        "bbox": [10.0, 20.0, 40.0, 60.0],
        "image_size": [100.0, 80.0],
    }
    assert docs[1].fields["bbox"] == [0.5, 1.0, 30.0, 41.5]


def test_docvqa_test_submission_from_eval_mm(tmp_path):
    root = fx.write_tree(tmp_path)
    result, store = _run("docvqa_test", root, tmp_path, lambda r: "ACME")
    rows = json.loads((store.run_dir / result.submission_file).read_text())
    assert rows == [{"questionId": 1, "answer": "ACME"}]


def test_scienceqa_without_pid_splits_uses_each_problems_split(tmp_path):
    root = fx.write_tree(tmp_path)
    docs = registry.get_task("scienceqa").load(root).docs
    assert [(d.id, d.fields["has_image"]) for d in docs] == [("5", True), ("4", False)]


def test_layout_official_on_an_eval_mm_tree_names_the_official_files(tmp_path):
    root = fx.write_tree(tmp_path)
    (row,) = check_tasks(["vqav2"], str(root), layout="official")
    assert row.status == "missing" and row.failed
    assert str(root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json") in row.detail
    with pytest.raises(UserError, match="no official layout is known"):
        prepare_task("ai2d", root, QWEN_VL.info, data_layout="official")
    # An unknown layout is refused with the other flags (RunConfig.validate); a task handed
    # one anyway knows no such layout.
    with pytest.raises(UserError, match="no lmms layout is known"):
        prepare_task("ai2d", root, QWEN_VL.info, data_layout="lmms")


def test_data_check_reports_the_eval_mm_format_and_checksums(tmp_path):
    import hashlib

    root = fx.write_tree(tmp_path)
    rows = {r.task: r for r in check_tasks(sorted(EXPECTED), str(root), layout="eval_mm")}
    for name, (ids, fmt) in EXPECTED.items():
        # OCR-VQA has no fixed official size (it depends on which images still download)
        want = "ok" if rows[name].expected is None else "partial"
        assert rows[name].status == want and rows[name].items == len(ids), rows[name]
        assert rows[name].format == fmt
    files = {f["path"]: f for f in rows["vqav2"].files}
    assert set(files) == {"vqav2/vqav2_val.jsonl", "vqav2/v2_mscoco_val2014_annotations.json"}
    blob = (root / "vqav2" / "vqav2_val.jsonl").read_bytes()
    assert files["vqav2/vqav2_val.jsonl"]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert files["vqav2/vqav2_val.jsonl"]["bytes"] == len(blob)


def test_run_data_layout_flag_is_checked_before_the_model_loads(tmp_path, capsys):
    from tests.test_cli import assert_one_line_error, run_cli

    root = str(fx.write_tree(tmp_path))
    argv = ["run", "--model", "tiny-qwen2-vl", "--tasks", "ai2d", "--data-dir", root]
    code, _, err = run_cli([*argv, "--data-layout", "official"], capsys)
    assert_one_line_error(code, err, "no official layout is known", "eval_mm, hf")
    code, _, err = run_cli([*argv, "--data-layout", "lmms"], capsys)
    assert_one_line_error(code, err, "--data-layout: expected one of auto, official, eval_mm, hf")


def test_flickr_in_the_folder_evaluation_md_creates(tmp_path):
    # EVALUATION.md: `mkdir -p data/flickr` (the script itself reads data/flickr30k/).
    import shutil

    root = fx.write_tree(tmp_path)
    shutil.move(root / "flickr30k", root / "flickr")
    run = prepare_task("flickr30k", root, QWEN_VL.info)
    assert [d.id for d in run.docs] == ["1000092795"]
    assert run.docs[0].images[0].path == root / "flickr/flickr30k-images/1000092795.jpg"
    assert run.data["files"][0]["path"] == "flickr/flickr30k_karpathy_test.json"
