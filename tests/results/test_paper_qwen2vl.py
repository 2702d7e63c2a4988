"""`table --paper qwen2vl-image`: the Qwen2-VL report's image table (arXiv 2409.12191, Table 2)
from the package data, planted runs compared with the published row of their model size,
every non-percentage column in the report's units, split and protocol differences footnoted."""

from __future__ import annotations

import json
import math

import pytest

from qwenvl_eval import registry
from qwenvl_eval.results.paper import paper_table, published
from qwenvl_eval.results.render import render
from qwenvl_eval.results.runs import load_run
from tests.results.plant import plant_run
from tests.results.test_table_formats import _article, _pdflatex, needs_pdflatex
from tests.test_cli import run_cli

NAME = "qwen2vl-image"

# A Qwen2-VL-7B run on the report's protocol, each task's metrics as the task writes them
# (first = the run's headline). MME's headline is perception; the report prints the sum.
MEASURED_7B = {
    "mmmu_val": {"acc": 52.0},
    "ocrbench": {"final_score": 850.0, "acc": 85.0},
    "mme": {"perception": 1650.0, "cognition": 640.5, "total": 2290.5, "acc": 80.0},
    "hallusionbench": {"overall": 49.1, "aAcc": 70.0, "fAcc": 40.0, "qAcc": 37.3},
    "mmbench_dev_en": {"circular_acc": 81.0, "acc": 86.0},
    "mmbench_dev_cn": {"circular_acc": 78.5, "acc": 84.0},
    "mmbench_v11_dev_en": {"circular_acc": 79.25, "acc": 85.0},
    "infovqa": {"anls": 75.0},
    "mathvista_testmini": {"acc": 60.7},
}


def _row(table, label):
    return list(table.values.index).index(label)


def _notes(table, row, col=None):
    keys = table.row_marks.get(row, []) if col is None else table.marks.get((row, col), [])
    return [table.notes[k] for k in keys]


def _run(tmp_path, name, **kw):
    return load_run(plant_run(tmp_path / name, **kw))


def test_published_rows_and_their_sources():
    spec = published()["tables"][NAME]
    rows = {r["model"]: r for r in spec["rows"]}
    assert list(rows) == [
        "Previous SoTA", "Claude-3.5 Sonnet", "GPT-4o", "Qwen2-VL-72B", "Qwen2-VL-7B",
        "Qwen2-VL-2B",
    ]  # fmt: skip
    for r in spec["rows"]:
        assert r["source"].startswith("Qwen2-VL report (arXiv 2409.12191 v2), Table 2")
    v72, v7, v2 = (rows[m]["values"] for m in ("Qwen2-VL-72B", "Qwen2-VL-7B", "Qwen2-VL-2B"))
    assert (v72["mmmu_val"], v7["mmmu_val"], v2["mmmu_val"]) == (64.5, 54.1, 41.1)
    assert (v72["ocrbench"], v7["ocrbench"], v2["ocrbench"]) == (877.0, 866.0, 809.0)
    assert (v72["mme"], v7["mme"], v2["mme"]) == (2482.7, 2326.8, 1872.0)
    assert (v72["hallusionbench"], v7["hallusionbench"], v2["hallusionbench"]) == (58.1, 50.6, 41.7)
    assert rows["GPT-4o"]["values"]["mathvista_testmini"] == 63.8
    # the report's MMBench-CN and MMBench-V1.1 test rows (the official README agrees)
    for task, want in {
        "mmbench_dev_cn": (86.3, 80.7, 82.1, 86.6, 80.5, 73.5),
        "mmbench_v11_dev_en": (85.5, 78.5, 82.2, 85.9, 80.7, 72.2),
    }.items():
        assert tuple(r["values"][task] for r in spec["rows"]) == want, task
        assert not any(task in r.get("cell_notes", {}) for r in spec["rows"]), task
    assert "MMBench" not in spec["note"]  # no longer among the rows left out
    assert "infovqa" not in rows["Claude-3.5 Sonnet"]["values"]  # the report prints '-'
    # where the official README disagrees, the cell says so rather than hiding it
    assert "gives 845" in rows["Qwen2-VL-7B"]["cell_notes"]["ocrbench"]
    assert "gives 794" in rows["Qwen2-VL-2B"]["cell_notes"]["ocrbench"]
    assert "gives 58.3" in rows["Previous SoTA"]["cell_notes"]["mmmu_val"]


def test_every_column_names_a_metric_its_task_declares():
    """The column's metric must be one the task writes, else every measured cell is '-'."""
    for col in published()["tables"][NAME]["columns"]:
        task = registry.get_task(col["task"])
        metric = col.get("metric", task.metrics[0])
        assert metric in task.metrics, (col["task"], metric, task.metrics)


def test_units_of_the_report_and_every_delta_against_qwen2_vl_7b(tmp_path):
    run = _run(tmp_path, "7b", model="Qwen/Qwen2-VL-7B-Instruct", family="qwen2-vl",
               metrics=MEASURED_7B)  # fmt: skip
    table = paper_table(NAME, [run])
    i = _row(table, "Qwen/Qwen2-VL-7B-Instruct (ours)")
    assert table.values.index[i + 1].strip() == "vs Qwen2-VL-7B"
    ours, delta = table.values.iloc[i], table.values.iloc[i + 1]
    expected = {
        "MMMU val": (52.0, 52.0 - 54.1),
        "OCRBench": (850.0, 850.0 - 866.0),  # acc 85.0 x 10: items right out of 1000
        "MME sum": (2290.5, 2290.5 - 2326.8),  # perception + cognition, not the headline
        "HallBench avg": (49.1, 49.1 - 50.6),
        "MMBench-EN dev": (81.0, 81.0 - 83.0),  # CircularEval, not the per-rotation acc
        "MMBench-CN dev": (78.5, 78.5 - 80.5),
        "MMBench-V1.1 dev": (79.25, 79.25 - 80.7),
        "InfoVQA val": (75.0, 75.0 - 76.5),
        "MathVista testmini": (60.7, 60.7 - 58.2),
    }
    for col, (value, diff) in expected.items():
        assert ours[col] == pytest.approx(value, abs=1e-9), col
        assert delta[col] == pytest.approx(diff, abs=1e-9), col
    for col in ("AI2D test", "ChartQA test", "RealWorldQA"):
        assert math.isnan(ours[col]) and table.text(i + 1, col) == "-"
    assert table.text(i + 1, "OCRBench") == "-16.00"
    assert table.text(i + 1, "MathVista testmini") == "+2.50"
    assert table.text(i + 1, "MMBench-CN dev") == "-2.00"
    assert table.text(i + 1, "MMBench-V1.1 dev") == "-1.45"
    assert not _notes(table, i)  # the report's protocol: nothing to mark
    # a measured cell on the report's protocol is ranked among the measured rows only
    assert (i, "MME sum") not in table.unranked


def test_ocrbench_under_limit_is_still_out_of_1000(tmp_path):
    """On 100 of OCRBench's 1000 items final_score is 80 (a count); the cell shows 800."""
    run = _run(tmp_path, "lim", model="qwen2-vl-2b", family="qwen2-vl", limit=100,
               metrics={"ocrbench": {"final_score": 80.0, "acc": 80.0}})  # fmt: skip
    table = paper_table(NAME, [run])
    i = _row(table, "qwen2-vl-2b (ours)")
    assert table.values.iloc[i]["OCRBench"] == 800.0
    assert table.values.iloc[i + 1]["OCRBench"] == pytest.approx(800.0 - 809.0)
    assert _notes(table, i) == ["qwen2-vl-2b: --limit 100 (100 items per split)"]
    assert (i, "OCRBench") in table.unranked


@pytest.mark.parametrize(
    "model, ref",
    [
        ("qwen2-vl-2b", "Qwen2-VL-2B"),
        ("/models/Qwen2-VL-72B-Instruct", "Qwen2-VL-72B"),
        ("Qwen/Qwen2-VL-7B-Instruct", "Qwen2-VL-7B"),
    ],
)
def test_each_run_is_compared_with_its_model_size(tmp_path, model, ref):
    run = _run(tmp_path, "r", model=model, family="qwen2-vl", metrics={"mmstar": {"acc": 50.0}})
    table = paper_table(NAME, [run])
    i = _row(table, f"{run.label} (ours)")
    assert table.values.index[i + 1].strip() == f"vs {ref}"
    want = {"Qwen2-VL-2B": 48.0, "Qwen2-VL-7B": 60.7, "Qwen2-VL-72B": 68.3}[ref]
    assert table.values.iloc[i + 1]["MMStar"] == pytest.approx(50.0 - want)


def test_a_model_without_a_published_row_gets_no_delta_and_says_why(tmp_path):
    run = _run(tmp_path, "o", model="llava-1.5-7b", family="qwen2-vl",
               metrics={"mmstar": {"acc": 50.0}})  # fmt: skip
    table = paper_table(NAME, [run])
    i = _row(table, "llava-1.5-7b (ours)")
    assert table.values.index[i + 1].strip() == "vs -"
    assert table.values.iloc[i]["MMStar"] == 50.0
    assert math.isnan(table.values.iloc[i + 1]["MMStar"])
    (note,) = _notes(table, i + 1)
    assert "no published row" in note and "qwen2-vl-7b" in note


def test_protocol_differences_are_one_note_per_run(tmp_path):
    paper_tasks = _run(tmp_path, "d", model="qwen2-vl-7b", family="qwen2-vl",
                       metrics={"docvqa": {"anls": 90.0}, "mmstar": {"acc": 60.0}})  # fmt: skip
    other_family = _run(tmp_path, "q", model="Qwen/Qwen-VL-Chat", family="qwen-vl-chat",
                        metrics={"mmstar": {"acc": 40.0}})  # fmt: skip
    table = paper_table(NAME, [paper_tasks, other_family])
    i = _row(table, "qwen2-vl-7b (ours)")
    (note,) = _notes(table, i)
    # DocVQA is the harness's Qwen-VL-paper task (the column's fallback): said once, naming the
    # column; MMStar is not
    assert note.startswith("qwen2-vl-7b: DocVQA val: the run has no docvqa_qwen2vl")
    assert "asked the Qwen-VL paper's way" in note
    assert table.values.iloc[i]["DocVQA val"] == 90.0
    assert "MMStar" not in note
    assert (i, "DocVQA val") in table.unranked and (i, "MMStar") not in table.unranked
    j = _row(table, "Qwen/Qwen-VL-Chat (ours)")
    assert _notes(table, j) == [
        "Qwen/Qwen-VL-Chat: prompt family qwen-vl-chat (the published figures are of the "
        "qwen2-vl family)"
    ]
    assert table.values.index[j + 1].strip() == "vs -"


def test_published_splits_and_units_are_footnoted():
    table = paper_table(NAME, [])
    q7 = _row(table, "Qwen2-VL-7B")
    for col, words in {
        "DocVQA val": "DocVQA figures are on the test split",
        "InfoVQA val": "InfographicVQA figures are on the test split",
        "MMBench-EN dev": "MMBench-EN figures are on the test split",
        "MMBench-CN dev": "MMBench-CN figures are on the test split",
        "MMBench-V1.1 dev": "MMBench-V1.1 figures are on the test split",
    }.items():
        assert any(words in n for n in _notes(table, q7, col)), col
    assert not _notes(table, q7, "MMStar")
    footer = "\n".join(table.footer)
    assert "OCRBench: the report's score is items right out of 1000" in footer
    assert "MME sum: the report's MME sum is perception" in footer
    assert "HallBench avg:" in footer and "mean of aAcc, fAcc and qAcc" in footer
    for col in ("MMBench-EN dev", "MMBench-CN dev", "MMBench-V1.1 dev"):
        assert f"{col}: CircularEval accuracy" in footer, col
    labels = list(table.values.columns)
    i = labels.index("MMBench-EN dev")
    assert labels[i : i + 4] == ["MMBench-EN dev", "MMBench-CN dev", "MMBench-V1.1 dev", "MMStar"]
    sota = _row(table, "Previous SoTA")
    assert "(Chen et al., 2024c)" in _notes(table, sota)[0]
    claude = _row(table, "Claude-3.5 Sonnet")
    assert table.text(claude, "AI2D test") == "80.2 (94.7)"
    assert table.values.iloc[claude]["AI2D test"] == 80.2


def test_markdown_has_the_published_rows_measured_row_and_deltas(tmp_path, capsys):
    path = plant_run(tmp_path / "7b", model="qwen2-vl-7b", family="qwen2-vl", metrics=MEASURED_7B)
    out = tmp_path / "t.md"
    code, _, err = run_cli(["table", "--paper", NAME, str(path), "-o", str(out)], capsys)
    assert code == 0, err
    md = out.read_text()
    assert "Qwen2-VL report, Table 2: image benchmarks" in md
    lines = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("|")}
    row72 = [c.strip() for c in lines["Qwen2-VL-72B"].split("|")[2:-1]]
    assert row72[:2] == ["64.50", "**96.50** [c]"] and "**877.00**" in row72
    assert "**2482.70**" in row72
    ours = [c.strip() for c in lines["qwen2-vl-7b (ours)"].split("|")[2:-1]]
    assert ours[0] == "52.00" and "850.00" in ours and "2290.50" in ours
    deltas = [c.strip() for c in lines["vs Qwen2-VL-7B"].split("|")[2:-1]]
    assert deltas[0] == "-2.10" and "-16.00" in deltas and "-36.30" in deltas
    assert "published rows: Qwen2-VL report (arXiv 2409.12191 v2), Table 2" in md


@needs_pdflatex
def test_latex_compiles_and_fits_a_standard_article(tmp_path):
    runs = [
        _run(tmp_path, "7b", model="qwen2-vl-7b", family="qwen2-vl", metrics=MEASURED_7B),
        _run(tmp_path, "cn", model="通义千问2-VL-2B 复现 😀", family="qwen2-vl", limit=8,
             metrics={"ocrbench": {"final_score": 6.0, "acc": 75.0}}),
    ]  # fmt: skip
    tex = render(paper_table(NAME, runs), "latex")
    log = _pdflatex(tmp_path, _article(tex))
    assert "Overfull \\hbox" not in log
    for model in ("Previous SoTA", "Claude-3.5 Sonnet", "GPT-4o", "Qwen2-VL-72B"):
        assert any(ln.startswith(model) for ln in tex.splitlines()), model
    assert "$-$16.00" in tex and "2482.70" in tex and "-{}-limit 8" in tex


def test_the_report_protocol_task_wins_over_the_paper_task(tmp_path):
    both = _run(tmp_path, "b", model="qwen2-vl-7b", family="qwen2-vl",
                metrics={"docvqa_qwen2vl": {"anls": 93.0}, "docvqa": {"anls": 80.0}})  # fmt: skip
    table = paper_table(NAME, [both])
    i = _row(table, "qwen2-vl-7b (ours)")
    assert table.values.iloc[i]["DocVQA val"] == 93.0
    assert table.values.iloc[i + 1]["DocVQA val"] == pytest.approx(93.0 - 94.5)
    assert not _notes(table, i)
    assert (i, "DocVQA val") not in table.unranked


def _with_infovqa_test(run_dir):
    """A run whose infovqa_test wrote its submission file (no metrics), as results.json has it."""
    data = json.loads((run_dir / "results.json").read_text())
    data["tasks"]["infovqa_test"] = {
        "task": "infovqa_test", "metrics": {}, "counts": {"items": 3288, "errors": 0},
        "prompt_hash": "0" * 16, "submission_file": "infovqa_test.submission.json",
    }  # fmt: skip
    (run_dir / "results.json").write_text(json.dumps(data))
    return run_dir


def test_infovqa_cell_is_the_recorded_server_score_of_infovqa_test(tmp_path, capsys):
    run = _with_infovqa_test(plant_run(tmp_path / "s", model="qwen2-vl-7b", family="qwen2-vl",
                                       metrics={"mmstar": {"acc": 60.0}}))  # fmt: skip
    table = paper_table(NAME, [load_run(run)])
    i = _row(table, "qwen2-vl-7b (ours)")
    assert table.text(i, "InfoVQA val") == "submission written: infovqa_test.submission.json"
    code, _, err = run_cli(
        ["submission", "record", str(run), "--task", "infovqa_test", "--score", "76.1",
         "--source", "RRC InfographicVQA submission 4321"], capsys,
    )  # fmt: skip
    assert code == 0, err
    table = paper_table(NAME, [load_run(run)])
    assert table.values.iloc[i]["InfoVQA val"] == 76.1
    assert table.values.iloc[i + 1]["InfoVQA val"] == pytest.approx(76.1 - 76.5)
    (note,) = _notes(table, i, "InfoVQA val")
    assert note.startswith("InfoVQA val: infovqa_test scored by the evaluation server")
    assert "RRC InfographicVQA submission 4321" in note


def test_the_measured_val_figure_wins_over_the_server_score(tmp_path, capsys):
    run = _with_infovqa_test(plant_run(tmp_path / "b", model="qwen2-vl-7b", family="qwen2-vl",
                                       metrics={"infovqa": {"anls": 75.0}}))  # fmt: skip
    code, _, err = run_cli(["submission", "record", str(run), "--task", "infovqa_test",
                            "--score", "76.1", "--source", "RRC 1"], capsys)  # fmt: skip
    assert code == 0, err
    table = paper_table(NAME, [load_run(run)])
    i = _row(table, "qwen2-vl-7b (ours)")
    assert table.values.iloc[i]["InfoVQA val"] == 75.0
    assert not _notes(table, i, "InfoVQA val")
