"""Whole runs through the CLI entry point with a fake runner (no model): data and flag
mistakes are refused before any model loads; failed items, smaller limits and task subsets
never lose a finished answer."""

from __future__ import annotations

import json

import pytest

from qwenvl_eval import app
from tests.fakes import FakeRunner, last_text, write_toy_data
from tests.fakes import run_cli as invoke_cli


@pytest.fixture()
def env(tmp_path, monkeypatch, toy_task):
    """A model folder, toy data, and a loader that records every runner it makes."""
    model_dir = tmp_path / "My-Qwen2-VL"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    root = write_toy_data(tmp_path / "data")
    state = {"runners": [], "fail": set(), "answer": last_text}

    def loader(model, options):
        state["runners"].append(
            FakeRunner(state["answer"], family=model.family, fail=set(state["fail"]))
        )
        return state["runners"][-1]

    monkeypatch.setattr(app, "load_runner", loader)
    state["base"] = [
        "run",
        "--model",
        str(model_dir),
        "--data-dir",
        str(root),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    state["root"] = root
    state["out"] = tmp_path / "out"
    return state


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code, out, err = invoke_cli(argv, capsys)
    err = " ".join(err.split())  # rich may wrap long lines
    assert "Traceback" not in err
    # The progress bar shares stderr: the message is what follows it.
    return code, out, err[err.find("error: ") :] if "error: " in err else err


def predictions(env) -> dict[str, dict]:
    (path,) = env["out"].glob("*/toy.predictions.jsonl")
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


def results(env) -> dict:
    (path,) = env["out"].glob("*/results.json")
    return json.loads(path.read_text())


def test_failed_items_are_retried_on_resume(env, capsys):
    env["fail"] = {"q1", "q4"}
    code, _, _ = run_cli([*env["base"], "--tasks", "toy"], capsys)
    assert code == 0
    assert {i for i, r in predictions(env).items() if r.get("error")} == {"q1", "q4"}
    env["fail"] = set()  # the broken images were replaced
    code, _, _ = run_cli([*env["base"], "--tasks", "toy"], capsys)
    assert code == 0
    assert sorted(env["runners"][1].seen) == ["q1", "q4"]  # only the failed ones again
    rows = predictions(env)
    assert len(rows) == 6 and not any(r.get("error") for r in rows.values())
    assert results(env)["tasks"]["toy"]["counts"] == {"items": 6, "errors": 0, "resumed": 4}


def test_smaller_limit_never_deletes_finished_answers(env, capsys):
    assert run_cli([*env["base"], "--tasks", "toy"], capsys)[0] == 0
    before = predictions(env)
    assert run_cli([*env["base"], "--tasks", "toy", "--limit", "2"], capsys)[0] == 0
    assert env["runners"][1].seen == []  # everything resumed
    assert predictions(env) == before  # all 6 answers still there
    assert list(predictions(env))[:2] == ["q0", "q1"]
    assert results(env)["tasks"]["toy"]["counts"]["items"] == 2


def test_every_item_failed_exits_1_with_results_written(env, capsys):
    env["fail"] = {f"q{i}" for i in range(6)}
    code, _, err = run_cli([*env["base"], "--tasks", "toy"], capsys)
    assert code == 1
    assert err.startswith("error: every item failed (6 items; last: toy, item q")
    assert "image could not be decoded" in err and "Traceback" not in err
    assert len(predictions(env)) == 6
    assert results(env)["tasks"]["toy"]["counts"]["errors"] == 6


@pytest.mark.parametrize("spec, stops_after", [("1", 2), ("20%", 2), ("0", 1)])
def test_max_failures_stops_early_and_keeps_what_is_written(env, capsys, spec, stops_after):
    env["fail"] = {"q5", "q3", "q1"}  # the fake runner answers q5, q4, q3, ... in that order
    code, _, err = run_cli([*env["base"], "--tasks", "toy", "--max-failures", spec], capsys)
    assert code == 1
    assert err.startswith(
        f"error: stopped after {stops_after} failed items (--max-failures {spec}); last: toy, "
    )
    assert "run the same command again to resume" in err
    answered = env["runners"][0].seen
    assert set(predictions(env)) == set(answered)  # every answer given was written
    assert not list(env["out"].glob("*/results.json"))
    env["fail"] = set()
    assert run_cli([*env["base"], "--tasks", "toy"], capsys)[0] == 0
    assert len(predictions(env)) == 6


def test_bad_max_failures_is_a_usage_error(env, capsys):
    code, _, err = run_cli([*env["base"], "--tasks", "toy", "--max-failures", "ten"], capsys)
    assert code == 2 and err == (
        "error: --max-failures ten: expected a count (e.g. 5) or a percentage (e.g. 10%)"
    )
    assert env["runners"] == []


def test_lone_surrogate_is_refused_before_the_model_loads(env, capsys):
    items = env["root"] / "toy" / "items.json"
    rows = json.loads(items.read_text())
    rows[3]["question"] = "what \ud800 is it?"
    items.write_text(json.dumps(rows))  # ascii JSON with a "\\ud800" escape, as found in the wild
    code, _, err = run_cli([*env["base"], "--tasks", "toy"], capsys)
    assert code == 2
    assert err == (
        "error: task 'toy', item 'q3', prompt: '\\ud800' at character 5 is not valid Unicode"
    )
    assert env["runners"] == []  # no model was loaded


def test_empty_dataset_is_an_error(env, capsys):
    (env["root"] / "toy" / "items.json").write_text("[]")
    code, _, err = run_cli([*env["base"], "--tasks", "toy"], capsys)
    # The reader refuses it, naming the folder it read (before any model loads).
    assert code == 2
    assert err.startswith(f"error: {env['root'] / 'toy'}: no items in this split"), err
    assert env["runners"] == []


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tasks", ","], "error: --tasks: no task named (expected e.g. --tasks vqav2,refcoco)"),
        (
            ["--tasks", "toy", "--gen-kwargs", "max_new_tokens=-1"],
            "error: --gen-kwargs max_new_tokens=-1: must be an integer >= 1",
        ),
        (
            ["--tasks", "toy", "--gen-kwargs", "num_beams=0"],
            "error: --gen-kwargs num_beams=0: must be an integer >= 1",
        ),
        (
            ["--tasks", "toy", "--gen-kwargs", "length_penalty=nan"],
            "error: --gen-kwargs length_penalty=nan: must be a finite number",
        ),
        (
            ["--tasks", "toy", "--gen-kwargs", "repetition_penalty=0"],
            "error: --gen-kwargs repetition_penalty=0: must be a finite number > 0",
        ),
        (
            ["--tasks", "toy", "--gen-kwargs", "min_new_tokens=9"],
            "error: task 'toy': min_new_tokens 9 is above max_new_tokens 5; set both with "
            "--gen-kwargs",
        ),
        (
            ["--tasks", "toy", "--max-pixels", "-5"],
            "error: --max-pixels -5: must be a positive number of pixels",
        ),
        (
            ["--tasks", "toy", "--min-pixels", "900", "--max-pixels", "100"],
            "error: --min-pixels 900 is above --max-pixels 100",
        ),
        (
            ["--tasks", "toy", "--resume", "--no-resume"],
            "error: --resume and --no-resume contradict each other; give one of them",
        ),
    ],
)
def test_bad_flags_exit_2_before_the_model_loads(env, capsys, flags, message):
    code, out, err = run_cli([*env["base"], *flags], capsys)
    assert (code, err) == (2, message)
    assert env["runners"] == [] and not env["out"].exists()


def test_output_dir_that_is_a_file(env, capsys, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    argv = [*env["base"][:-1], str(blocker / "sub"), "--tasks", "toy"]
    code, _, err = run_cli(argv, capsys)
    assert (code, err) == (
        2,
        f"error: --output-dir {blocker / 'sub'}: {blocker} is a file, not a folder",
    )
    assert env["runners"] == []


def test_error_text_is_printed_without_markup(env, capsys):
    code, _, err = run_cli([*env["base"], "--tasks", "data[v2]"], capsys)
    assert code == 2 and err.startswith("error: unknown task 'data[v2]'.")


def test_results_json_merges_tasks_of_runs_on_subsets(env, capsys, toy_task):
    from qwenvl_eval import registry

    registry.register_task("toy2")(type("Toy2", (toy_task,), {}))
    try:
        assert run_cli([*env["base"], "--tasks", "toy,toy2"], capsys)[0] == 0
        first = results(env)["tasks"]
        env["answer"] = lambda r: "x"  # a later, worse model answer for toy only
        assert run_cli([*env["base"], "--tasks", "toy", "--no-resume"], capsys)[0] == 0
        merged = results(env)["tasks"]
        assert list(merged) == ["toy", "toy2"]
        assert merged["toy2"] == first["toy2"]  # carried over untouched
        assert first["toy"]["metrics"] == {"exact": 50.0}
        assert merged["toy"]["metrics"] == {"exact": 0.0}
        # rescoring the merged directory covers both tasks
        (run_dir,) = env["out"].iterdir()
        again = app.rescore(run_dir)
        assert list(again.results["tasks"]) == ["toy", "toy2"]
    finally:
        registry._TASKS.pop("toy2", None)


def test_data_dir_spellings_share_one_run_directory(env, capsys):
    root = str(env["root"])
    assert run_cli([*env["base"], "--tasks", "toy"], capsys)[0] == 0
    base = [a if a != root else root + "/" for a in env["base"]]
    assert run_cli([*base, "--tasks", "toy"], capsys)[0] == 0
    assert len(list(env["out"].iterdir())) == 1
    assert env["runners"][1].seen == []  # the second spelling resumed everything


def test_rescore_names_file_line_item_and_field_of_a_bad_score(env, capsys, caplog):
    assert run_cli([*env["base"], "--tasks", "toy"], capsys)[0] == 0
    (run_dir,) = env["out"].iterdir()
    path = run_dir / "toy.predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    row = json.loads(lines[2])
    row["score"] = "1.0"
    lines[2] = json.dumps(row) + "\n"
    path.write_text("".join(lines))
    kept = path.read_bytes()
    code, _, err = run_cli(["rescore", str(run_dir)], capsys)
    assert (code, err) == (
        2,
        f"error: {path}, line 3: item q2, field 'score': expected an object of numbers, got str",
    )
    assert path.read_bytes() == kept  # nothing rewritten
    # a run (which can recompute) reports the line, sets it aside and answers the item again
    code, _, err = run_cli([*env["base"], "--tasks", "toy"], capsys)
    assert code == 0
    assert (
        f"{path}, line 3: item q2, field 'score': expected an object of numbers, got str; "
        "the line is set aside and the item computed again"
    ) in caplog.messages  # on stderr outside pytest, which takes the log over
    assert env["runners"][1].seen == ["q2"]
    assert len(predictions(env)) == 6
    aside = json.loads((run_dir / "toy.rejected.jsonl").read_text())
    assert aside["line"] == 3 and '"score": "1.0"' in aside["raw"]


def test_model_path_with_brackets_prints_as_is(env, capsys, tmp_path):
    model = tmp_path / "Qwen[v2]"
    (tmp_path / "My-Qwen2-VL").rename(model)
    argv = [a if not a.endswith("My-Qwen2-VL") else str(model) for a in env["base"]]
    code, out, _ = run_cli([*argv, "--tasks", "toy"], capsys)
    assert code == 0
    flat = "".join(out.split())  # rich wraps long lines anywhere
    assert f"{model}(fake,fp32)" in flat and f"results:{env['out']}/Qwen_v2-" in flat
