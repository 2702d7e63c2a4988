"""OCRBench, MME and HallusionBench: both data formats, the Qwen2-VL prompt, scoring end to
end, the real tiny model on the built-in sets, batch-size invariance."""

from __future__ import annotations

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.tasks.data.check import check_tasks
from tests.tasks import _docs_fixtures as dfx
from tests.tasks import _hf_cards as cards
from tests.tasks.test_qwen2vl_choice import _b64, _prompt_text, _run, _tsv

OPEN_TASKS = ["ocrbench", "mme", "hallusionbench", "infovqa"]


# -- data ------------------------------------------------------------------------------------
def test_ocrbench_tsv_answers_are_a_list_literal(tmp_path):
    rows = [{"index": 0, "image": _b64(1), "question": "what is written in the image?",
             "answer": "['Stop', 'STOP']", "category": "Regular Text Recognition"}]  # fmt: skip
    _tsv(tmp_path / "ocrbench" / "OCRBench.tsv", rows)
    task = registry.get_task("ocrbench")
    (doc,) = task.load(tmp_path).docs
    assert doc.fields["answers"] == ["Stop", "STOP"]
    assert _prompt_text(task, doc) == (
        "what is written in the image?\n"
        "Please try to answer the question with short words or phrases if possible."
    )


def test_ocrbench_tsv_answer_that_is_code_is_refused(tmp_path):
    rows = [{"index": 4, "image": _b64(1), "question": "q", "answer": "[__import__('os')]",
             "category": "Regular Text Recognition"}]  # fmt: skip
    _tsv(tmp_path / "ocrbench" / "OCRBench.tsv", rows)
    with pytest.raises(DataError, match=r"OCRBench.tsv.*4.*answer"):
        registry.get_task("ocrbench").load(tmp_path)


def test_ocrbench_hf_parquet(tmp_path):
    rows = [{"dataset": "IIIT5K", "question": "what is written in the image?",
             "question_type": "Regular Text Recognition", "answer": ["Stop", "STOP"],
             "image": dfx.png_cell("0.png")}]  # fmt: skip
    shard = tmp_path / "ocrbench" / "data" / "test-00000-of-00001.parquet"
    dfx.write_hf_parquet(shard, rows, cards.OCRBENCH)
    (doc,) = registry.get_task("ocrbench").load(tmp_path, "hf").docs
    assert doc.fields["answers"] == ["Stop", "STOP"]
    assert doc.fields["category"] == "Regular Text Recognition"


@pytest.mark.parametrize(
    ("task", "repo", "rel", "features", "row"),
    [
        # lmms-eval's ocrbench task reads echo840/OCRBench (there is no lmms-lab/OCRBench)
        ("ocrbench", "echo840/OCRBench", "data/test-00000-of-00001.parquet", cards.OCRBENCH,
         {"dataset": "IIIT5K", "question": "q", "question_type": "Regular Text Recognition",
          "answer": ["Stop"], "image": dfx.png_cell("0.png")}),
        # Lin-Chen/MMStar's card: split `val` is the one file `mmstar.parquet` at the root
        ("mmstar", "Lin-Chen/MMStar", "mmstar.parquet", cards.MMSTAR,
         {"index": 0, "question": "Q\nOptions: A: x, B: y", "answer": "A", "category": "c",
          "l2_category": "l2", "meta_info": {"source": "s", "split": "val", "image_path": "p"},
          "image": dfx.png_cell("m.png")}),
    ],
)  # fmt: skip
def test_the_hub_cache_copy_is_found_where_the_card_puts_it(
    task, repo, rel, features, row, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    cache, commit = tmp_path / "hub", "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"datasets--{repo.replace('/', '--')}"
    dfx.write_hf_parquet(repo_dir / "snapshots" / commit / rel, [row], features)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    (tmp_path / "data").mkdir()
    split = registry.get_task(task).load(tmp_path / "data", "hf")
    assert split.info["format"] == f"hf hub cache {repo}" and len(split.docs) == 1


def test_mme_tsv_and_parquet_pair_the_questions_of_an_image(tmp_path):
    rows = [
        {"index": 0, "image": _b64(1), "question": "Is it red? Please answer yes or no.",
         "answer": "Yes", "category": "color"},
        {"index": 1, "image": "0", "question": "Is it blue? Please answer yes or no.",
         "answer": "No", "category": "color"},
    ]  # fmt: skip
    _tsv(tmp_path / "mme" / "MME.tsv", rows)
    task = registry.get_task("mme")
    a, b = task.load(tmp_path).docs
    assert a.fields["image_key"] == b.fields["image_key"]
    assert _prompt_text(task, a) == rows[0]["question"]  # MME's own text, nothing added
    hf = [
        {"question_id": "color/000.png", "question": r["question"], "answer": r["answer"],
         "category": "color", "image": dfx.png_cell("000.png")}
        for r in rows
    ]  # fmt: skip
    dfx.write_hf_parquet(tmp_path / "hf" / "mme" / "data" / "test-00000-of-00004.parquet", hf,
                         cards.MME)  # fmt: skip
    c, d = task.load(tmp_path / "hf").docs
    assert c.fields["image_key"] == d.fields["image_key"] == "color/000.png"
    assert (c.fields["answer"], d.fields["subtask"]) == ("Yes", "color")


def test_mme_answer_must_be_yes_or_no(tmp_path):
    rows = [{"index": 3, "image": _b64(1), "question": "Q", "answer": "maybe", "category": "OCR"}]
    _tsv(tmp_path / "mme" / "MME.tsv", rows)
    with pytest.raises(DataError, match=r"MME.tsv.*3.*answer"):
        registry.get_task("mme").load(tmp_path)


def test_hallusionbench_tsv_and_parquet(tmp_path):
    rows = [{"index": 0, "image": _b64(1), "question": "Is the line longer?", "answer": "No",
             "category": "VD", "l2-category": "illusion", "set_id": 2, "figure_id": 1,
             "question_id": 0}]  # fmt: skip
    _tsv(tmp_path / "hallusionbench" / "HallusionBench.tsv", rows)
    task = registry.get_task("hallusionbench")
    (doc,) = task.load(tmp_path).docs
    assert (doc.fields["subcategory"], doc.fields["set_id"]) == ("illusion", "2")
    assert _prompt_text(task, doc) == "Is the line longer? Please answer yes or no."
    hf = [{"category": "VD", "subcategory": "illusion", "visual_input": "1", "set_id": "2",
           "figure_id": "1", "sample_note": "x", "question_id": "0",
           "question": "Is the line longer?", "gt_answer_details": "d", "gt_answer": "0",
           "filename": "a.png", "image": dfx.png_cell("a.png")}]  # fmt: skip
    shard = tmp_path / "hf" / "hallusionbench" / "data" / "image-00000-of-00001.parquet"
    dfx.write_hf_parquet(shard, hf, cards.HALLUSIONBENCH)
    (h,) = task.load(tmp_path / "hf").docs
    assert {k: h.fields[k] for k in doc.fields if k != "hint"} == {
        k: doc.fields[k] for k in doc.fields if k != "hint"
    }


@pytest.mark.parametrize("name", OPEN_TASKS)
def test_data_check_reports_the_builtin_tsv(name):
    (row,) = check_tasks([name], "builtin")
    assert row.status == "partial" and row.format == "vlmeval tsv" and row.items == 32, row


# -- scoring end to end (a scripted model) ---------------------------------------------------
def test_ocrbench_sums_per_category(tmp_path):
    # Right (an answer inside a longer text) on the first item of each category only.
    seen: set[str] = set()

    def answers(doc):
        cat = doc.fields["category"]
        if cat in seen:
            return "no idea"
        seen.add(cat)
        return f"It reads {doc.fields['answers'][0].upper()}."

    result, docs = _run("ocrbench", answers, tmp_path)
    # The handwritten-maths rule is case-sensitive and ignores spaces: upper-casing "x^{3}"
    # makes it "X^{3}", which does not match; the other categories lower-case both sides.
    assert result.metrics["final_score"] == 3.0
    assert result.metrics["score/Regular Text Recognition"] == 1.0
    assert result.metrics["score/Text Recognition"] == 1.0
    assert result.metrics["score/Handwritten Mathematical Expression Recognition"] == 0.0
    assert result.metrics["acc"] == pytest.approx(100 * 3 / len(docs))


def test_mme_acc_plus_needs_both_questions_of_an_image(tmp_path):
    # Always "Yes": every Yes question right, every No question wrong.
    result, docs = _run("mme", lambda d: "Yes, it is.", tmp_path)
    # Per subtask: acc 0.5, acc+ 0 -> 50; perception has 3 subtasks here, cognition 1.
    assert result.metrics["score/color"] == 50.0
    assert result.metrics["perception"] == 150.0 and result.metrics["cognition"] == 50.0
    assert result.metrics["total"] == 200.0 and result.metrics["acc"] == 50.0


def test_hallusionbench_figure_and_question_accuracies(tmp_path):
    # Right everywhere except figure 1's question 0 of set 0.
    def answers(doc):
        f = doc.fields
        wrong = (f["set_id"], f["figure_id"], f["question_id"]) == ("0", "1", "0")
        return {"Yes": "No", "No": "Yes"}[f["answer"]] if wrong else f["answer"] + "."

    result, docs = _run("hallusionbench", answers, tmp_path)
    assert result.metrics["aAcc"] == pytest.approx(100 * 31 / 32)
    assert result.metrics["fAcc"] == pytest.approx(100 * 7 / 8)  # 8 figures, one broken
    assert result.metrics["qAcc"] == pytest.approx(100 * 15 / 16)  # 16 questions over figures
    expected = (100 * 31 / 32 + 100 * 7 / 8 + 100 * 15 / 16) / 3
    assert result.metrics["overall"] == pytest.approx(expected)
    assert result.metrics["aAcc/VS"] == 100.0 and result.metrics["aAcc/illusion"] < 100


# -- InfographicVQA ----------------------------------------------------------------------------
def test_infovqa_tsv_and_lmms_lab_parquet(tmp_path):
    rows = [{"index": 7, "image": _b64(1), "question": "Which year?",
             "answer": "['1999', 'in 1999']"}]  # fmt: skip
    _tsv(tmp_path / "infovqa" / "InfoVQA_VAL.tsv", rows)
    task = registry.get_task("infovqa")
    (doc,) = task.load(tmp_path).docs
    assert (doc.id, doc.fields["answers"]) == ("7", ["1999", "in 1999"])
    hf = [{"questionId": "65", "question": "Which year?", "answers": ["1999"],
           "answer_type": ["single span"], "image": dfx.png_cell("i.png"),
           "image_url": "https://example.org/i.png", "operation/reasoning": [],
           "ocr": "{}", "data_split": "val"}]  # fmt: skip
    path = tmp_path / "hf" / "infovqa" / "InfographicVQA" / "validation-00000-of-00001.parquet"
    dfx.write_hf_parquet(path, hf, cards.INFOGRAPHICVQA)
    (h,) = task.load(tmp_path / "hf").docs
    assert (h.id, h.fields["answers"]) == ("65", ["1999"])


def test_infovqa_anls_end_to_end(tmp_path):
    # "N%" exactly for even items; "N %" (one edit in 3-4 characters) for odd ones.
    def answers(doc):
        n = doc.fields["answers"][1]
        return f" {n}% " if int(doc.id) % 2 == 0 else f"{n} %"

    result, docs = _run("infovqa", answers, tmp_path)
    from qwenvl_eval.metrics.anls import anls

    expected = [
        anls(f"{d.fields['answers'][1]}" + ("%" if int(i) % 2 == 0 else " %"), d.fields["answers"])
        for i, d in docs.items()
    ]
    assert result.metrics["anls"] == pytest.approx(100 * sum(expected) / len(expected))
    assert 50 < result.metrics["anls"] < 100


# -- InfographicVQA test: the RRC submission file ----------------------------------------------
def test_infovqa_test_tsv_and_lmms_lab_parquet_without_answers(tmp_path):
    # VLMEvalKit's InfoVQA_TEST.tsv has no answer column; the id is `index` unless the file
    # has a `questionId` column.
    _tsv(tmp_path / "infovqa" / "InfoVQA_TEST.tsv",
         [{"index": 98011, "image": _b64(1), "question": "Which year?"}])  # fmt: skip
    task = registry.get_task("infovqa_test")
    (doc,) = task.load(tmp_path).docs
    assert (doc.id, doc.fields["question_id"], doc.fields["answer"]) == ("98011", 98011, None)
    assert _prompt_text(task, doc) == _prompt_text(registry.get_task("infovqa"), doc)
    assert _prompt_text(task, doc) == (
        "Which year?\nPlease try to answer the question with short words or phrases if possible."
    )
    row = {"index": 0, "image": _b64(1), "question": "Which year?", "questionId": 98012}
    _tsv(tmp_path / "q" / "infovqa" / "InfoVQA_TEST.tsv", [row])
    (q,) = task.load(tmp_path / "q").docs
    assert (q.id, q.fields["question_id"]) == ("0", 98012)
    # lmms-lab/DocVQA's test split: the string questionId, answers null
    hf = [{"questionId": "98013", "question": "Which year?", "answers": None,
           "answer_type": None, "image": dfx.png_cell("t.png"),
           "image_url": "https://example.org/t.png", "operation/reasoning": None,
           "ocr": "{}", "data_split": "test"}]  # fmt: skip
    path = tmp_path / "hf" / "infovqa" / "InfographicVQA" / "test-00000-of-00001.parquet"
    dfx.write_hf_parquet(path, hf, cards.INFOGRAPHICVQA)
    split = task.load(tmp_path / "hf")
    (h,) = split.docs
    assert (h.id, h.fields["question_id"]) == ("98013", 98013)
    assert split.info["format"].startswith("hf")


@pytest.mark.parametrize(
    ("row", "field"),
    [({"index": "q7"}, "index"), ({"index": 7, "questionId": "7a"}, "questionId")],
)
def test_infovqa_test_id_that_is_not_an_integer_names_file_item_and_field(row, field, tmp_path):
    _tsv(tmp_path / "infovqa" / "InfoVQA_TEST.tsv",
         [{**row, "image": _b64(1), "question": "Which year?"}])  # fmt: skip
    item = str(row["index"])
    with pytest.raises(DataError, match=rf"InfoVQA_TEST\.tsv, item {item}, field '{field}'"):
        registry.get_task("infovqa_test").load(tmp_path)


def test_infovqa_test_is_not_in_the_group_that_runs_without_a_server():
    groups = registry.groups()
    assert "infovqa" in groups["qwen2vl-image"]
    assert not any("infovqa_test" in members for members in groups.values())
    test, val = registry.get_task("infovqa_test"), registry.get_task("infovqa")
    assert test.metrics == () and (test.prompts, test.generation) == (val.prompts, val.generation)


def test_infovqa_test_submission_on_the_tiny_model_then_the_server_score(tmp_path, capsys):
    import json

    from qwenvl_eval.results.paper import paper_table
    from qwenvl_eval.results.runs import load_run
    from tests.fakes import run_cli

    argv = ["run", "--model", "tiny-qwen2-vl", "--tasks", "infovqa_test", "--data-dir",
            "builtin", "--limit", "3", "--gen-kwargs", "max_new_tokens=6",
            "--output-dir", str(tmp_path)]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    entry = json.loads((run_dir / "results.json").read_text())["tasks"]["infovqa_test"]
    assert entry["metrics"] == {} and entry["counts"]["items"] == 3
    assert entry["submission_file"] == "infovqa_test.submission.json"
    lines = (run_dir / "infovqa_test.predictions.jsonl").read_text().splitlines()
    outputs = {row["id"]: row["output"] for row in map(json.loads, lines)}
    # the first three built-in questions (ids 65000 + 7q), each answer the stripped output
    rows = json.loads((run_dir / "infovqa_test.submission.json").read_text())
    assert rows == [
        {"questionId": qid, "answer": outputs[str(qid)].strip()} for qid in (65000, 65007, 65014)
    ]
    assert all(isinstance(r["answer"], str) for r in rows)

    code, _, err = run_cli(["submission", "record", str(run_dir), "--task", "infovqa_test",
                            "--score", "72.4", "--source", "RRC InfographicVQA, submission 9"],
                           capsys)  # fmt: skip
    assert code == 0, err
    recorded = json.loads((run_dir / "results.json").read_text())["tasks"]["infovqa_test"]
    assert recorded["server_score"]["score"] == 72.4
    assert recorded["server_score"]["source"] == "RRC InfographicVQA, submission 9"
    assert recorded["server_score"]["submission_file"] == "infovqa_test.submission.json"
    table = paper_table("qwen2vl-image", [load_run(run_dir)])
    i = list(table.values.index).index("tiny-qwen2-vl (ours)")
    assert table.values.iloc[i]["InfoVQA val"] == 72.4
