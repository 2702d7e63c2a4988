"""Hostile and careless data (issue 9, reader side): paths leaving the data root through
links, bad ground truth, wrong answer counts, duplicate ids, pathological JSON, empty splits.
Each is refused with one line naming the file, item and field."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError, UserError
from qwenvl_eval.evaluator import prepare_task
from qwenvl_eval.model.families import QWEN_VL
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.data.locate import resolve_data_root
from tests.tasks import _evalmm_fixtures as evalmm
from tests.tasks import _vqa_fixtures as fx
from tests.test_cli import assert_one_line_error, run_cli


def _load(name, root):
    return registry.get_task(name).load(root).docs


# -- paths and links ------------------------------------------------------------------------
def _refer_with_shared_coco(tmp_path):
    """RefCOCO whose images live in `<root>/coco/train2014` (not in the task folder)."""
    root = fx.write_refer(tmp_path / "data")
    shutil.move(root / "refcoco" / "train2014", root / "coco" / "train2014")
    return root


def test_refer_images_in_a_shared_coco_folder_load(tmp_path):
    root = _refer_with_shared_coco(tmp_path)
    docs = _load("refcoco_val", root)
    assert docs[0].images[0].path == root / "coco/train2014/COCO_train2014_000000000001.jpg"


def test_coco_link_leaving_the_root_plus_dotdot_file_name_is_refused(tmp_path):
    # The fuzz case: <root>/coco -> a folder outside, and a file_name climbing out with `..`.
    root = _refer_with_shared_coco(tmp_path)
    outside = tmp_path / "outside"
    shutil.move(root / "coco", outside)
    os.symlink(outside, root / "coco")
    (outside / "secret.txt").write_text("not an image")
    with pytest.raises(DataError, match="leaves the data root") as err:
        _load("refcoco_val", root)
    assert err.value.field == "file_name" and err.value.item == "ref 0"
    inst = root / "refcoco" / "instances.json"
    assert err.value.path == str(inst)
    blob = json.loads(inst.read_text())
    blob["images"][0]["file_name"] = "../../../etc/passwd"
    inst.write_text(json.dumps(blob))
    with pytest.raises(DataError, match="leaves the data root") as err:
        _load("refcoco_val", root)
    assert err.value.field == "file_name"


def test_dotdot_out_of_the_root_is_refused_even_without_links(tmp_path):
    root = fx.write_refer(tmp_path / "data")
    inst = root / "refcoco" / "instances.json"
    blob = json.loads(inst.read_text())
    blob["images"][0]["file_name"] = "../../../outside.jpg"
    inst.write_text(json.dumps(blob))
    fx.jpg(tmp_path / "outside.jpg")
    with pytest.raises(DataError, match="leaves the data root"):
        _load("refcoco_val", root)


def test_symlinked_image_folder_inside_the_root_is_accepted(tmp_path):
    # InternVL's layout: vqav2/val2014 -> ../coco/val2014
    root = fx.write_vqav2(tmp_path / "data")
    (root / "coco").mkdir()
    shutil.move(root / "vqav2" / "val2014", root / "coco" / "val2014")
    os.symlink("../coco/val2014", root / "vqav2" / "val2014")
    docs = _load("vqav2", root)
    assert docs[0].images[0].key == "val2014/COCO_val2014_000000000042.jpg"
    assert docs[0].images[0].path == root / "coco/val2014/COCO_val2014_000000000042.jpg"


def test_image_file_linked_out_of_the_root_is_refused(tmp_path):
    root = fx.write_vqav2(tmp_path / "data")
    image = root / "vqav2" / "val2014" / "COCO_val2014_000000000042.jpg"
    shutil.move(image, tmp_path / "elsewhere.jpg")
    os.symlink(tmp_path / "elsewhere.jpg", image)
    with pytest.raises(DataError, match="leaves the data root") as err:
        _load("vqav2", root)
    assert err.value.item == "420" and err.value.field == "image_id"


def test_nul_byte_in_an_image_path(tmp_path):
    root = evalmm.write_tree(tmp_path)
    path = root / "gqa" / "testdev_balanced.jsonl"
    row = json.loads(path.read_text())
    row["image"] = "data/gqa/images/n1\u0000.jpg"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="NUL byte") as err:
        _load("gqa", root)
    assert (err.value.item, err.value.field) == ("201307251", "image")


def test_nul_byte_in_the_data_dir():
    with pytest.raises(UserError, match="NUL byte"):
        resolve_data_root("/tmp/a\x00b")


# -- ground truth ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bbox, problem",
    [
        ("[NaN, 20, 30, 40]", "non-finite box"),
        ("[10, 20, Infinity, 40]", "non-finite box"),
        ("[10, 20, 0, 40]", "zero-area box"),
        ("[10, 20, -5, 40]", "inverted box"),
    ],
)
def test_bad_ground_truth_boxes_in_instances_are_refused(tmp_path, bbox, problem):
    root = fx.write_refer(tmp_path)
    inst = root / "refcoco" / "instances.json"
    blob = json.loads(inst.read_text())
    blob["annotations"][0]["bbox"] = "BBOX"
    inst.write_text(json.dumps(blob).replace('"BBOX"', bbox))  # json allows NaN tokens
    with pytest.raises(DataError, match=problem) as err:
        _load("refcoco_val", root)
    assert (err.value.item, err.value.field) == ("annotation 10", "bbox")


def test_nan_image_size_is_refused(tmp_path):
    root = fx.write_refer(tmp_path)
    inst = root / "refcoco" / "instances.json"
    blob = json.loads(inst.read_text())
    blob["images"][0]["width"] = "W"
    inst.write_text(json.dumps(blob).replace('"W"', "NaN"))
    with pytest.raises(DataError, match="finite number > 0") as err:
        _load("refcoco_val", root)
    assert (err.value.item, err.value.field) == ("image 1", "width")


@pytest.mark.parametrize(
    "edit, field, problem",
    [
        ({"bbox": [40, 20, 10, 60]}, "bbox", "inverted box"),
        ({"bbox": [10, 20, 10, 60]}, "bbox", "zero-area box"),
        ({"height": float("nan")}, "height", "finite number > 0"),
        ({"width": 0}, "width", "finite number > 0"),
    ],
)
def test_bad_eval_mm_grounding_lines_are_refused(tmp_path, edit, field, problem):
    root = evalmm.write_tree(tmp_path)
    path = root / "refcoco" / "refcoco_val.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1].update(edit)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=problem) as err:
        _load("refcoco_val", root)
    assert (err.value.item, err.value.field) == ("line 2", field)


# -- VQA answers and ids --------------------------------------------------------------------
@pytest.mark.parametrize("count", [3, 25])
def test_vqa_items_without_exactly_ten_answers_are_refused(tmp_path, count):
    root = fx.write_vqav2(tmp_path)
    path = root / "vqav2" / "v2_mscoco_val2014_annotations.json"
    blob = json.loads(path.read_text())
    blob["annotations"][1]["answers"] = [{"answer": "2"}] * count
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError, match=f"expected 10 human answers, got {count}") as err:
        _load("vqav2", root)
    assert (err.value.item, err.value.field) == ("421", "answers")


def test_duplicate_question_id_in_annotations_is_refused(tmp_path):
    root = fx.write_vqav2(tmp_path)
    path = root / "vqav2" / "v2_mscoco_val2014_annotations.json"
    blob = json.loads(path.read_text())
    blob["annotations"].append(dict(blob["annotations"][0]))
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError, match="duplicate question id") as err:
        _load("vqav2", root)
    assert (err.value.item, err.value.field) == ("420", "question_id")


def test_duplicate_question_id_in_eval_mm_annotations_is_refused(tmp_path):
    root = evalmm.write_tree(tmp_path)
    path = root / "okvqa" / "mscoco_val2014_annotations.json"
    blob = json.loads(path.read_text())
    blob["annotations"] *= 2
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError, match="duplicate question id") as err:
        _load("okvqa", root)
    assert err.value.item == "2971475" and err.value.path == str(path)


def test_duplicate_ids_in_docvqa_are_refused(tmp_path):
    from tests.tasks import _docs_fixtures as docs_fx

    root = docs_fx.write_docvqa(tmp_path)
    path = root / "docvqa" / "val" / "val_v1.0.json"
    blob = json.loads(path.read_text())
    blob["data"][1]["questionId"] = blob["data"][0]["questionId"]
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError, match="duplicate question id") as err:
        _load("docvqa", root)
    assert err.value.item == "57344"


# -- pathological JSON: one line, no traceback ----------------------------------------------
def _write_questions(root, text):
    path = root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"questions": [{"question_id": ' + "9" * 5000 + "}]}", "more than 4300 digits"),
    ],
)
def test_pathological_json_is_one_line_in_the_cli(tmp_path, capsys, text, needle):
    root = fx.write_vqav2(tmp_path / "data")
    path = _write_questions(root, text)
    code, _, err = run_cli(
        ["run", "--model", "tiny-qwen2-vl", "--tasks", "vqav2", "--data-dir", str(root)], capsys
    )
    assert_one_line_error(code, err, str(path), needle)


def test_a_long_but_parsable_question_id_is_refused(tmp_path):
    root = fx.write_vqav2(tmp_path)
    path = root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"
    blob = json.loads(path.read_text())
    blob["questions"][0]["question_id"] = "QID"
    path.write_text(json.dumps(blob).replace('"QID"', "9" * 4000))
    with pytest.raises(DataError, match="out of range") as err:
        _load("vqav2", root)
    assert (err.value.item, err.value.field) == ("#0", "question_id")


# -- an empty split is an error -------------------------------------------------------------
def test_an_empty_split_is_an_error(tmp_path, capsys):
    root = evalmm.write_tree(tmp_path)
    (root / "ocrvqa" / "ocrvqa_test.jsonl").write_text("")
    with pytest.raises(DataError, match="no items in this split") as err:
        prepare_task("ocrvqa", root, QWEN_VL.info)
    assert err.value.path == str(root / "ocrvqa" / "ocrvqa_test.jsonl")
    (row,) = check_tasks(["ocrvqa"], str(root))
    assert row.status == "error" and "no items" in row.detail
    code, out, _ = run_cli(["data", "check", "--tasks", "ocrvqa", "--data-dir", str(root)], capsys)
    assert code == 1 and "error" in out
