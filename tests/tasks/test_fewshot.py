"""Few-shot variants: train-split examples, seeded per item, in the paper's format."""

from __future__ import annotations

import re

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.fewshot import draw_shots, make_fewshot
from qwenvl_eval.tasks.prompts import render_raw
from qwenvl_eval.types import Image, Text
from tests.fakes import FakeRunner
from tests.tasks import _vqa_fixtures as fx

# PROTOCOL.md section 4: `<img>t1</img>{q1} Answer: {a1}<img>t2</img>...<img>test</img>{q} Answer:`
SHOT = re.compile(
    r"<img>(train2014/COCO_train2014_0+(\d+)\.jpg)</img>"
    r"Train question (\d)\? Answer: answer(\d)"
)


@pytest.fixture()
def root(tmp_path):
    return fx.write_okvqa(tmp_path / "data")


def test_names_and_groups():
    names = registry.task_names()
    for base in ("okvqa", "vizwiz", "textvqa"):
        for n in (4, 8, 16):
            assert f"{base}_{n}shot" in names
    assert {"okvqa_4shot", "vizwiz_8shot", "textvqa_16shot"} <= set(
        registry.groups()["paper-figure4"]
    )


def test_paper_format_byte_for_byte(root):
    run = prepare_task("okvqa_4shot", root, QWEN_VL.info, seed=0)
    text = render_raw(run.requests[0].parts)
    test_part = (
        "<img>val2014/COCO_val2014_000000297147.jpg</img>What sport can you use this for? Answer:"
    )
    assert text.endswith(test_part)
    prefix = text[: -len(test_part)]
    shots = SHOT.findall(prefix)
    assert len(shots) == 4
    # Nothing between the examples: each is the template plus " answer".
    assert prefix == "".join(
        f"<img>{key}</img>Train question {q}? Answer: answer{a}" for key, _, q, a in shots
    )
    for _, image_id, q, a in shots:  # the image, question and answer of one train item
        assert int(image_id) == 10 + int(q) and q == a
    assert len({q for _, _, q, _ in shots}) == 4  # distinct examples
    images = [p.image.key for p in run.requests[0].parts if isinstance(p, Image)]
    assert len(images) == 5 and images[-1] == "val2014/COCO_val2014_000000297147.jpg"


def test_shot_answer_is_the_most_common_human_answer(root):
    run = prepare_task("okvqa_4shot", root, QWEN_VL.info)
    text = render_raw(run.requests[0].parts)
    assert "answer" in text and "other" not in text  # 6 x answerK beats 4 x otherK


def test_draws_are_seeded_per_item_and_stable(root):
    a = prepare_task("okvqa_4shot", root, QWEN_VL.info, seed=0)
    b = prepare_task("okvqa_4shot", root, QWEN_VL.info, seed=0)
    assert [r.parts for r in a.requests] == [r.parts for r in b.requests]
    # --limit does not change an item's examples: the draw depends on its id only.
    c = prepare_task("okvqa_4shot", root, QWEN_VL.info, seed=0, limit=1)
    assert c.requests[0].parts == a.requests[0].parts
    # Pinned values: Python's hash() of a str would change between processes; a stable
    # hash (sha256) and random.Random give these on every machine.
    assert draw_shots(5, 4, seed=0, task="okvqa_4shot", item_id="2971475") == [4, 2, 3, 1]
    assert draw_shots(1000, 4, seed=7, task="vizwiz_4shot", item_id="VizWiz_val_00000000.jpg") == [
        667,
        452,
        627,
        992,
    ]
    draws = {tuple(draw_shots(100, 4, seed=s, task="t", item_id="x")) for s in range(5)}
    assert len(draws) == 5  # other seeds draw other examples
    assert a.prompt_hash != prepare_task("okvqa_4shot", root, QWEN_VL.info, seed=1).prompt_hash


def test_examples_never_come_from_the_evaluated_split(root):
    run = prepare_task("okvqa_4shot", root, QWEN_VL.info)
    for req in run.requests:
        keys = [p.image.key for p in req.parts if isinstance(p, Image)]
        assert all(k.startswith("train2014/") for k in keys[:-1])
        assert keys[-1].startswith("val2014/")


def test_too_few_train_examples(root):
    with pytest.raises(DataError, match="8-shot needs more"):
        prepare_task("okvqa_8shot", root, QWEN_VL.info)


def test_missing_train_split(tmp_path):
    root = fx.write_okvqa(tmp_path)
    (root / "okvqa" / "OpenEnded_mscoco_train2014_questions.json").unlink()
    with pytest.raises(DataError, match="OpenEnded_mscoco_train2014_questions.json"):
        prepare_task("okvqa_4shot", root, QWEN_VL.info)


def test_end_to_end_scores_like_the_base_task(root, tmp_path):
    run = prepare_task("okvqa_4shot", root, QWEN_VL.info)
    store = PredictionStore(tmp_path / "run")
    outputs = {"2971475": "race", "1419615": "bob"}
    (result,) = evaluate([run], FakeRunner(lambda r: outputs[r.id], family=QWEN_VL), store)
    assert result.metrics["vqa_acc"] == pytest.approx(50.0)
    assert any("4-shot" in n for n in result.notes)


def test_chat_family_gets_interleaved_examples(root):
    run = prepare_task("okvqa_4shot", root, QWEN2_VL.info)
    parts = run.requests[0].parts
    kinds = ["image" if isinstance(p, Image) else "text" for p in parts]
    assert kinds == ["image", "text"] * 5
    assert all(isinstance(p, Text) and re.search(r" answer\d\n\n$", p.text) for p in parts[1:-1:2])
    assert parts[-1].text.startswith("What sport can you use this for?")


@pytest.mark.parametrize(
    "writer,name,test_key,train_prefix",
    [
        (fx.write_vizwiz, "vizwiz_4shot", "val/VizWiz_val_00000000.jpg", "train/"),
        (
            fx.write_textvqa,
            "textvqa_4shot",
            "train_images/val0000000000000.jpg",
            "train_images/train",
        ),
    ],
)
def test_vizwiz_and_textvqa_variants(tmp_path, writer, name, test_key, train_prefix):
    root = writer(tmp_path)
    run = prepare_task(name, root, QWEN_VL.info)
    keys = [p.image.key for p in run.requests[0].parts if isinstance(p, Image)]
    assert keys[-1] == test_key and all(k.startswith(train_prefix) for k in keys[:-1])
    assert len(keys) == 5


def test_factory_is_generic(root):
    from qwenvl_eval.tasks.vqa import OKVQA, OKVQA_TRAIN

    cls = make_fewshot(OKVQA, 2, OKVQA_TRAIN, answer_of=lambda d: "X")
    task = cls()
    task.name = "custom_2shot"
    split = task.load(root)
    text = render_raw(task.request(split.docs[0], QWEN_VL.info, seed=3, pool=split.pool).parts)
    assert text.count("Answer: X<img>") == 2
    assert cls.__name__ == "OKVQA2Shot"


@pytest.mark.parametrize("name", ["okvqa_16shot", "vizwiz_16shot", "textvqa_16shot"])
def test_builtin_mini_sets_have_enough_train_examples(name):
    from qwenvl_eval.tasks.data.locate import builtin_root

    run = prepare_task(name, builtin_root(), QWEN_VL.info, limit=2)
    keys = [p.image.key for p in run.requests[0].parts if isinstance(p, Image)]
    assert len(keys) == 17
