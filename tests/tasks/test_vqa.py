"""VQAv2, OK-VQA, VizWiz, TextVQA and GQA: loading the official formats, the paper's prompt
byte for byte, and load -> requests -> score -> aggregate with a fake runner."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN2_5_VL, QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.prompts import render_raw
from qwenvl_eval.types import Image, Text
from tests.fakes import FakeRunner
from tests.tasks import _vqa_fixtures as fx

# PROTOCOL.md section 2 (from Qwen-VL eval_mm/evaluate_vqa.py): the VQA prompt and settings.
PAPER_VQA_PROMPT = "<img>{image}</img>{question} Answer:"


def answers_by_id(table: dict[str, str]):
    return lambda request: table[request.id]


def run_task(name, root, tmp_path, answer, family=QWEN_VL, **kw):
    run = prepare_task(name, root, family.info, **kw)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(answer, family=family), store)
    return run, result, store


# -- VQAv2 ----------------------------------------------------------------------------------
def test_vqav2_loads_official_files(tmp_path):
    root = fx.write_vqav2(tmp_path)
    docs = registry.get_task("vqav2").load(root).docs
    assert [d.id for d in docs] == ["420", "421", "5000"]  # the questions file's order
    assert docs[1].fields["answers"] == ["2"] * 3 + ["3"] * 7
    assert docs[1].fields["question_id"] == 421
    assert docs[0].images[0].key == "val2014/COCO_val2014_000000000042.jpg"
    assert docs[0].images[0].path == (root / "vqav2" / docs[0].images[0].key).resolve()


def test_vqav2_paper_prompt_byte_for_byte(tmp_path):
    root = fx.write_vqav2(tmp_path)
    run = prepare_task("vqav2", root, QWEN_VL.info)
    expected = PAPER_VQA_PROMPT.format(
        image="val2014/COCO_val2014_000000000042.jpg", question="What color is the bus?"
    )
    assert render_raw(run.requests[0].parts) == expected
    assert run.requests[0].style == "raw"
    gen = run.requests[0].generation
    assert (gen.max_new_tokens, gen.min_new_tokens, gen.length_penalty) == (10, 1, 1.0)
    assert not gen.do_sample and gen.num_beams == 1


def test_vqav2_chat_prompt_has_the_image_first(tmp_path):
    root = fx.write_vqav2(tmp_path)
    run = prepare_task("vqav2", root, QWEN2_5_VL.info)
    parts = run.requests[0].parts
    assert isinstance(parts[0], Image) and isinstance(parts[1], Text)
    assert parts[1].text.startswith("What color is the bus?\n")
    assert run.requests[0].style == "chat"


def test_vqav2_scores_with_paper_and_official_normalisation(tmp_path):
    root = fx.write_vqav2(tmp_path)
    # 420: "Red" vs ten "red": 1.0 paper, 0.0 official (PROTOCOL.md section 3 example).
    # 421: "two" -> "2" matches 3 of 10: 0.9 in both modes (answers differ, so official
    #      normalises too). 5000: wrong: 0. The output is stripped first.
    outputs = {"420": " Red\n", "421": "two", "5000": "yes"}
    _, result, store = run_task("vqav2", root, tmp_path, answers_by_id(outputs))
    assert result.metrics["vqa_acc"] == pytest.approx(100 * (1 + 0.9 + 0) / 3)
    assert result.metrics["vqa_acc_official"] == pytest.approx(100 * (0 + 0.9 + 0) / 3)
    saved = store.load("vqav2")
    assert saved["420"].answer == "Red" and saved["420"].output == " Red\n"
    assert saved["421"].score == pytest.approx({"vqa_acc": 0.9, "vqa_acc_official": 0.9})
    assert any("paper" in n for n in result.notes)


def test_vqav2_failed_item_scores_zero_and_keeps_the_rest(tmp_path):
    root = fx.write_vqav2(tmp_path)
    run = prepare_task("vqav2", root, QWEN_VL.info)
    store = PredictionStore(tmp_path / "run")
    runner = FakeRunner(
        answers_by_id({"420": "red", "421": "3", "5000": "no"}), family=QWEN_VL, fail={"421"}
    )
    (result,) = evaluate([run], runner, store)
    assert result.counts["errors"] == 1
    assert result.metrics["vqa_acc"] == pytest.approx(100 * 2 / 3)


def test_vqav2_testdev_writes_the_submission_file(tmp_path):
    root = fx.write_vqav2(tmp_path)
    outputs = {"10010": " a cup \n", "10011": "Yes"}
    run, result, store = run_task("vqav2_testdev", root, tmp_path, answers_by_id(outputs))
    assert [d.id for d in run.docs] == ["10010", "10011"]
    assert run.docs[0].images[0].key == "test2015/COCO_test2015_000000001001.jpg"
    assert result.metrics == {} and result.submission_file
    written = json.loads((tmp_path / "run" / result.submission_file).read_text())
    # As Qwen-VL's evaluate_vqa.py writes it: integer question ids, stripped raw answers.
    assert written == [
        {"question_id": 10010, "answer": "a cup"},
        {"question_id": 10011, "answer": "Yes"},
    ]


def test_vqav2_jsonl_fallback(tmp_path):
    folder = tmp_path / "vqav2"
    fx.jpg(folder / "imgs" / "a.jpg")
    rows = [
        {"question_id": 7, "image": "imgs/a.jpg", "question": "Q?", "answers": ["red"] * 10},
        {
            "question_id": 8,
            "image": "imgs/a.jpg",
            "question": "R?",
            "answers": [{"answer": "blue"}] * 10,
        },
    ]
    (folder / "val.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    docs = registry.get_task("vqav2").load(tmp_path).docs
    assert [d.id for d in docs] == ["7", "8"]
    assert docs[1].fields["answers"] == ["blue"] * 10


def test_vqav2_parquet_fallback(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "vqav2" / "data"
    folder.mkdir(parents=True)
    fx.jpg(tmp_path / "img.jpg")
    image = {"bytes": (tmp_path / "img.jpg").read_bytes(), "path": "COCO_val2014_1.jpg"}
    answers = [{"answer": "red", "answer_confidence": "yes", "answer_id": i} for i in range(1, 11)]
    table = pa.Table.from_pylist(
        [
            {
                "question_id": 11,
                "question": "Q?",
                "answers": answers,
                "image": image,
                "multiple_choice_answer": "red",
            }
        ]
    )
    pq.write_table(table, folder / "validation-00000-of-00001.parquet")
    (doc,) = registry.get_task("vqav2").load(tmp_path).docs
    assert doc.id == "11" and doc.fields["answers"] == ["red"] * 10
    # Read through `datasets`, memory-mapped: the bytes are fetched when the image is opened.
    assert doc.images[0].key == "COCO_val2014_1.jpg"
    assert doc.images[0].materialize().data == image["bytes"]
    assert doc.images[0].size() == (12, 10)


# -- bad inputs -----------------------------------------------------------------------------
def test_missing_data_names_the_expected_files(tmp_path):
    with pytest.raises(DataError) as err:
        registry.get_task("vqav2").load(tmp_path)
    msg = str(err.value)
    assert "v2_OpenEnded_mscoco_val2014_questions.json" in msg and "val.jsonl" in msg


def test_missing_annotations_file(tmp_path):
    root = fx.write_vqav2(tmp_path)
    (root / "vqav2" / "v2_mscoco_val2014_annotations.json").unlink()
    with pytest.raises(DataError, match="v2_mscoco_val2014_annotations.json: file not found"):
        registry.get_task("vqav2").load(root)


def test_malformed_question_names_item_and_field(tmp_path):
    root = fx.write_vqav2(tmp_path)
    path = root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"
    blob = json.loads(path.read_text())
    del blob["questions"][1]["question"]
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError) as err:
        registry.get_task("vqav2").load(root)
    assert err.value.item == "421" and err.value.field == "question"
    assert str(path) in str(err.value)


def test_question_without_annotation(tmp_path):
    root = fx.write_vqav2(tmp_path)
    path = root / "vqav2" / "v2_mscoco_val2014_annotations.json"
    blob = json.loads(path.read_text())
    blob["annotations"] = blob["annotations"][:2]
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError) as err:
        registry.get_task("vqav2").load(root)
    assert err.value.item == "5000" and "no annotation" in str(err.value)


def test_missing_image(tmp_path):
    root = fx.write_vqav2(tmp_path)
    (root / "vqav2" / "val2014" / "COCO_val2014_000000000050.jpg").unlink()
    with pytest.raises(DataError) as err:
        registry.get_task("vqav2").load(root)
    assert err.value.item == "5000" and "image not found" in str(err.value)


def test_image_path_escaping_the_root_is_refused(tmp_path):
    root = tmp_path / "data"
    folder = root / "vqav2"
    fx.jpg(tmp_path / "outside.jpg")
    folder.mkdir(parents=True)
    (folder / "val.jsonl").write_text(
        json.dumps(
            {
                "question_id": 1,
                "image": "../../outside.jpg",
                "question": "Q?",
                "answers": ["a"] * 10,
            }
        )
    )
    with pytest.raises(DataError, match="leaves the data root") as err:
        registry.get_task("vqav2").load(root)
    assert err.value.field == "image"


def test_answers_must_be_strings(tmp_path):
    root = fx.write_vqav2(tmp_path)
    path = root / "vqav2" / "v2_mscoco_val2014_annotations.json"
    blob = json.loads(path.read_text())
    blob["annotations"][0]["answers"] = [{"answer": 3}] * 10
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError) as err:
        registry.get_task("vqav2").load(root)
    assert err.value.item == "420" and err.value.field == "answers"


# -- OK-VQA, VizWiz, TextVQA -----------------------------------------------------------------
def test_okvqa_end_to_end(tmp_path):
    root = fx.write_okvqa(tmp_path)
    outputs = {"2971475": "race", "1419615": "ponytail"}
    run, result, _ = run_task("okvqa", root, tmp_path, answers_by_id(outputs))
    assert [d.id for d in run.docs] == ["2971475", "1419615"]
    assert render_raw(run.requests[1].parts) == (
        "<img>val2014/COCO_val2014_000000141961.jpg</img>"
        "What is the hairstyle of the blond called? Answer:"
    )
    # 6 of 10 humans said "race" (1.0); 4 said "ponytail" (min(1, 4/3 or 3/3) = 1.0).
    assert result.metrics["vqa_acc"] == pytest.approx(100.0)


def test_vizwiz_val_and_test(tmp_path):
    root = fx.write_vizwiz(tmp_path)
    outputs = {"VizWiz_val_00000000.jpg": "val thing 0", "VizWiz_val_00000001.jpg": "nothing"}
    run, result, _ = run_task("vizwiz", root, tmp_path, answers_by_id(outputs))
    assert [d.id for d in run.docs] == ["VizWiz_val_00000000.jpg", "VizWiz_val_00000001.jpg"]
    assert render_raw(run.requests[0].parts) == (
        "<img>val/VizWiz_val_00000000.jpg</img>What is this val 0? Answer:"
    )
    assert result.metrics["vqa_acc"] == pytest.approx(50.0)

    outputs = {"VizWiz_test_00000000.jpg": "a can ", "VizWiz_test_00000001.jpg": "unanswerable"}
    _, result, _ = run_task("vizwiz_test", root, tmp_path / "t", answers_by_id(outputs))
    written = json.loads((tmp_path / "t" / "run" / result.submission_file).read_text())
    assert written == [
        {"image": "VizWiz_test_00000000.jpg", "answer": "a can"},
        {"image": "VizWiz_test_00000001.jpg", "answer": "unanswerable"},
    ]


def test_textvqa_end_to_end(tmp_path):
    root = fx.write_textvqa(tmp_path)
    outputs = {"34602": "word0", "34603": "other"}
    run, result, _ = run_task("textvqa", root, tmp_path, answers_by_id(outputs))
    assert [d.id for d in run.docs] == ["34602", "34603"]
    assert run.docs[0].images[0].key == "train_images/val0000000000000.jpg"
    # "other" matches 3 of 10: 0.9.
    assert result.metrics["vqa_acc"] == pytest.approx(100 * (1 + 0.9) / 2)


def test_textvqa_malformed_image_id(tmp_path):
    root = fx.write_textvqa(tmp_path)
    path = root / "textvqa" / "TextVQA_0.5.1_val.json"
    blob = json.loads(path.read_text())
    blob["data"][1]["image_id"] = 5
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError) as err:
        registry.get_task("textvqa").load(root)
    assert err.value.item == "34603" and err.value.field == "image_id"


# -- GQA ------------------------------------------------------------------------------------
def test_gqa_end_to_end(tmp_path):
    root = fx.write_gqa(tmp_path)
    outputs = {"201307251": "The bus is red.", "20968379": "Yes", "2033": "cat"}
    run, result, store = run_task("gqa", root, tmp_path, answers_by_id(outputs))
    assert [d.id for d in run.docs] == ["201307251", "20968379", "2033"]
    assert render_raw(run.requests[2].parts) == (
        "<img>images/n98122.jpg</img>Which animal is this? Answer:"
    )
    assert result.metrics == {"acc": pytest.approx(100 * 2 / 3)}
    assert store.load("gqa")["201307251"].answer == "red"


def test_gqa_missing_field(tmp_path):
    root = fx.write_gqa(tmp_path)
    path = root / "gqa" / "testdev_balanced_questions.json"
    blob = json.loads(path.read_text())
    del blob["2033"]["imageId"]
    path.write_text(json.dumps(blob))
    with pytest.raises(DataError) as err:
        registry.get_task("gqa").load(root)
    assert err.value.item == "2033" and err.value.field == "imageId"


# -- registry -------------------------------------------------------------------------------
def test_names_aliases_and_groups():
    assert registry.resolve(
        ["vqav2_val", "okvqa_val", "vizwiz_val", "textvqa_val", "gqa_testdev"]
    ) == ["vqav2", "okvqa", "vizwiz", "textvqa", "gqa"]
    table4 = registry.groups()["paper-table4"]
    assert {"vqav2_testdev", "okvqa", "gqa", "vizwiz"} <= set(table4)
    assert "textvqa" in registry.groups()["paper-table5"]


# -- the bundled mini sets ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["vqav2", "vqav2_testdev", "okvqa", "vizwiz", "vizwiz_test", "textvqa", "gqa"]
)
def test_builtin_mini_sets_load(name):
    from qwenvl_eval.tasks.data.locate import builtin_root

    task = registry.get_task(name)
    docs = task.load(builtin_root()).docs
    assert len(docs) >= 32 and len({d.id for d in docs}) == len(docs)
    assert all(d.images[0].path.is_file() for d in docs)
    if task.metrics:
        assert all(d.fields["answers"] for d in docs)
