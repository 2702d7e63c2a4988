"""`qwenvl-eval table`: one builder, every format golden-tested; LaTeX compiled by pdflatex."""

from __future__ import annotations

import csv
import io
import json
import math
import re
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


def _article(body: str) -> str:
    """A standard one-column article (10pt, letter, default margins): what the tables must fit."""
    return (
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n"
        "\\usepackage{booktabs,graphicx}\n\\usepackage{CJKutf8}\n\\begin{document}\n"
        + body
        + "\n\\end{document}\n"
    )


def _pdflatex(tmp_path: Path, doc: str) -> str:
    """Compile with the real pdflatex; the log, after asserting a PDF came out."""
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").read_bytes()[:5] == b"%PDF-"
    return (tmp_path / "t.log").read_text(errors="replace")


def _has_cjk() -> bool:
    if shutil.which("kpsewhich") is None:
        return False
    found = subprocess.run(["kpsewhich", "CJKutf8.sty"], capture_output=True, text=True)
    return bool(found.stdout.strip())


needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None or not _has_cjk(),
    reason="pdflatex or CJKutf8 not installed (.ci/run installs both)",
)


def _paper_runs(tmp_path):
    """Two runs as a researcher has them: one on the paper's protocol, one with --limit, a
    Chinese model name, a negative delta; each touching every paper table."""
    tasks = {
        "nocaps": {"CIDEr": 120.0}, "okvqa": {"vqa_acc": 57.0}, "vizwiz": {"vqa_acc": 30.0},
        "textvqa": {"vqa_acc": 60.0}, "docvqa": {"anls": 61.0},
        "refcoco_val": {"acc@0.5": 88.0}, "refcocog_test": {"acc@0.5": 86.0},
        "okvqa_4shot": {"vqa_acc": 61.0},
    }  # fmt: skip
    a = plant_run(tmp_path / "a", model="Qwen/Qwen-VL", metrics=tasks)
    b = plant_run(tmp_path / "b", model="通义千问-VL 复现 😀", limit=8, metrics=tasks)
    data = json.loads((b / "results.json").read_text())
    for entry in data["tasks"].values():
        entry["counts"]["items"] = 8
    (b / "results.json").write_text(json.dumps(data))
    return [load_run(a), load_run(b)]


@needs_pdflatex
@pytest.mark.parametrize("name", ["table4", "table5", "table6", "figure4"])
def test_paper_latex_fits_a_standard_article_with_every_published_row(tmp_path, name):
    from qwenvl_eval.results.paper import paper_table, published

    tex = render(paper_table(name, _paper_runs(tmp_path)), "latex")
    log = _pdflatex(tmp_path, _article(tex))
    assert "Overfull \\hbox" not in log
    rows = [
        re.sub(r"\\textsuperscript\{[^}]*\}", "", ln.split(" & ", 1)[0])
        for ln in tex.splitlines()
        if " & " in ln
    ]
    for r in published()["tables"][name]["rows"]:
        if name == "figure4":
            assert any(x.startswith(r["model"]) for x in rows), r["model"]
        else:
            assert r["model"] in rows, r["model"]
    # `--limit` is two hyphens in the PDF, a negative delta a minus sign, not a hyphen
    assert "-{}-limit 8" in tex and "--limit" not in tex
    if name != "figure4":
        assert "$-$" in tex
    assert "\\begin{CJK}{UTF8}{gbsn}通义千问\\end{CJK}" in tex and "[U+1F600]" in tex


@needs_pdflatex
def test_runs_latex_compiles_with_pdflatex(two_runs, tmp_path):
    runs = [load_run(p) for p in two_runs]
    log = _pdflatex(tmp_path, _article(render(runs_table(runs, all_metrics=True), "latex")))
    assert "Overfull \\hbox" not in log


def test_one_footnote_per_run_not_per_cell(tmp_path):
    from qwenvl_eval.results.paper import paper_table

    for name in ("table4", "table6"):
        table = paper_table(name, _paper_runs(tmp_path))
        ours = [k for k, v in table.notes.items() if v.startswith("通义千问")]
        assert len(ours) == 1, table.notes
        assert "all cells of this row: --limit 8 (8 items per split)" in table.notes[ours[0]]
        assert not any(
            key in ours for keys in table.marks.values() for key in keys
        )  # on the row's label, not on its cells


def test_hostile_names_in_markdown_csv_json(tmp_path):
    a = plant_run(tmp_path / "a", model="evil | name\nnext", metrics={"okvqa": {"vqa_acc": 1.0}})
    b = plant_run(
        tmp_path / "b", model='=HYPERLINK("http://x")', metrics={"okvqa": {"vqa_acc": 2.0}}
    )
    c = plant_run(tmp_path / "c", model="@SUM(A1)", metrics={"okvqa": {"vqa_acc": math.inf}})
    table = runs_table([load_run(p) for p in (a, b, c)])
    md = render(table, "markdown")
    body = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert all(ln.count("|") - ln.count("\\|") == 3 for ln in body), md
    assert "evil \\| name next" in md
    rows = list(csv.reader(io.StringIO(render(table, "csv"))))
    labels = [r[0] for r in rows[1:]]
    assert labels == ["evil | name next", '\'=HYPERLINK("http://x")', "'@SUM(A1)"] or labels[
        1:
    ] == [
        '\'=HYPERLINK("http://x")',
        "'@SUM(A1)",
    ]
    doc = json.loads(render(table, "json"))  # strict JSON: no Infinity
    cell = doc["rows"][2]["cells"]["okvqa"]
    assert cell == {"value": None, "text": "inf"}
    assert "Infinity" not in render(table, "json") and "NaN" not in render(table, "json")
    neg = plant_run(tmp_path / "n", model="-1+1", metrics={"okvqa": {"vqa_acc": 3.0}})
    rows = list(csv.reader(io.StringIO(render(runs_table([load_run(neg)]), "csv"))))
    assert rows[1][0] == "'-1+1" and rows[1][2] == "3.0000"  # numbers stay numbers


def test_table_output_at_a_directory_is_one_line(two_runs, tmp_path, capsys):
    code, _, err = run_cli(["table", *map(str, two_runs), "-o", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["table4", "table5", "table6", "qwen2vl-image"])
def test_terminal_at_80_columns_never_cuts_numbers(tmp_path, name):
    from rich.console import Console

    from qwenvl_eval.results.paper import paper_table
    from qwenvl_eval.results.render import to_rich

    table = paper_table(name, _paper_runs(tmp_path))
    console = Console(width=80, record=True)
    with console.capture() as cap:
        console.print(to_rich(table, width=80))
    text = cap.get()
    assert "…" not in text and max(len(ln) for ln in text.splitlines()) <= 80
    for i in range(len(table.values)):
        for c in table.values.columns:
            cell = table.text(i, c)
            if cell != "-" and (i, c) not in table.cell_text:
                assert cell in text, (table.values.index[i], c, cell)


def test_tasks_list_at_80_columns_keeps_names(capsys, monkeypatch):
    from qwenvl_eval import cli

    monkeypatch.setattr(cli, "out", __import__("rich.console").console.Console(width=80))
    code, stdout, _ = run_cli(["tasks"], capsys)
    assert code == 0 and "…" not in stdout
    joined = "".join(stdout.split())
    assert "refcoco+_testA" in joined.replace("│", "") or "refcoco+_testA" in stdout
