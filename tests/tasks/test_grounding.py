"""RefCOCO family: refer-toolkit pickles read safely, one item per sentence, the paper's
prompt byte for byte, and each family's box format scored end to end with a fake runner."""

from __future__ import annotations

import json
import pickle

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import evaluate, prepare_task, score_item
from qwenvl_eval.model.families import QWEN2_5_VL, QWEN2_VL, QWEN3_VL, QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.prompts import render_raw
from qwenvl_eval.types import Response
from tests.fakes import FakeRunner
from tests.tasks import _vqa_fixtures as fx

# PROTOCOL.md section 2 (Qwen-VL eval_mm/evaluate_grounding.py).
PAPER_PROMPT = "<img>{image}</img><ref>{expression}</ref><box>"
SPLITS = {
    "refcoco_val": ("refcoco", "refs(unc).p", "val"),
    "refcoco_testA": ("refcoco", "refs(unc).p", "testA"),
    "refcoco_testB": ("refcoco", "refs(unc).p", "testB"),
    "refcoco+_val": ("refcoco+", "refs(unc).p", "val"),
    "refcoco+_testA": ("refcoco+", "refs(unc).p", "testA"),
    "refcoco+_testB": ("refcoco+", "refs(unc).p", "testB"),
    "refcocog_val": ("refcocog", "refs(umd).p", "val"),
    "refcocog_test": ("refcocog", "refs(umd).p", "test"),
}


@pytest.fixture()
def root(tmp_path):
    return fx.write_refer(tmp_path / "data")


def run_task(name, root, tmp_path, outputs, family=QWEN_VL, meta=None):
    run = prepare_task(name, root, family.info)
    store = PredictionStore(tmp_path / "run")

    class Runner(FakeRunner):
        def generate(self, requests):
            for r in requests:
                yield Response(id=r.id, text=outputs[r.id], meta=meta or {})

    (result,) = evaluate([run], Runner(family=family), store)
    return run, result, store


def test_one_item_per_sentence_in_file_order(root):
    docs = registry.get_task("refcoco_val").load(root).docs
    assert [d.id for d in docs] == ["0_0", "0_1", "3_4"]
    assert [d.fields["expression"] for d in docs] == ["the red bus", "left bus", "big café sign"]
    # COCO [x, y, w, h] -> x1y1x2y2; the size comes from the image record.
    assert docs[0].fields["bbox"] == [10.0, 20.0, 40.0, 60.0]
    assert docs[0].fields["image_size"] == [100, 80]
    assert docs[2].images[0].key == "train2014/COCO_train2014_000000000002.jpg"
    assert [d.id for d in registry.get_task("refcoco_testB").load(root).docs] == ["4_5", "4_6"]


def test_paper_prompt_byte_for_byte(root):
    run = prepare_task("refcoco", root, QWEN_VL.info)
    assert run.task.name == "refcoco_val"
    expected = PAPER_PROMPT.format(
        image="train2014/COCO_train2014_000000000001.jpg", expression="the red bus"
    )
    assert render_raw(run.requests[0].parts) == expected
    gen = run.requests[0].generation
    assert (gen.max_new_tokens, gen.min_new_tokens, gen.length_penalty) == (28, 10, 1.0)


def test_paper_scoring_end_to_end(root, tmp_path):
    outputs = {
        # /999 x (100, 80): (10.01, 20.02, 40.04, 60.06) vs (10, 20, 40, 60): IoU ~0.997.
        "0_0": "<ref>the red bus</ref><box>(100,250),(400,750)</box>",
        "0_1": "I cannot tell",  # no box: IoU 0, a parse failure
        # The whole 200x100 image vs (0, 0, 100, 50): IoU 0.25.
        "3_4": "<ref>big café sign</ref><box>(0,0),(999,999)</box>",
    }
    _, result, store = run_task("refcoco_val", root, tmp_path, outputs)
    assert result.metrics["acc@0.5"] == pytest.approx(100 / 3)
    saved = store.load("refcoco_val")
    assert saved["0_0"].score["iou"] == pytest.approx(0.997, abs=2e-3)
    assert saved["3_4"].score == pytest.approx({"acc@0.5": 0.0, "iou": 0.25}, abs=1e-6)
    assert saved["0_1"].extra.get("parse_failed") is True and saved["0_1"].answer is None
    assert result.metrics["miou"] == pytest.approx(100 * (saved["0_0"].score["iou"] + 0.25) / 3)
    assert result.metrics["parse_failures"] == 1
    assert saved["0_0"].answer == pytest.approx([10.01, 20.02, 40.04, 60.06], abs=0.01)


def test_output_is_not_stripped_before_parsing(root):
    # The paper's pattern needs "(a,b),(c,d)" with no space; surrounding whitespace is fine.
    task = registry.get_task("refcoco_val")
    doc = task.load(root).docs[0]
    good = task.score(doc, Response(id=doc.id, text="  (100,250),(400,750)\n"), QWEN_VL.info)
    spaced = task.score(doc, Response(id=doc.id, text="(100,250), (400,750)"), QWEN_VL.info)
    assert good.scores["acc@0.5"] == 1.0
    assert spaced.scores["acc@0.5"] == 0.0 and spaced.extra["parse_failed"]


@pytest.mark.parametrize(
    "family,text,meta",
    [
        (
            QWEN2_VL,
            "<|object_ref_start|>the red bus<|object_ref_end|>"
            "<|box_start|>(100,250),(400,750)<|box_end|>",
            {},
        ),
        # Pixels of a 112x84 resized input: x * 100/112, y * 80/84 -> about (10, 20, 40, 60).
        (
            QWEN2_5_VL,
            '```json\n[{"bbox_2d": [11, 21, 45, 63], "label": "the red bus"}]\n```',
            {"input_sizes": [[112, 84]]},
        ),
        (QWEN3_VL, '[{"bbox_2d": [100, 250, 400, 750], "label": "the red bus"}]', {}),
    ],
)
def test_each_chat_family_is_scored_in_its_own_box_format(root, tmp_path, family, text, meta):
    outputs = {"0_0": text, "0_1": text, "3_4": "nothing"}
    run, result, store = run_task("refcoco_val", root, tmp_path, outputs, family, meta)
    assert run.requests[0].style == "chat"
    saved = store.load("refcoco_val")
    assert saved["0_0"].score["acc@0.5"] == 1.0 and saved["0_0"].score["iou"] > 0.9
    assert result.metrics["parse_failures"] == 1


def test_chat_prompts_ask_for_each_familys_format(root):
    texts = {}
    for family in (QWEN2_VL, QWEN2_5_VL, QWEN3_VL):
        run = prepare_task("refcoco_val", root, family.info)
        texts[family.name] = run.requests[0].parts[-1].text
        assert run.requests[0].generation.max_new_tokens >= 64
    assert "<|object_ref_start|>the red bus<|object_ref_end|>" in texts["qwen2-vl"]
    assert "JSON" in texts["qwen2.5-vl"] and "JSON" in texts["qwen3-vl"]


def test_qwen2_5_vl_input_size_comes_from_the_response(root):
    task = registry.get_task("refcoco_val")
    doc = task.load(root).docs[0]
    text = '[{"bbox_2d": [11, 21, 45, 63]}]'
    right = task.score(
        doc, Response(id=doc.id, text=text, meta={"input_sizes": [[112, 84]]}), QWEN2_5_VL.info
    )
    # The same pixels read against another resize land elsewhere.
    other = task.score(
        doc, Response(id=doc.id, text=text, meta={"input_sizes": [[448, 336]]}), QWEN2_5_VL.info
    )
    assert right.scores["acc@0.5"] == 1.0 and other.scores["acc@0.5"] == 0.0


def test_runner_error_counts_as_zero(root, tmp_path):
    run = prepare_task("refcoco_val", root, QWEN_VL.info)
    item = score_item(run, run.requests[0], Response(id="0_0", error="oom"), QWEN_VL.info)
    assert item.score == {"acc@0.5": 0.0, "iou": 0.0} and item.error == "oom"


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_every_split_reads_its_file_and_split(tmp_path, name):
    subdir, refs_name, split = SPLITS[name]
    refs = fx.refs_list(val_split=split)
    root = fx.write_refer(tmp_path, subdir, refs_name, refs)
    docs = registry.get_task(name).load(root).docs
    # refs 0 and 3 are put in this split; the fixture's ref 2 is testA, ref 4 testB.
    expected = {
        "testA": ["0_0", "0_1", "2_3", "3_4"],
        "testB": ["0_0", "0_1", "3_4", "4_5", "4_6"],
    }.get(split, ["0_0", "0_1", "3_4"])
    assert [d.id for d in docs] == expected


def test_aliases_and_groups():
    assert registry.resolve(["refcoco", "refcoco+", "refcocog"]) == [
        "refcoco_val",
        "refcoco+_val",
        "refcocog_val",
    ]
    assert registry.resolve(["paper-table6"]) == list(SPLITS)
    assert registry.resolve(["refcoco-all"]) == ["refcoco_val", "refcoco_testA", "refcoco_testB"]
    assert registry.resolve(["refcoco+-all"]) == [
        "refcoco+_val",
        "refcoco+_testA",
        "refcoco+_testB",
    ]
    assert registry.resolve(["refcocog-all"]) == ["refcocog_val", "refcocog_test"]


# -- bad inputs -----------------------------------------------------------------------------
def test_malicious_refs_pickle_is_refused(tmp_path):
    root = fx.write_refer(tmp_path)
    path = root / "refcoco" / "refs(unc).p"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path.write_bytes(pickle.dumps([Evil()], protocol=2))
    with pytest.raises(DataError, match="refused to unpickle") as err:
        registry.get_task("refcoco_testA").load(root)
    assert str(path) in str(err.value)


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match=r"refs\(umd\)\.p: file not found"):
        registry.get_task("refcocog").load(tmp_path)
    root = fx.write_refer(tmp_path)
    (root / "refcoco" / "instances.json").unlink()
    with pytest.raises(DataError, match="instances.json: file not found"):
        registry.get_task("refcoco_testB").load(root)


def test_sentence_without_text_names_ref_and_field(tmp_path):
    refs = fx.refs_list()
    del refs[3]["sentences"][0]["sent"]
    root = fx.write_refer(tmp_path, refs=refs)
    with pytest.raises(DataError) as err:
        registry.get_task("refcoco_val").load(root)
    assert err.value.item == "ref 3 sentence #0" and err.value.field == "sent"


def test_bad_bbox_names_the_annotation(tmp_path):
    root = fx.write_refer(tmp_path)
    path = root / "refcoco" / "instances.json"
    blob = json.loads(path.read_text())
    blob["annotations"][1]["bbox"] = [1, 2, 3]
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError) as err:
        registry.get_task("refcoco_val").load(root)
    assert err.value.item == "annotation 11" and err.value.field == "bbox"


def test_ref_naming_an_unknown_annotation(tmp_path):
    refs = fx.refs_list()
    refs[0]["ann_id"] = 999
    root = fx.write_refer(tmp_path, refs=refs)
    with pytest.raises(DataError) as err:
        registry.get_task("refcoco_val").load(root)
    assert err.value.item == "ref 0" and err.value.field == "ann_id"


def test_wrong_refs_file_for_the_split(tmp_path):
    root = fx.write_refer(tmp_path, "refcocog", "refs(umd).p")  # has no "test" refs
    with pytest.raises(DataError, match="no sentences in split 'test'"):
        registry.get_task("refcocog_test").load(root)


def test_image_file_name_escaping_the_root(tmp_path):
    root = fx.write_refer(tmp_path)
    path = root / "refcoco" / "instances.json"
    blob = json.loads(path.read_text())
    blob["images"][0]["file_name"] = "../../../etc/passwd"
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError, match="leaves the data root") as err:
        registry.get_task("refcoco_val").load(root)
    assert err.value.field == "file_name"


def test_shared_coco_folder_is_used_when_the_task_has_no_images(tmp_path):
    root = fx.write_refer(tmp_path)
    (root / "refcoco" / "train2014").rename(root / "coco_train2014")
    (root / "coco").mkdir()
    (root / "coco_train2014").rename(root / "coco" / "train2014")
    docs = registry.get_task("refcoco_val").load(root).docs
    assert (
        docs[0].images[0].path
        == (root / "coco" / "train2014" / "COCO_train2014_000000000001.jpg").resolve()
    )
    assert docs[0].images[0].key == "train2014/COCO_train2014_000000000001.jpg"


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_builtin_mini_sets_load(name):
    from qwenvl_eval.tasks.data.locate import builtin_root

    docs = registry.get_task(name).load(builtin_root()).docs
    assert len(docs) >= 32 and len({d.id for d in docs}) == len(docs)
    for d in docs:
        w, h = d.fields["image_size"]
        x1, y1, x2, y2 = d.fields["bbox"]
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert d.images[0].size() == (w, h)


def test_qwen2_5_vl_without_input_size_is_a_recorded_parse_failure(root):
    task = registry.get_task("refcoco_val")
    doc = task.load(root).docs[0]
    scored = task.score(
        doc, Response(id=doc.id, text='[{"bbox_2d": [1, 2, 3, 4]}]'), QWEN2_5_VL.info
    )
    assert scored.scores == {"acc@0.5": 0.0, "iou": 0.0}
    assert scored.extra["parse_failed"] and "input_sizes" in scored.extra["missing"]


def test_lmms_lab_parquet_copy(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    fx.jpg(tmp_path / "img.jpg", (100, 80))
    image = {"bytes": (tmp_path / "img.jpg").read_bytes(), "path": "COCO_train2014_1.jpg"}
    folder = tmp_path / "data" / "refcoco+" / "data"
    folder.mkdir(parents=True)
    rows = [
        {
            "question_id": "7",
            "image": image,
            "question": "",
            "bbox": [10, 20, 30, 40],
            "answer": ["left man", "man in red"],
            "file_name": "COCO_train2014_1.jpg",
        }
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "testB-00000-of-00001.parquet")
    docs = registry.get_task("refcoco+_testB").load(tmp_path / "data").docs
    assert [d.id for d in docs] == ["7_0", "7_1"]
    assert docs[1].fields["expression"] == "man in red"
    assert docs[0].fields["bbox"] == [10.0, 20.0, 40.0, 60.0]
    assert docs[0].fields["image_size"] == [100, 80]
