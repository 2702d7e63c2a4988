"""ScienceQA: the official problems.json + pid_splits.json layout (and lmms-lab parquet), the
paper's prompt byte for byte, option scoring by lowest mean cross-entropy, the ScienceQA
breakdown, and the generation variant's letter parsing."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import prepare_task
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.tasks.prompts import render_raw
from qwenvl_eval.tasks.scienceqa import parse_choice
from qwenvl_eval.types import Image, ScoreRequest, Text
from tests.tasks import _docs_fixtures as fx

# Qwen-VL eval_mm/evaluate_multiple_choice.py (PROTOCOL.md section 2): the options are
# "{letter}. {choice}" joined by "\n"; a missing hint is written "N/A".
PROMPT_5 = (
    "<img>images/test/5/image.png</img>Context: Select the best answer.\n"
    "Question: Which property do these objects have in common?\n"
    "Options: A. hard\nB. soft\nAnswer:"
)
PROMPT_11 = (
    "<img>images/test/11/image.png</img>Context: N/A\n"
    "Question: What is the name of the colony shown?\n"
    "Options: A. Maryland\nB. New Hampshire\nC. Rhode Island\nD. Vermont\nAnswer:"
)
PROMPT_4 = (
    "Context: N/A\nQuestion: Which figure of speech is used in this text?\n"
    "Options: A. chiasmus\nB. apostrophe\nAnswer:"
)


def test_scienceqa_img_reads_the_test_questions_with_an_image(tmp_path):
    root = fx.write_scienceqa(tmp_path)
    docs = registry.get_task("scienceqa_img").load(root).docs
    assert [d.id for d in docs] == ["5", "11"]  # pid_splits order, no-image questions left out
    assert docs[0].images[0].key == "images/test/5/image.png"
    assert docs[0].fields["choices"] == ["hard", "soft"] and docs[0].fields["answer"] == 1
    all_docs = registry.get_task("scienceqa").load(root).docs
    assert [d.id for d in all_docs] == ["5", "11", "4", "22"]  # never the train question "1"
    assert [len(d.images) for d in all_docs] == [1, 1, 0, 0]


def test_scienceqa_accepts_images_directly_under_pid_folders(tmp_path):
    root = fx.write_scienceqa(tmp_path, official_images=False)
    docs = registry.get_task("scienceqa_img").load(root).docs
    assert [d.images[0].key for d in docs] == ["images/5/image.png", "images/11/image.png"]


def test_scienceqa_paper_prompt_byte_for_byte(tmp_path):
    run = prepare_task("scienceqa", fx.write_scienceqa(tmp_path), QWEN_VL.info)
    assert [render_raw(r.parts) for r in run.requests[:3]] == [PROMPT_5, PROMPT_11, PROMPT_4]
    assert all(isinstance(r, ScoreRequest) and r.style == "raw" for r in run.requests)
    assert [r.options for r in run.requests] == [
        (" A", " B"),
        (" A", " B", " C", " D"),
        (" A", " B"),
        (" A", " B", " C"),
    ]


def test_scienceqa_chat_prompt(tmp_path):
    run = prepare_task("scienceqa", fx.write_scienceqa(tmp_path), QWEN2_VL.info)
    image, text = run.requests[0].parts
    assert isinstance(image, Image)
    assert text == Text(
        PROMPT_5.split("</img>")[1].removesuffix("Answer:")
        + "Answer with the option's letter from the given choices directly."
    )
    (only_text,) = run.requests[2].parts  # no image part for a question without one
    assert only_text.text.startswith("Context: N/A\nQuestion: Which figure of speech")


LOGPROBS = {
    "5": [-2.0, -1.0],  # B: right
    "11": [-0.5, -0.7, -3.0, -3.0],  # A: wrong (answer B)
    "4": [-1.0, -1.0],  # a tie goes to the first option, A: wrong (answer B)
    "22": [-3.0, -2.0, -0.1],  # C: right
}


def test_scienceqa_option_scoring_and_breakdown(tmp_path):
    root = fx.write_scienceqa(tmp_path)
    _, result, store = fx.run_task("scienceqa", root, tmp_path, fx.TableRunner(logprobs=LOGPROBS))
    rows = fx.predictions(store, "scienceqa")
    assert {i: (r["answer"], r["score"]["acc"]) for i, r in rows.items()} == {
        "5": ("B", 1.0),
        "11": ("A", 0.0),
        "4": ("A", 0.0),
        "22": ("C", 1.0),
    }
    assert rows["22"]["extra"]["mean_loss"] == [3.0, 2.0, 0.1]
    # NAT: 5; SOC: 11; LAN: 4, 22; TXT (a hint): 5, 22; IMG: 5, 11; NO: 4;
    # G1-6: 5, 11, 22; G7-12: 4.
    assert result.metrics == pytest.approx(
        {
            "acc": 50.0,
            "NAT": 100.0,
            "SOC": 0.0,
            "LAN": 50.0,
            "TXT": 100.0,
            "IMG": 50.0,
            "NO": 0.0,
            "G1-6": 200 / 3,
            "G7-12": 0.0,
        }
    )
    assert list(result.metrics)[0] == "acc"


def test_scienceqa_img_headline(tmp_path):
    root = fx.write_scienceqa(tmp_path)
    _, result, _ = fx.run_task(
        "scienceqa_img", root, tmp_path, fx.TableRunner(logprobs=LOGPROBS, fail={"11"})
    )
    assert result.metrics["acc"] == 50.0  # a failed item counts as wrong
    assert result.counts["errors"] == 1
    assert "NO" not in result.metrics  # no question without context in the IMG subset


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", 1),
        ("B.", 1),
        ("(B) soft", 1),
        ("B) soft", 1),
        (" A: hard", 0),
        ("The answer is A.", 0),
        ("the answer is (B)", 1),
        ("soft", 1),
        ("Soft.", 1),
        ("A dog", None),
        ("b", None),
        ("E", None),
        ("", None),
        ("hard or soft", None),
    ],
)
def test_parse_choice(text, expected):
    assert parse_choice(text, ["hard", "soft"]) == expected


def test_scienceqa_img_gen_end_to_end(tmp_path):
    root = fx.write_scienceqa(tmp_path)
    run = prepare_task("scienceqa_img_gen", root, QWEN_VL.info)
    assert render_raw(run.requests[0].parts) == PROMPT_5
    gen = run.requests[0].generation
    assert (gen.max_new_tokens, gen.min_new_tokens, gen.do_sample) == (10, 1, False)
    texts = {"5": "B. soft", "11": "Rhode Island"}
    _, result, store = fx.run_task("scienceqa_img_gen", root, tmp_path, fx.TableRunner(texts))
    assert result.metrics["acc"] == 50.0
    assert fx.predictions(store, "scienceqa_img_gen")["11"]["answer"] == "C"


def test_scienceqa_lmms_lab_parquet(tmp_path):
    def row(n, image, subject="natural science"):
        return {
            "image": fx.png_cell(f"{n}.png", n) if image else None,
            "question": f"Q{n}?",
            "choices": ["x", "y"],
            "answer": n % 2,
            "hint": "",
            "task": "closed choice",
            "grade": "grade3",
            "subject": subject,
            "topic": "t",
            "category": "c",
            "skill": "s",
            "lecture": "",
            "solution": "",
        }

    full = tmp_path / "scienceqa" / "ScienceQA-FULL"
    fx.write_parquet(
        full / "test-00000-of-00001.parquet", [row(0, True), row(1, False), row(2, True)]
    )
    docs = registry.get_task("scienceqa").load(tmp_path).docs
    assert [(d.id, len(d.images)) for d in docs] == [("0", 1), ("1", 0), ("2", 1)]
    img_docs = registry.get_task("scienceqa_img").load(tmp_path).docs  # FULL, cut to images
    assert [d.id for d in img_docs] == ["0", "2"]
    fx.write_parquet(
        tmp_path / "scienceqa" / "ScienceQA-IMG" / "test-00000-of-00001.parquet", [row(5, True)]
    )
    assert [
        d.fields["question"] for d in registry.get_task("scienceqa_img").load(tmp_path).docs
    ] == ["Q5?"]


# -- bad input --------------------------------------------------------------------------------
def _edit_problems(root, edit):
    path = root / "scienceqa" / "problems.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_scienceqa_answer_out_of_range_names_the_field(tmp_path):
    root = fx.write_scienceqa(tmp_path)
    _edit_problems(root, lambda d: d["11"].update(answer=4))
    with pytest.raises(DataError, match=r"problems\.json, item 11, field 'answer'"):
        registry.get_task("scienceqa").load(root)


def test_scienceqa_split_listing_an_unknown_problem(tmp_path):
    root = fx.write_scienceqa(tmp_path)
    _edit_problems(root, lambda d: d.pop("22"))
    with pytest.raises(DataError, match=r"item 22: problem listed in pid_splits\.json"):
        registry.get_task("scienceqa").load(root)


def test_scienceqa_missing_image_and_escaping_path(tmp_path):
    root = fx.write_scienceqa(tmp_path)
    (root / "scienceqa/images/test/11/image.png").unlink()
    with pytest.raises(DataError, match=r"item 11, field 'image': image not found"):
        registry.get_task("scienceqa_img").load(root)
    _edit_problems(root, lambda d: d["5"].update(image="../../../../../etc/passwd"))
    with pytest.raises(DataError, match=r"item 5, field 'image': .*leaves the data root"):
        registry.get_task("scienceqa_img").load(root)


def test_scienceqa_missing_files_are_named(tmp_path):
    (tmp_path / "scienceqa").mkdir()
    with pytest.raises(DataError, match=r"problems\.json: file not found"):
        registry.get_task("scienceqa").load(tmp_path)


def test_builtin_scienceqa_set():
    docs = registry.get_task("scienceqa").load(builtin_root()).docs
    img = registry.get_task("scienceqa_img").load(builtin_root()).docs
    assert len(img) >= 32 and len(docs) > len(img)
    assert {d.fields["subject"] for d in docs} == {
        "natural science",
        "social science",
        "language science",
    }
    grades = {int(d.fields["grade"].removeprefix("grade")) for d in docs}
    assert min(grades) <= 6 < max(grades)
    assert any(not d.fields["hint"] for d in docs) and any(d.fields["hint"] for d in docs)
