"""The results.json schema and the one reader every run-reading command goes through."""

from __future__ import annotations

import json

import jsonschema
import pytest

from qwenvl_eval import app
from qwenvl_eval.errors import UserError
from qwenvl_eval.results.results_file import results_schema
from qwenvl_eval.results.runs import load_run
from tests.results.plant import plant_run
from tests.test_app import setup  # noqa: F401  (fixture: a whole run with a fake runner)
from tests.test_cli import assert_one_line_error, run_cli


def test_a_real_run_validates_against_the_packaged_schema(setup):  # noqa: F811
    config, _ = setup
    outcome = app.run(config)
    data = json.loads(outcome.results_json.read_text())
    jsonschema.validate(data, results_schema())
    run = load_run(outcome.run_dir)
    assert run.headline("toy") == "exact"
    assert [it.id for it in run.items("toy")] == [f"q{i}" for i in range(6)]


def test_schema_rejects_a_wrong_field_type(tmp_path):
    path = plant_run(tmp_path / "r", model="m", metrics={"okvqa": {"vqa_acc": 1.0}})
    data = json.loads((path / "results.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data | {"schema_version": "1"}, results_schema())
    data["tasks"]["okvqa"]["metrics"]["vqa_acc"] = "high"
    (path / "results.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"results.json: field tasks.okvqa.metrics.vqa_acc: 'high'"):
        load_run(path)


@pytest.mark.parametrize("command", [["table"], ["leaderboard"], ["report"], ["compare", "X"]])
def test_garbage_results_file_is_one_line_naming_it(tmp_path, capsys, command):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text("{not json")
    argv = [command[0], *[str(run) if a == "X" else a for a in command[1:]], str(run)]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, f"{run / 'results.json'}: not a JSON file (line 1")
    assert len(err.strip().splitlines()) == 1 or "\n" not in " ".join(err.split())


def test_missing_and_newer_versions_are_explained(tmp_path):
    with pytest.raises(UserError, match="not found; expected a run directory"):
        load_run(tmp_path / "nothing")
    path = plant_run(tmp_path / "r", model="m", metrics={"okvqa": {"vqa_acc": 1.0}})
    data = json.loads((path / "results.json").read_text())
    (path / "results.json").write_text(json.dumps(data | {"schema_version": 7}))
    with pytest.raises(UserError, match="schema_version 7 was written by a newer qwenvl-eval"):
        load_run(path)
    (path / "results.json").write_text(json.dumps({"schema_version": 1, "tasks": 3}))
    with pytest.raises(UserError, match="results.json: field "):
        load_run(path)
    (path / "results.json").write_text(json.dumps([1, 2]))
    with pytest.raises(UserError, match="not a qwenvl-eval results file"):
        load_run(path)


def test_version_1_before_headline_is_upgraded(tmp_path):
    path = plant_run(tmp_path / "r", model="m", metrics={"gqa": {"acc": 40.0, "other": 1.0}})
    data = json.loads((path / "results.json").read_text())
    del data["tasks"]["gqa"]["headline"]
    (path / "results.json").write_text(json.dumps(data))
    assert load_run(path).headline("gqa") == "acc"


def test_predictions_torn_last_line_skipped_bad_line_named(tmp_path):
    rows = [{"id": f"q{i}", "score": {"acc": 1.0}} for i in range(3)]
    path = plant_run(tmp_path / "r", model="m", items={"gqa": rows})
    pred = path / "gqa.predictions.jsonl"
    pred.write_text(pred.read_text() + '{"id": "q3", "prompt_')
    assert [it.id for it in load_run(path).items("gqa")] == ["q0", "q1", "q2"]
    lines = pred.read_text().splitlines()
    pred.write_text("\n".join([lines[0], "garbage", lines[1]]) + "\n")
    with pytest.raises(UserError, match=r"gqa.predictions.jsonl, line 2: not a prediction"):
        load_run(path).items("gqa")
