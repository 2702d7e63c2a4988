"""MathVista testmini: both data formats, the prompt, the official rule scoring end to end,
the real tiny model on the built-in set, batch-size invariance."""

from __future__ import annotations

import pytest

from qwenvl_eval import registry
from qwenvl_eval.tasks.data.check import check_tasks
from tests.tasks import _docs_fixtures as dfx
from tests.tasks import _hf_cards as cards
from tests.tasks.test_qwen2vl_choice import _b64, _prompt_text, _run, _tsv

META = {"task": "geometry problem solving", "category": "math-targeted-vqa", "source": "x",
        "context": "geometry diagram", "grade": "high school", "language": "english"}  # fmt: skip


def test_tsv_and_ai4math_parquet_read_alike(tmp_path):
    rows = [{"index": 5, "image": _b64(1), "question": "Hint: ...\nQuestion: Which?",
             "answer": "145°", "question_type": "multi_choice", "answer_type": "text",
             "choices": "['145°', '35°']", "precision": None, **META,
             "skills": "['geometry reasoning']"}]  # fmt: skip
    _tsv(tmp_path / "mathvista" / "MathVista_MINI.tsv", rows)
    task = registry.get_task("mathvista_testmini")
    (doc,) = task.load(tmp_path).docs
    assert doc.fields["choices"] == ["145°", "35°"]
    assert doc.fields["meta"]["skills"] == ["geometry reasoning"]
    assert _prompt_text(task, doc) == (
        "Hint: ...\nQuestion: Which?\n"
        "Please try to answer the question with short words or phrases if possible."
    )
    hf = [{"pid": "5", "question": "Which?", "image": "images/5.jpg",
           "decoded_image": dfx.png_cell("5.jpg"), "choices": ["145°", "35°"], "unit": None,
           "precision": None, "answer": "145°", "question_type": "multi_choice",
           "answer_type": "text", "metadata": {**META, "skills": ["geometry reasoning"],
           "split": "testmini", "img_width": 6, "img_height": 5},
           "query": "Hint: ...\nQuestion: Which?"}]  # fmt: skip
    shard = tmp_path / "hf" / "mathvista" / "data" / "testmini-00000-of-00001.parquet"
    dfx.write_hf_parquet(shard, hf, cards.MATHVISTA)
    (h,) = task.load(tmp_path / "hf").docs
    assert h.id == "5"
    for key in ("question", "answer", "choices", "question_type", "answer_type", "meta"):
        assert h.fields[key] == doc.fields[key], key


def test_data_check_reports_the_builtin_tsv():
    (row,) = check_tasks(["mathvista_testmini"], "builtin")
    assert row.status == "partial" and row.items == 32, row


def test_official_rules_end_to_end(tmp_path):
    # Multiple choice by the option's text (a bare "(B)" is for the LLM extractor: the rules
    # alone read nothing there); floats in the "The answer is" sentence, rounded.
    def answers(doc):
        f = doc.fields
        if f["question_type"] == "multi_choice":
            return f["answer"]
        if f["answer_type"] == "float":
            return f'The answer is "{f["answer"]}0".'  # "2.30" rounds to "2.3"
        return "about " + f["answer"]  # no rule reads this: extraction "" -> wrong

    result, docs = _run("mathvista_testmini", answers, tmp_path)
    n_int = sum(d.fields["answer_type"] == "integer" for d in docs.values())
    assert result.metrics["acc"] == pytest.approx(100 * (len(docs) - n_int) / len(docs))
    assert result.metrics["acc/answer_type/integer"] == 0.0
    assert result.metrics["acc/answer_type/float"] == 100.0
    assert result.metrics["acc/question_type/multi_choice"] == 100.0
    assert "acc/skills/logical reasoning" in result.metrics
