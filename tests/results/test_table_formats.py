"""`qwenvl-eval table`: one builder, every format golden-tested; LaTeX compiled by pdflatex."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qwenvl_eval.results.render import FORMATS, render
from qwenvl_eval.results.runs import load_run
from qwenvl_eval.results.scoretable import runs_table
from tests.results.plant import plant_run
from tests.test_cli import run_cli

GOLDEN = Path(__file__).parent / "golden"
EXT = {"markdown": "md", "latex": "tex", "csv": "csv", "html": "html", "json": "json"}


@pytest.fixture()
def two_runs(tmp_path):
    a = plant_run(
        tmp_path / "a",
        model="model-a",
        metrics={
            "zzz_custom": {"acc": 12.5},
            "refcoco_val": {"acc@0.5": 80.0, "miou": 70.0, "parse_failures": 3.0},
            "okvqa": {"vqa_acc": 58.6, "vqa_acc_official": 57.0},
        },
    )
    b = plant_run(
        tmp_path / "b",
        model="model_b & co",  # characters LaTeX and HTML must escape
        metrics={
            "textvqa": {"vqa_acc": 40.0, "vqa_acc_official": 39.0},
            "okvqa": {"vqa_acc": 60.25, "vqa_acc_official": 56.0},
            "refcoco_val": {"acc@0.5": 85.5, "miou": 65.0, "parse_failures": 5.0},
        },
    )
    return [a, b]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("all_metrics", [False, True])
def test_every_format_matches_its_golden_file(two_runs, fmt, all_metrics):
    table = runs_table([load_run(p) for p in two_runs], all_metrics=all_metrics)
    name = f"runs{'_all' if all_metrics else ''}.{EXT[fmt]}"
    assert render(table, fmt) == (GOLDEN / name).read_text()


def test_columns_in_paper_order_best_marked_missing_dash(two_runs):
    table = runs_table([load_run(p) for p in two_runs])
    assert list(table.values.columns) == ["okvqa", "textvqa", "refcoco_val", "zzz_custom"]
    assert table.best() == {(1, "okvqa"), (1, "refcoco_val")}  # one row only: no best
    assert table.text(0, "textvqa") == "-" and table.text(1, "zzz_custom") == "-"
    full = runs_table([load_run(p) for p in two_runs], all_metrics=True)
    # fewer parse failures is better
    assert (0, "refcoco_val parse_failures") in full.best()
    assert (1, "refcoco_val miou") not in full.best() and (0, "refcoco_val miou") in full.best()


def test_cli_table_and_leaderboard_alias(two_runs, tmp_path, capsys):
    out = tmp_path / "t.tex"
    code, _, err = run_cli(["table", *map(str, two_runs), "-f", "latex", "-o", str(out)], capsys)
    assert code == 0, err
    assert out.read_text() == (GOLDEN / "runs.tex").read_text()
    code, stdout, _ = run_cli(["leaderboard", *map(str, two_runs)], capsys)
    assert code == 0 and stdout == (GOLDEN / "runs.md").read_text() + "\n"
    code, stdout, _ = run_cli(["table", *map(str, two_runs)], capsys)  # the terminal
    assert code == 0 and "model_b & co" in stdout and "60.25" in stdout


def _latex_checks(tex: str) -> None:
    """What pdflatex would choke on, checked without TeX: balanced braces, one tabular with
    booktabs rules in order, every row with the header's column count."""
    depth = 0
    for i, ch in enumerate(tex):
        if ch == "{" and tex[i - 1] != "\\":
            depth += 1
        elif ch == "}" and tex[i - 1] != "\\":
            depth -= 1
        assert depth >= 0
    assert depth == 0
    body = tex[tex.index(r"\begin{tabular}") : tex.index(r"\end{tabular}")]
    rules = [r for r in (r"\toprule", r"\midrule", r"\bottomrule") if r in body]
    assert rules == [r"\toprule", r"\midrule", r"\bottomrule"]
    assert body.index(r"\toprule") < body.index(r"\midrule") < body.index(r"\bottomrule")
    spec = body[len(r"\begin{tabular}{") :].split("}", 1)[0]
    rows = [ln for ln in body.splitlines() if ln.endswith(r"\\")]
    for row in rows:
        assert row.replace(r"\&", "").count("&") == len(spec) - 1, row


def test_latex_structure(two_runs):
    tex = render(runs_table([load_run(p) for p in two_runs], all_metrics=True), "latex")
    _latex_checks(tex)
    assert r"model\_b \& co" in tex and r"\textbf{60.25}" in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (.ci/run)")
def test_latex_compiles_with_pdflatex(two_runs, tmp_path):
    from qwenvl_eval.results.paper import paper_table

    runs = [load_run(p) for p in two_runs]
    parts = [render(runs_table(runs, all_metrics=True), "latex")]
    parts += [render(paper_table(n, runs), "latex") for n in ("table4", "table6", "figure4")]
    doc = (
        "\\documentclass{article}\n\\usepackage[a3paper,landscape,margin=1cm]{geometry}\n"
        "\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\begin{document}\n"
        + "\n\\bigskip\n".join(parts)
        + "\n\\end{document}\n"
    )
    (tmp_path / "t.tex").write_text(doc)
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").read_bytes()[:5] == b"%PDF-"
