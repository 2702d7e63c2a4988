"""Hostile input on the run-side commands: each is one line and exit 2 (or a per-item
matter), never a traceback, and nothing already written is lost or rewritten."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import app, registry
from qwenvl_eval.config import RunConfig
from qwenvl_eval.errors import DataError, UserError
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.parallel import Ranks
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data import records as rec
from qwenvl_eval.types import Response
from tests.fakes import FakeRunner, run_cli, write_toy_data
from tests.tasks import _vqa_fixtures as fx


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    text = " ".join(err.split())
    assert text.startswith("error:"), text
    for needle in needles:
        assert needle in text, (needle, text)


@pytest.fixture()
def toy_run(tmp_path, monkeypatch, toy_task):
    model_dir = tmp_path / "My-Qwen2-VL"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    monkeypatch.setattr(app, "load_runner", lambda model, options: FakeRunner(family=model.family))
    return RunConfig(
        model=str(model_dir),
        tasks=["toy"],
        data_dir=str(write_toy_data(tmp_path / "data")),
        output_dir=tmp_path / "out",
    )


# -- rescore on a results file of a newer schema ----------------------------------------------


def test_rescore_refuses_a_newer_schema_and_leaves_the_file_alone(toy_run, capsys):
    run_dir = app.run(toy_run).run_dir
    path = run_dir / "results.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 2
    data["model"]["a_field_of_version_2"] = {"kept": True}
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    code, _, err = run_cli(["rescore", str(run_dir)], capsys)
    one_line_error(code, err, "results.json", "schema_version 2", "newer")
    assert path.read_bytes() == before


# -- torchrun's rank timeout -------------------------------------------------------------------

_RANK_ENV = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "-5", "0", "1e400", "ten", ""])
def test_rank_timeout_must_be_a_positive_finite_number(raw):
    with pytest.raises(UserError, match="QWENVL_EVAL_RANK_TIMEOUT=.*expected a number of seconds"):
        Ranks.from_env(_RANK_ENV | {"QWENVL_EVAL_RANK_TIMEOUT": raw})
    assert Ranks.from_env(_RANK_ENV | {"QWENVL_EVAL_RANK_TIMEOUT": "0.5"}).timeout_s == 0.5


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_rank_timeout_nan_or_inf_is_one_line_through_run(raw, toy_run, capsys, monkeypatch):
    for k, v in (_RANK_ENV | {"QWENVL_EVAL_RANK_TIMEOUT": raw}).items():
        monkeypatch.setenv(k, v)
    argv = ["run", "--model", toy_run.model, "--tasks", "toy", "--data-dir", toy_run.data_dir]
    code, _, err = run_cli(argv, capsys)
    one_line_error(code, err, f"QWENVL_EVAL_RANK_TIMEOUT='{raw}'")


# -- fewshot-sweep shot lists -------------------------------------------------------------------


@pytest.mark.parametrize("shots", ["", ",", " , ", "-4", "0,4,4"])
def test_fewshot_sweep_refuses_empty_or_invalid_shot_lists(shots, tmp_path, capsys):
    argv = ["fewshot-sweep", "--model", "tiny-qwen2-vl", "--shots", shots]
    code, _, err = run_cli([*argv, "--output-dir", str(tmp_path / "sweep")], capsys)
    one_line_error(code, err, "--shots")
    assert not (tmp_path / "sweep").exists()  # no empty figure written


# -- boxes with a negative origin ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value,xywh", [([-1, 2, 10, 10], False), ([3, -0.5, 4, 4], True), ([-2, -2, 5, 5], True)]
)
def test_a_ground_truth_box_with_a_negative_origin_is_refused(value, xywh):
    with pytest.raises(DataError) as info:
        rec.box(
            value, source="refcoco/instances.json", item="annotation 7", field="bbox", xywh=xywh
        )
    text = str(info.value)
    assert "refcoco/instances.json" in text and "annotation 7" in text and "bbox" in text
    assert "negative origin" in text
    assert rec.box([0, 0, 5, 5], source="f", item="i", field="bbox", xywh=True) == [0, 0, 5, 5]


def test_the_refer_reader_names_the_annotation_with_a_negative_origin(tmp_path):
    root = fx.write_refer(tmp_path / "data")
    path = root / "refcoco" / "instances.json"
    inst = json.loads(path.read_text())
    inst["annotations"][0]["bbox"] = [-3.0, 20.0, 30.0, 40.0]
    path.write_text(json.dumps(inst))
    with pytest.raises(DataError) as info:
        registry.get_task("refcoco_val").load(root)
    text = str(info.value)
    assert "instances.json" in text and f"annotation {inst['annotations'][0]['id']}" in text
    assert "bbox" in text and "negative origin" in text


def test_a_predicted_box_with_a_negative_origin_is_scored_unclipped_and_flagged(tmp_path):
    root = fx.write_refer(tmp_path / "data")
    run = prepare_task("refcoco_val", root, QWEN2_VL.info)
    # Ground truth of 0_0: [10, 20, 40, 60] on a 100x80 image.
    outputs = {"0_0": "(-100,250),(400,750)", "0_1": "(100,250),(400,750)", "3_4": "none"}

    class Runner(FakeRunner):
        def generate(self, requests):
            for r in requests:
                yield Response(id=r.id, text=outputs[r.id])

    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], Runner(family=QWEN2_VL), store)
    saved = store.load("refcoco_val")
    # Unclipped: x1 = -10; inter 30x40 = 1200, union 50x40 = 2000 (clipping would give 0.75).
    assert saved["0_0"].answer == pytest.approx([-10.0, 20.0, 40.0, 60.0])
    assert saved["0_0"].score == pytest.approx({"acc@0.5": 1.0, "iou": 0.6})
    assert saved["0_0"].extra["box_outside_image"] is True
    assert "box_outside_image" not in saved["0_1"].extra
    assert any("1 predicted box(es) reach outside the image" in n for n in result.notes)


# -- answers to ids the dataset does not hold ----------------------------------------------------


def test_an_answer_to_an_id_not_in_the_data_is_set_aside_with_one_notice(toy_run, caplog):
    first = app.run(toy_run)
    preds = first.run_dir / "toy.predictions.jsonl"
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    ghosts = [rows[0] | {"id": "ghost-1"}, rows[1] | {"id": "ghost-2"}]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows + ghosts))
    toy_run.limit = 2  # the items past the limit are in the data: they stay
    with caplog.at_level("WARNING"):
        again = app.run(toy_run)
    kept = [json.loads(x)["id"] for x in preds.read_text().splitlines()]
    assert kept == [r["id"] for r in rows]
    aside = [json.loads(x) for x in (again.run_dir / "toy.rejected.jsonl").read_text().splitlines()]
    assert [json.loads(a["raw"])["id"] for a in aside] == ["ghost-1", "ghost-2"]
    assert all("not an item of the task's data" in a["why"] for a in aside)
    notices = [r.getMessage() for r in caplog.records if "not in the task's data" in r.getMessage()]
    assert len(notices) == 1 and "2 saved answer(s)" in notices[0] and "ghost-1" in notices[0]
