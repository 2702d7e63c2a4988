"""`table --paper`: published rows from the package data, planted runs, every delta checked,
protocol differences marked, eval_mm's dropped grounding items stated per split."""

from __future__ import annotations

import math
import re

import pytest
from PIL import Image

from qwenvl_eval.results.paper import paper_table, published
from qwenvl_eval.results.render import render
from qwenvl_eval.results.runs import load_run
from tests.results.plant import plant_run
from tests.test_cli import run_cli

T4 = ["NoCaps", "Flickr30K", "VQAv2 test-dev", "OKVQA", "GQA", "SciQA-Img", "VizWiz"]


def _row(table, label):
    return list(table.values.index).index(label)


def test_published_rows_carry_their_source():
    data = published()["tables"]
    assert {r["model"] for r in data["table4"]["rows"]} >= {"Qwen-VL", "Qwen-VL-Chat"}
    for spec in data.values():
        for r in spec["rows"]:
            assert r["source"].startswith("Qwen-VL")
    qwen = next(r for r in data["table6"]["rows"] if r["model"] == "Qwen-VL")
    assert qwen["values"]["refcoco_val"] == 89.36 and qwen["values"]["refcocog_test"] == 85.48


def test_table4_every_delta_against_the_published_qwen_vl(tmp_path):
    run = plant_run(
        tmp_path / "ours",
        model="Qwen/Qwen-VL",
        metrics={
            "nocaps": {"CIDEr": 120.0},
            "flickr30k": {"CIDEr": 86.3},
            "okvqa": {"vqa_acc": 58.1},
            "gqa": {"acc": 59.3},
            "scienceqa_img": {"acc": 66.0},
            "vizwiz": {"vqa_acc": 36.45},
        },
    )
    table = paper_table("table4", [load_run(run)])
    i = _row(table, "Qwen/Qwen-VL (ours)")
    assert table.kinds[i : i + 2] == ["measured", "delta"]
    expected = [-1.4, 0.5, None, -0.5, 0.0, -1.1, 1.25]
    for col, want in zip(T4, expected, strict=True):
        got = table.values.iloc[i + 1][col]
        if want is None:
            assert math.isnan(got) and table.text(i + 1, col) == "-"
        else:
            assert got == pytest.approx(want, abs=1e-9), col
    assert table.text(i + 1, "NoCaps") == "-1.40" and table.text(i + 1, "VizWiz") == "+1.25"
    assert not table.marks.get((i, "OKVQA"))  # the paper's protocol: nothing to mark
    md = render(table, "markdown")
    assert "| Qwen/Qwen-VL (ours) |" in md.replace("  ", " ") or "Qwen/Qwen-VL (ours)" in md
    assert "published rows: Qwen-VL paper (arXiv 2308.12966 v3), Table 4" in md
    # the README's other VQAv2 figure is noted on the published cell
    q = _row(table, "Qwen-VL")
    (key,) = table.marks[(q, "VQAv2 test-dev")]
    assert table.notes[key] == "Qwen-VL: the official README gives 78.8"


def test_chat_run_is_compared_with_qwen_vl_chat_and_limit_is_marked(tmp_path):
    run = plant_run(
        tmp_path / "chat",
        model="qwen-vl-chat",
        family="qwen-vl-chat",
        metrics={"textvqa": {"vqa_acc": 62.0}, "docvqa": {"anls": 60.1}},
        limit=100,
    )
    table = paper_table("table5", [load_run(run)])
    i = _row(table, "qwen-vl-chat (ours)")
    assert table.values.index[i + 1].strip() == "vs Qwen-VL-Chat"
    assert table.values.iloc[i + 1]["TextVQA"] == pytest.approx(62.0 - 61.5)
    assert table.values.iloc[i + 1]["DocVQA"] == pytest.approx(60.1 - 62.6)
    for row in (i, i + 1):
        (key,) = table.marks[(row, "TextVQA")]
        assert table.notes[key] == "qwen-vl-chat: --limit 100, scored 100 of 5000 items"
    assert "[a]" in render(table, "markdown")


def test_other_protocols_are_marked_with_the_reason(tmp_path):
    chat_family = plant_run(
        tmp_path / "q2",
        model="qwen2-vl-7b",
        family="qwen2-vl",
        metrics={"okvqa": {"vqa_acc": 50.0}},
    )
    gen = plant_run(
        tmp_path / "gen",
        model="gen-run",
        metrics={"okvqa": {"vqa_acc": 50.0}, "gqa": {"acc": 50.0}},
        generation={
            "okvqa": {
                "max_new_tokens": 20,
                "min_new_tokens": 1,
                "length_penalty": 1.0,
                "num_beams": 1,
                "do_sample": False,
                "stop": [],
            }
        },
    )
    prompt = plant_run(
        tmp_path / "p",
        model="prompt-run",
        metrics={"okvqa": {"vqa_acc": 50.0}},
        prompt_hash={"okvqa": "deadbeefdeadbeef"},
    )
    table = paper_table("table4", [load_run(p) for p in (chat_family, gen, prompt)])

    def notes(label, col="OKVQA"):
        return [table.notes[k] for k in table.marks.get((_row(table, label), col), [])]

    assert notes("qwen2-vl-7b (ours)") == [
        "qwen2-vl-7b: prompt family qwen2-vl (the harness's own prompts, not the paper's raw "
        "prompts)"
    ]
    assert notes("gen-run (ours)") == ["gen-run: generation settings max_new_tokens=20 (paper 10)"]
    assert notes("gen-run (ours)", "GQA") == []  # its GQA followed the paper
    (msg,) = notes("prompt-run (ours)")
    assert msg.startswith("prompt-run: prompt differs from the paper's (prompt_hash deadbeef")


def test_table6_says_how_many_items_eval_mm_skipped_per_split(tmp_path):
    run = plant_run(
        tmp_path / "g",
        model="Qwen/Qwen-VL",
        metrics={"refcoco_val": {"acc@0.5": 89.0}, "refcocog_test": {"acc@0.5": 86.0}},
    )
    table = paper_table("table6", [load_run(run)])
    sizes = [10834, 5657, 5095, 10758, 5726, 4889, 4896, 9602]
    skipped = [18, 25, 39, 6, 30, 25, 32, 2]  # N mod 64
    q = _row(table, "Qwen-VL")
    for col, n, s in zip(table.values.columns, sizes, skipped, strict=True):
        (key,) = table.marks[(q, col)]
        assert f"eval_mm scored {n - s} of {n} items" in table.notes[key]
        assert f"skips the last {s})" in table.notes[key]
    i = _row(table, "Qwen/Qwen-VL (ours)")
    assert table.values.iloc[i + 1]["RefCOCO val"] == pytest.approx(89.0 - 89.36)
    assert table.values.iloc[i + 1]["RefCOCOg test"] == pytest.approx(86.0 - 85.48)
    assert table.marks[(i + 1, "RefCOCO val")] == table.marks[(q, "RefCOCO val")]
    assert (i + 1, "RefCOCO testA") not in table.marks  # no measured value there


def test_figure4_table_and_plot(tmp_path, capsys):
    r0 = plant_run(
        tmp_path / "0shot",
        model="Qwen/Qwen-VL",
        metrics={"okvqa": {"vqa_acc": 50.0}, "vizwiz": {"vqa_acc": 30.0}},
    )
    r4 = plant_run(
        tmp_path / "4shot",
        model="Qwen/Qwen-VL",
        metrics={"okvqa_4shot": {"vqa_acc": 60.0}, "vizwiz_4shot": {"vqa_acc": 41.0}},
    )
    table = paper_table("figure4", [load_run(r0), load_run(r4)])
    for task, deltas in {"okvqa": [-8.6, -3.6], "vizwiz": [-5.2, 1.9]}.items():
        i = _row(table, f"Qwen/Qwen-VL {task} (ours)")
        assert list(table.values.iloc[i + 1][["0-shot", "4-shot"]]) == pytest.approx(deltas)
        assert math.isnan(table.values.iloc[i + 1]["8-shot"])
    out = tmp_path / "fig" / "figure4.md"
    code, _, err = run_cli(
        ["table", "--paper", "figure4", str(r0), str(r4), "-o", str(out)], capsys
    )
    assert code == 0, err
    assert "OKVQA" not in out.read_text() and "Qwen/Qwen-VL okvqa (ours)" in out.read_text()
    assert_plot(out.with_suffix(".png"), out.with_suffix(".svg"), {"okvqa", "vizwiz"})


def assert_plot(png, svg, tasks):
    with Image.open(png) as im:
        im.verify()
        assert im.format == "PNG"
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert set(re.findall(r'<g id="line-([^"]+)"', text)) == tasks


def test_unknown_paper_table_is_a_usage_error(tmp_path, capsys):
    run = plant_run(tmp_path / "r", model="m", metrics={"okvqa": {"vqa_acc": 1.0}})
    code, _, err = run_cli(["table", "--paper", "table9", str(run)], capsys)
    assert code == 2 and "--paper: unknown table 'table9'" in " ".join(err.split())


def _golden_runs(tmp_path):
    ours = plant_run(
        tmp_path / "ours",
        model="Qwen/Qwen-VL",
        metrics={"okvqa": {"vqa_acc": 59.1}, "gqa": {"acc": 58.8}, "nocaps": {"CIDEr": 121.9}},
    )
    other = plant_run(
        tmp_path / "other",
        model="qwen2-vl-7b",
        family="qwen2-vl",
        limit=100,
        metrics={"okvqa": {"vqa_acc": 61.0}, "vizwiz": {"vqa_acc": 40.2}},
    )
    return [load_run(ours), load_run(other)]


@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv", "html", "json"])
def test_paper_table4_golden(tmp_path, fmt):
    from tests.results.test_table_formats import EXT, GOLDEN

    text = render(paper_table("table4", _golden_runs(tmp_path)), fmt)
    assert text == (GOLDEN / f"paper_table4.{EXT[fmt]}").read_text()
