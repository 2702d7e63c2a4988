"""DocVQA, ChartQA, AI2D and OCR-VQA: the official formats (and the lmms-lab parquet copies),
the paper's prompt byte for byte, and load -> requests -> score -> aggregate with a fake
runner, with exact expected scores."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import prepare_task
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.tasks.prompts import render_raw
from qwenvl_eval.types import Image, Text
from tests.tasks import _docs_fixtures as fx

# PROTOCOL.md section 2 (Qwen-VL eval_mm/evaluate_vqa.py): one prompt for all four.
PAPER_VQA_PROMPT = "<img>{image}</img>{question} Answer:"


def generation_of(run):
    gen = run.requests[0].generation
    assert not gen.do_sample and gen.num_beams == 1
    return gen.max_new_tokens, gen.min_new_tokens, gen.length_penalty


# -- DocVQA -----------------------------------------------------------------------------------
def test_docvqa_loads_the_official_val_file(tmp_path):
    root = fx.write_docvqa(tmp_path)
    docs = registry.get_task("docvqa").load(root).docs
    assert [d.id for d in docs] == ["57344", "57345", "57346", "57347"]
    assert docs[1].fields["answers"] == ["March 3, 1998", "3/3/98"]
    assert docs[0].fields["question_id"] == 57344
    # The image path is relative to the JSON file's folder (val/), the key to the task's.
    assert docs[0].images[0].key == "val/documents/pybv0228_81.png"


def test_docvqa_accepts_the_file_directly_in_the_task_folder(tmp_path):
    docs = registry.get_task("docvqa").load(fx.write_docvqa(tmp_path, flat=True)).docs
    assert len(docs) == 4 and docs[0].images[0].key == "documents/pybv0228_81.png"


def test_docvqa_paper_prompt_and_generation(tmp_path):
    run = prepare_task("docvqa", fx.write_docvqa(tmp_path), QWEN_VL.info)
    assert render_raw(run.requests[0].parts) == PAPER_VQA_PROMPT.format(
        image="val/documents/pybv0228_81.png", question="What is the title?"
    )
    assert generation_of(run) == (100, 1, 1.0)


def test_docvqa_anls_end_to_end(tmp_path):
    root = fx.write_docvqa(tmp_path)
    texts = {
        "57344": " memorandum ",  # stripped; ANLS ignores case: 1
        "57345": "3/3/9",  # best reference "3/3/98": 1 - 1/6
        "57346": "John Smithers",  # 3 edits over 13 characters: 1 - 3/13
        "57347": "nothing",  # similarity below 0.5: 0
    }
    _, result, store = fx.run_task("docvqa", root, tmp_path, fx.TableRunner(texts))
    scores = {i: row["score"]["anls"] for i, row in fx.predictions(store, "docvqa").items()}
    assert scores == pytest.approx({"57344": 1.0, "57345": 5 / 6, "57346": 10 / 13, "57347": 0.0})
    assert result.metrics == pytest.approx({"anls": 100 * (1 + 5 / 6 + 10 / 13) / 4})
    assert fx.predictions(store, "docvqa")["57344"]["answer"] == "memorandum"


def test_docvqa_test_writes_the_submission_file(tmp_path):
    root = fx.write_docvqa(tmp_path)
    runner = fx.TableRunner({"1": " Acme Corp\n", "2": "1998"})
    _, result, store = fx.run_task("docvqa_test", root, tmp_path, runner)
    assert result.metrics == {}
    rows = json.loads((store.run_dir / result.submission_file).read_text())
    assert rows == [{"questionId": 1, "answer": "Acme Corp"}, {"questionId": 2, "answer": "1998"}]


def test_docvqa_lmms_lab_parquet(tmp_path):
    fx.write_parquet(
        tmp_path / "docvqa" / "DocVQA" / "validation-00000-of-00001.parquet",
        [
            {
                "questionId": "337",
                "question": "What is the date?",
                "answers": ["1/8/93"],
                "image": fx.png_cell("a.png"),
                "docId": 279,
                "data_split": "val",
            }
        ],
    )
    docs = registry.get_task("docvqa").load(tmp_path).docs
    assert [(d.id, d.fields["answers"]) for d in docs] == [("337", ["1/8/93"])]


def test_docvqa_item_without_answers_names_the_field(tmp_path):
    root = fx.write_docvqa(tmp_path)
    path = root / "docvqa" / "val" / "val_v1.0.json"
    data = json.loads(path.read_text())
    del data["data"][2]["answers"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"val_v1\.0\.json, item 57346, field 'answers'"):
        registry.get_task("docvqa").load(root)


# -- ChartQA ----------------------------------------------------------------------------------
def test_chartqa_loads_both_splits_tagged(tmp_path):
    root = fx.write_chartqa(tmp_path)
    docs = registry.get_task("chartqa").load(root).docs
    assert [d.id for d in docs] == ["human-0", "human-1", "augmented-0", "augmented-1"]
    assert [d.fields["split"] for d in docs] == ["human"] * 2 + ["augmented"] * 2
    assert docs[2].fields["answers"] == ["42"]
    assert docs[2].images[0].key == "test/png/multi_col_20396.png"
    assert [d.id for d in registry.get_task("chartqa_human").load(root).docs] == [
        "human-0",
        "human-1",
    ]
    assert [d.id for d in registry.get_task("chartqa_augmented").load(root).docs] == [
        "augmented-0",
        "augmented-1",
    ]


def test_chartqa_paper_prompt_and_generation(tmp_path):
    run = prepare_task("chartqa", fx.write_chartqa(tmp_path), QWEN_VL.info)
    assert render_raw(run.requests[0].parts) == PAPER_VQA_PROMPT.format(
        image="test/png/41699051005347.png", question="What is the peak value?"
    )
    assert generation_of(run) == (100, 1, 1.0)


def test_chartqa_reports_each_split_and_their_mean(tmp_path):
    root = fx.write_chartqa(tmp_path)
    texts = {
        # target 100, prediction 105.2: paper mode (divides by the prediction) accepts it,
        # correct mode (divides by the target) does not (PROTOCOL.md section 3).
        "human-0": "105.2",
        "human-1": "blue",  # case-insensitive exact match
        "augmented-0": "40",  # |40 - 42| / 40 = 5%: kept in paper mode; / 42 < 5% too
        "augmented-1": "No",
    }
    _, result, _ = fx.run_task("chartqa", root, tmp_path, fx.TableRunner(texts))
    assert result.metrics == pytest.approx(
        {
            "relaxed_acc": (100.0 + 50.0) / 2,
            "relaxed_acc_human": 100.0,
            "relaxed_acc_augmented": 50.0,
            "relaxed_acc_correct": (50.0 + 50.0) / 2,
        }
    )
    assert any("'paper' mode" in n for n in result.notes)
    assert any("mean of the human and augmented" in n for n in result.notes)


def test_chartqa_mean_is_over_splits_not_items(tmp_path):
    root = fx.write_chartqa(tmp_path)
    (root / "chartqa/test/test_augmented.json").write_text(
        json.dumps(
            [{"imgname": "two_col_2.png", "query": "Is the value above 10?", "label": "Yes"}]
        )
    )
    texts = {"human-0": "0", "human-1": "0", "augmented-0": "Yes"}
    _, result, _ = fx.run_task("chartqa", root, tmp_path, fx.TableRunner(texts))
    assert result.metrics["relaxed_acc"] == pytest.approx(50.0)  # pooled would be 33.3


def test_chartqa_single_split_task(tmp_path):
    root = fx.write_chartqa(tmp_path)
    texts = {"human-0": "100", "human-1": "Red"}
    _, result, _ = fx.run_task("chartqa_human", root, tmp_path, fx.TableRunner(texts))
    assert result.metrics == pytest.approx({"relaxed_acc": 50.0, "relaxed_acc_correct": 50.0})


def test_chartqa_lmms_lab_parquet(tmp_path):
    rows = [
        {"type": t, "question": q, "answer": a, "image": fx.png_cell(f"{n}.png", n)}
        for n, (t, q, a) in enumerate(
            [
                ("augmented_test", "Sum?", "42"),
                ("human_test", "Peak?", "100"),
                ("human_test", "Colour?", "Blue"),
            ]
        )
    ]
    fx.write_parquet(tmp_path / "chartqa" / "data" / "test-00000-of-00001.parquet", rows)
    docs = registry.get_task("chartqa").load(tmp_path).docs
    assert [(d.id, d.fields["question"]) for d in docs] == [
        ("human-0", "Peak?"),
        ("human-1", "Colour?"),
        ("augmented-0", "Sum?"),
    ]


def test_chartqa_image_name_may_not_leave_the_data_root(tmp_path):
    root = fx.write_chartqa(tmp_path)
    (root / "chartqa/test/test_human.json").write_text(
        json.dumps([{"imgname": "../../../../x.png", "query": "q", "label": "1"}])
    )
    with pytest.raises(DataError, match=r"item human-0, field 'imgname': .*leaves the data"):
        registry.get_task("chartqa").load(root)


def test_chartqa_missing_split_file_names_it(tmp_path):
    root = fx.write_chartqa(tmp_path)
    (root / "chartqa/test/test_augmented.json").unlink()
    with pytest.raises(DataError, match=r"test_augmented\.json: file not found"):
        registry.get_task("chartqa").load(root)


# -- AI2D -------------------------------------------------------------------------------------
def test_ai2d_qwen_jsonl_end_to_end(tmp_path):
    root = fx.write_ai2d(tmp_path)
    run = prepare_task("ai2d", root, QWEN_VL.info)
    assert [d.id for d in run.docs] == ["11", "12"]
    assert render_raw(run.requests[0].parts) == PAPER_VQA_PROMPT.format(
        image="images/0.png", question="Which is a producer?\nA. fox\nB. grass"
    )
    assert generation_of(run) == (10, 1, 1.0)
    _, result, _ = fx.run_task(
        "ai2d", root, tmp_path, fx.TableRunner({"11": "Grass ", "12": "egg"})
    )
    assert result.metrics == {"acc": 50.0}


def test_ai2d_lmms_lab_parquet_writes_the_options_into_the_question(tmp_path):
    fx.write_parquet(
        tmp_path / "ai2d" / "data" / "test-00000-of-00001.parquet",
        [
            {
                "question": "Which is a producer?",
                "options": ["fox", "grass", "owl"],
                "answer": "1",
                "image": fx.png_cell("0.png"),
            }
        ],
    )
    (doc,) = registry.get_task("ai2d").load(tmp_path).docs
    assert doc.fields == {
        "question": "Which is a producer?\nA. fox\nB. grass\nC. owl",
        "answers": ["B", "grass"],
    }


def test_ai2d_bad_line_names_the_field(tmp_path):
    root = fx.write_ai2d(tmp_path)
    (root / "ai2d" / "test.jsonl").write_text(
        json.dumps({"image": "images/0.png", "answer": "x", "question_id": 5}) + "\n"
    )
    with pytest.raises(DataError, match=r"test\.jsonl, item 5, field 'question': missing"):
        registry.get_task("ai2d").load(root)


# -- OCR-VQA ----------------------------------------------------------------------------------
def test_ocrvqa_reads_the_test_split_of_dataset_json(tmp_path):
    root = fx.write_ocrvqa(tmp_path)
    docs = registry.get_task("ocrvqa").load(root).docs
    assert [d.id for d in docs] == ["000100039X_0", "000100039X_1", "0001713353_0"]
    assert docs[1].fields == {"question": "Is this a comedy book?", "answers": ["No"]}
    assert docs[0].images[0].key == "images/000100039X.jpg"
    assert docs[2].images[0].key == "images/0001713353.png"  # the extension the file has


def test_ocrvqa_end_to_end(tmp_path):
    root = fx.write_ocrvqa(tmp_path)
    run = prepare_task("ocrvqa", root, QWEN_VL.info)
    assert render_raw(run.requests[0].parts) == PAPER_VQA_PROMPT.format(
        image="images/000100039X.jpg", question="Who wrote this book?"
    )
    assert generation_of(run) == (100, 1, 1.0)
    texts = {
        "000100039X_0": "kahlil gibran",
        "000100039X_1": "Yes",
        "0001713353_0": "Children's Books",
    }
    _, result, _ = fx.run_task("ocrvqa", root, tmp_path, fx.TableRunner(texts))
    assert result.metrics == pytest.approx({"acc": 200 / 3})


def test_ocrvqa_question_answer_mismatch_is_refused(tmp_path):
    root = fx.write_ocrvqa(tmp_path)
    path = root / "ocrvqa" / "dataset.json"
    data = json.loads(path.read_text())
    data["000100039X"]["answers"].pop()
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"item 000100039X, field 'answers': 2 questions but 1"):
        registry.get_task("ocrvqa").load(root)


# -- shared -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["docvqa", "chartqa", "ai2d", "ocrvqa"])
def test_chat_prompt_is_image_then_question(name, tmp_path):
    for write in (fx.write_docvqa, fx.write_chartqa, fx.write_ai2d, fx.write_ocrvqa):
        write(tmp_path)
    run = prepare_task(name, tmp_path, QWEN2_VL.info)
    image, text = run.requests[0].parts
    assert isinstance(image, Image)
    assert text == Text(
        run.docs[0].fields["question"] + "\nAnswer the question using a single word or phrase."
    )


def test_paper_table_groups():
    groups = registry.groups()
    assert {"docvqa", "chartqa", "ai2d", "ocrvqa"} <= set(groups["paper-table5"])
    assert {"nocaps", "flickr30k", "scienceqa_img"} <= set(groups["paper-table4"])
    assert not {"chartqa_human", "chartqa_augmented", "docvqa_test"} & set(groups["paper-table5"])


@pytest.mark.parametrize(
    "name", ["docvqa", "docvqa_test", "chartqa_human", "chartqa_augmented", "ai2d", "ocrvqa"]
)
def test_builtin_document_sets(name):
    docs = registry.get_task(name).load(builtin_root()).docs
    assert len(docs) >= 32
    assert all(d.images[0].path.is_file() for d in docs)
