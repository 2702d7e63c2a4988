"""A whole run through `app.run` with a fake runner: results files, provenance, resume, rescore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.results.render import to_markdown
from qwenvl_eval.results.runs import Run
from qwenvl_eval.results.scoretable import runs_table
from tests.fakes import FakeRunner, write_toy_data


@pytest.fixture()
def setup(tmp_path, monkeypatch, toy_task):
    model_dir = tmp_path / "My-Qwen2-VL"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    runners: list[FakeRunner] = []

    def fake_loader(model, options):
        runners.append(FakeRunner(family=model.family))
        return runners[-1]

    monkeypatch.setattr(app, "load_runner", fake_loader)
    config = RunConfig(
        model=str(model_dir),
        tasks=["toy-group"],
        data_dir=str(write_toy_data(tmp_path / "data")),
        output_dir=tmp_path / "out",
        runner=RunnerOptions(seed=7),
    )
    return config, runners


def test_results_record_what_produced_them(setup):
    config, _ = setup
    outcome = app.run(config)
    res = json.loads(outcome.results_json.read_text())
    assert res["schema_version"] == 1
    assert res["model"]["path"].endswith("My-Qwen2-VL")
    assert res["model"]["family"] == "qwen2-vl"
    assert res["model"]["backend"] == "fake" and res["model"]["dtype"] == "fp32"
    assert res["environment"]["harness_version"] == "0.1.0"
    assert "harness_commit" in res["environment"]
    assert res["seeds"] == {"seed": 7}
    toy = res["tasks"]["toy"]
    assert toy["metrics"] == {"exact": 50.0}
    assert toy["counts"] == {"items": 6, "errors": 0, "resumed": 0}
    assert len(toy["prompt_hash"]) == 16 and toy["headline"] == "exact"
    assert toy["generation"]["max_new_tokens"] == 5
    md = outcome.results_md.read_text()
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines() if "|" in ln]
    assert rows[0] == ["task", "metric", "value", "items", "errors"]
    assert ["toy", "exact", "50.00", "6", "0"] in rows
    assert outcome.run_dir.name.startswith("My-Qwen2-VL-")


def test_second_run_resumes_everything(setup):
    config, runners = setup
    first = app.run(config)
    second = app.run(config)
    assert first.run_dir == second.run_dir
    assert runners[1].seen == []
    assert second.results["tasks"]["toy"]["counts"]["resumed"] == 6


def test_generation_override_changes_the_run_directory(setup):
    config, _ = setup
    first = app.run(config)
    config.gen_kwargs = {"max_new_tokens": 3}
    second = app.run(config)
    assert first.run_dir != second.run_dir
    assert second.results["tasks"]["toy"]["generation"]["max_new_tokens"] == 3
    assert second.results["config"]["gen_kwargs"] == {"max_new_tokens": 3}


def test_rescore_uses_saved_outputs_without_a_model(setup, monkeypatch):
    config, _ = setup
    outcome = app.run(config)
    path = outcome.run_dir / "toy.predictions.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[1]["output"] = "no"  # q1's answer is "no": now right
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(app, "load_runner", None)  # no model may be loaded
    again = app.rescore(outcome.run_dir)
    assert again.results["tasks"]["toy"]["metrics"] == {"exact": pytest.approx(400 / 6)}
    saved = json.loads(path.read_text().splitlines()[1])
    assert saved["answer"] == "no" and saved["score"] == {"exact": 1.0}


def test_leaderboard_shows_headline_per_model(setup):
    config, _ = setup
    res = app.run(config).results
    other = res | {"config": res["config"] | {"model": "other"}}
    table = to_markdown(runs_table([Run(Path("a"), res), Run(Path("b"), other)]))
    header, _, first, second = table.splitlines()
    assert [c.strip() for c in header.split("|")[1:-1]] == ["model", "toy"]
    # equal scores: both are the best of the column
    assert [c.strip() for c in second.split("|")[1:-1]] == ["other", "**50.00**"]
    assert first.split("|")[1].strip().endswith("My-Qwen2-VL")
