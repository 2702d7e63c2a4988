"""`table --paper`: published rows from the package data, planted runs, every delta checked,
protocol differences marked, eval_mm's dropped grounding items stated per split."""

from __future__ import annotations

import json
import math
import re

import pytest
from PIL import Image

from qwenvl_eval.itemsets import eval_mm_kept
from qwenvl_eval.results.paper import paper_table, published
from qwenvl_eval.results.render import render
from qwenvl_eval.results.runs import load_run
from tests.results.plant import plant_run
from tests.test_cli import run_cli

T4 = [
    "NoCaps", "Flickr30K", "VQAv2 test-dev", "OKVQA", "GQA", "SciQA-Img (0-shot)",
    "VizWiz (0-shot)",
]  # fmt: skip


def _row(table, label):
    return list(table.values.index).index(label)


def test_published_rows_carry_their_source():
    data = published()["tables"]
    assert {r["model"] for r in data["table4"]["rows"]} >= {"Qwen-VL", "Qwen-VL-Chat"}
    for spec in data.values():
        for r in spec["rows"]:
            assert r["source"].startswith(("Qwen-VL", "Qwen2-VL report"))
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
    assert table.text(i + 1, "NoCaps") == "-1.40"
    assert table.text(i + 1, "VizWiz (0-shot)") == "+1.25"
    assert not table.marks.get((i, "OKVQA"))  # the paper's protocol: nothing to mark
    assert i not in table.row_marks
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
    assert table.values.iloc[i + 1]["TextVQA val"] == pytest.approx(62.0 - 61.5)
    assert table.values.iloc[i + 1]["DocVQA val"] == pytest.approx(60.1 - 62.6)
    (key,) = table.row_marks[i]  # one note for the run, not one per cell
    assert table.notes[key] == (
        "qwen-vl-chat: all cells of this row: --limit 100 (100 items per split)"
    )
    assert not any(r in (i, i + 1) for r, _ in table.marks)
    assert f"qwen-vl-chat (ours) [{key}]" in render(table, "markdown")


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

    def notes(label):
        return [table.notes[k] for k in table.row_marks.get(_row(table, label), [])]

    assert notes("qwen2-vl-7b (ours)") == [
        "qwen2-vl-7b: prompt family qwen2-vl (the harness's own prompts, not the paper's raw "
        "prompts)"
    ]
    # its GQA followed the paper: the note names the one column that did not
    assert notes("gen-run (ours)") == [
        "gen-run: OKVQA: generation settings max_new_tokens=20 (paper 10)"
    ]
    (msg,) = notes("prompt-run (ours)")
    assert msg.startswith("prompt-run: prompt differs from the paper's (prompt_hash deadbeef")
    i = _row(table, "gen-run (ours)")
    assert (i, "OKVQA") in table.unranked and (i, "GQA") not in table.unranked


def test_eval_mm_kept_items_follow_its_slicing_rule():
    """8 contiguous per-GPU slices (the first N mod 8 one longer), each losing its last
    partial batch of 8: not the same items as "the last N mod 64"."""
    kept = eval_mm_kept(10834, 8, 8)
    assert [len(r) for r in kept] == [1352, 1352] + [1352] * 6
    assert kept[0] == range(0, 1352) and kept[1] == range(1355, 2707)  # 1353, 1354 dropped
    assert kept[2].start == 2710 and kept[7].stop == 10832
    # where it is not "N mod 64": 123 = 3 slices of 16 (all kept) + 5 of 15 (8 kept each)
    assert sum(len(r) for r in eval_mm_kept(123, 8, 8)) == 88 != 123 - 123 % 64


def test_table6_says_how_many_items_eval_mm_scored_per_split(tmp_path):
    run = plant_run(
        tmp_path / "g",
        model="Qwen/Qwen-VL",
        metrics={"refcoco_val": {"acc@0.5": 89.0}, "refcocog_test": {"acc@0.5": 86.0}},
    )
    table = paper_table("table6", [load_run(run)])
    sizes = [10834, 5657, 5095, 10758, 5726, 4889, 4896, 9602]
    skipped = [18, 25, 39, 6, 30, 25, 32, 2]  # at 8 x 8 these equal N mod 64
    q = _row(table, "Qwen-VL")
    (key,) = table.row_marks[q]  # one note for the row, not eight
    for col, n, s in zip(table.values.columns, sizes, skipped, strict=False):
        assert f"{col} {n - s} of {n}" in table.notes[key]
    assert "drops the last partial batch of each slice" in table.notes[key]
    i = _row(table, "Qwen/Qwen-VL (ours)")
    assert table.values.iloc[i + 1]["RefCOCO val"] == pytest.approx(89.0 - 89.36)
    assert table.values.iloc[i + 1]["RefCOCOg test-u"] == pytest.approx(86.0 - 85.48)
    (dkey,) = table.row_marks[i + 1]
    assert "--item-set eval_mm" in table.notes[dkey]


def test_table6_published_rows_groups_and_grit(tmp_path):
    run = plant_run(tmp_path / "g", model="Qwen/Qwen-VL", metrics={"refcoco_val": {"acc@0.5": 95}})
    table = paper_table("table6", [load_run(run)])
    labels = list(table.values.index)
    for model in ("GPV-2", "OFA-L*", "Unified-IO", "VisionLLM-H", "G-DINO-L", "ONE-PEACE"):
        assert model in labels
    assert table.values.loc["GPV-2", "GRIT refexp"] == 51.50
    assert table.values.loc["Unified-IO", "GRIT refexp"] == 78.61
    assert table.values.loc["Qwen-VL", "GRIT refexp"] == 78.22
    assert [g for g, _ in table.col_groups] == ["RefCOCO", "RefCOCO+", "RefCOCOg", "GRIT"]
    assert table.short_headers["RefCOCOg test-u"] == "test-u"
    best = table.best()
    # bold within a group, never across: the generalists' best is Qwen-VL although UNINEXT-H
    # (a specialist) is higher, and our 95 is ranked only among measured rows
    assert (labels.index("Qwen-VL"), "RefCOCO val") in best
    assert (labels.index("UNINEXT-H"), "RefCOCO val") in best
    assert (labels.index("Unified-IO"), "GRIT refexp") in best
    i = labels.index("Qwen/Qwen-VL (ours)")
    assert table.text(i, "GRIT refexp") == "-"
    (key,) = table.marks[(i, "GRIT refexp")]
    assert "GRIT benchmark's own server" in table.notes[key]
    assert (i, "RefCOCO val") not in best  # a lone measured row is not "best"


def test_table4_and_5_have_the_papers_rows_and_groups(tmp_path):
    t4 = paper_table("table4", [])
    sota = list(t4.values.index).index("Previous SOTA")
    assert t4.group_of(sota) == "Previous SOTA (per-task fine-tuning)"
    assert t4.text(sota, "NoCaps") == "127.0 (PALI-17B)"
    assert t4.values.iloc[sota]["SciQA-Img (0-shot)"] == 92.53
    assert t4.values.iloc[sota]["VizWiz (0-shot)"] == 70.9
    assert [g for g, _ in t4.col_groups] == ["Zero-shot Captioning", "General VQA"]
    assert "zero-shot" not in t4.title.lower()
    t5 = paper_table("table5", [])
    pali = next(x for x in t5.values.index if x.startswith("PALI-X-55B"))
    assert list(t5.values.loc[pali]) == [71.44, 80.0, 70.0, 81.2, 75.0]
    assert list(t5.values.columns)[1] == "DocVQA val"
    qwen = list(t5.values.index).index("Qwen-VL")
    (key,) = t5.marks[(qwen, "DocVQA val")]
    assert "test split" in t5.notes[key]
    # the specialist is ranked apart from the generalists
    assert (qwen, "TextVQA val") in t5.best()
    chat = list(t5.values.index).index("Qwen-VL-Chat")
    (key,) = t5.row_marks[chat]
    assert t5.notes[key].startswith("Qwen-VL-Chat: uncertain source")


def test_server_scored_cell_says_submission_then_the_recorded_score(tmp_path, capsys):
    run = plant_run(tmp_path / "s", model="Qwen/Qwen-VL", metrics={"okvqa": {"vqa_acc": 58.0}})
    data = json.loads((run / "results.json").read_text())
    data["tasks"]["vqav2_testdev"] = {
        "task": "vqav2_testdev",
        "metrics": {},
        "counts": {"items": 107394, "errors": 0},
        "prompt_hash": "0" * 16,
        "submission_file": str(run / "vqav2_testdev.submission.json"),
    }
    (run / "results.json").write_text(json.dumps(data))
    table = paper_table("table4", [load_run(run)])
    i = _row(table, "Qwen/Qwen-VL (ours)")
    assert table.text(i, "VQAv2 test-dev") == "submission written: vqav2_testdev.submission.json"
    assert "scored 8 of" not in render(table, "markdown")
    code, _, err = run_cli(
        ["submission", "record", str(run), "--task", "vqav2_testdev", "--score", "79.1",
         "--source", "EvalAI submission 12345"], capsys,
    )  # fmt: skip
    assert code == 0, err
    recorded = json.loads((run / "results.json").read_text())["tasks"]["vqav2_testdev"]
    assert recorded["server_score"]["score"] == 79.1
    assert recorded["server_score"]["source"] == "EvalAI submission 12345"
    table = paper_table("table4", [load_run(run)])
    assert table.values.iloc[i]["VQAv2 test-dev"] == 79.1
    assert table.values.iloc[i + 1]["VQAv2 test-dev"] == pytest.approx(79.1 - 79.5)
    (key,) = table.marks[(i, "VQAv2 test-dev")]
    assert "EvalAI submission 12345" in table.notes[key]
    from qwenvl_eval.results.scoretable import runs_table

    plain = runs_table([load_run(run)])  # the plain table shows it too, cited
    assert plain.values.iloc[0]["vqav2_testdev"] == 79.1
    (key,) = plain.marks[(0, "vqav2_testdev")]
    assert "EvalAI submission 12345" in plain.notes[key]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--task", "okvqa", "--score", "1", "--source", "x"], "has public answers"),
        (["--task", "nope", "--score", "1", "--source", "x"], "not in this run"),
        (["--task", "vqav2_testdev", "--score", "nan", "--source", "x"], "--score"),
        (["--task", "vqav2_testdev", "--score", "101", "--source", "x"], "--score"),
        (["--task", "vqav2_testdev", "--score", "5", "--source", " "], "--source"),
    ],
)
def test_submission_record_refuses_bad_input(tmp_path, capsys, argv, words):
    run = plant_run(tmp_path / "s", model="m", metrics={"okvqa": {"vqa_acc": 58.0}})
    data = json.loads((run / "results.json").read_text())
    data["tasks"]["vqav2_testdev"] = {
        "metrics": {}, "counts": {"items": 3}, "prompt_hash": "0" * 16,
        "submission_file": "vqav2_testdev.submission.json",
    }  # fmt: skip
    (run / "results.json").write_text(json.dumps(data))
    before = (run / "results.json").read_text()
    code, _, err = run_cli(["submission", "record", str(run), *argv], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert (run / "results.json").read_text() == before


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
    assert_plot(
        out.with_suffix(".png"),
        out.with_suffix(".svg"),
        {"okvqa", "vizwiz"},
        {"okvqa": "vqa_acc", "vizwiz": "vqa_acc"},
    )


def png_panels(png) -> int:
    """Panels in the PNG, counted from the pixels: each axes frame is a long dark
    horizontal line; panels side by side have distinct x extents."""
    import numpy as np

    with Image.open(png) as im:
        dark = np.asarray(im.convert("L")) < 80
    spans: list[tuple[int, int]] = []
    for row in dark:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        for s, e in zip(edges[::2], edges[1::2], strict=True):
            if e - s > 150 and not any(abs(s - a) < 4 and abs(e - b) < 4 for a, b in spans):
                spans.append((int(s), int(e)))
    return len(spans)


def svg_panels(svg) -> dict[str, list[str]]:
    """panel id -> the texts drawn in it (titles, tick and axis labels)."""
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    root = ET.parse(svg).getroot()
    return {
        g.get("id")[len("panel-") :]: ["".join(t.itertext()).strip() for t in g.iter(f"{ns}text")]
        for g in root.iter(f"{ns}g")
        if (g.get("id") or "").startswith("panel-")
    }


def assert_plot(png, svg, tasks, metrics=None):
    """One panel per dataset (counted in the PNG's pixels), each titled by its dataset with
    'shots' on x and its metric on y (read from the SVG's text), one line per task."""
    with Image.open(png) as im:
        im.verify()
        assert im.format == "PNG"
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert set(re.findall(r'<g id="line-([^"]+)"', text)) == tasks
    assert png_panels(png) == len(tasks)
    panels = svg_panels(svg)
    assert set(panels) == tasks
    for task, texts in panels.items():
        assert task in texts and "shots" in texts, texts
        if metrics:
            assert metrics[task] in texts, (task, texts)


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
