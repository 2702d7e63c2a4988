"""`qwenvl-eval report`: a self-contained HTML file, rendered in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.types import Text
from tests.fakes import FakeRunner
from tests.test_cli import run_cli

ARTIFACTS = Path(__file__).parent / "artifacts"


def _answer(box: str):
    def answer(request):
        text = " ".join(p.text for p in request.parts if isinstance(p, Text))
        if "bounding box" in text:
            return box
        return "yes"

    return answer


@pytest.fixture()
def two_runs(tmp_path, monkeypatch):
    model_dir = tmp_path / "Tiny-Qwen2-VL"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    outputs = iter(["(100,100),(600,700)", "no box here"])

    def loader(model, options):
        return FakeRunner(answer=_answer(next(outputs)), family=QWEN2_VL)

    monkeypatch.setattr(app, "load_runner", loader)
    dirs = []
    for name in ("current", "baseline"):
        config = RunConfig(
            model=str(model_dir),
            tasks=["refcoco_val", "okvqa"],
            data_dir="builtin",
            limit=4,
            output_dir=tmp_path / name,
        )
        dirs.append(app.run(config).run_dir)
    # One planted flip: the baseline got okvqa's first item right.
    pred = dirs[1] / "okvqa.predictions.jsonl"
    rows = [json.loads(x) for x in pred.read_text().splitlines()]
    rows[0].update(output="5", answer="5", score={"vqa_acc": 1.0, "vqa_acc_official": 1.0})
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dirs


def test_report_is_self_contained(two_runs, tmp_path, capsys):
    current, baseline = two_runs
    out = tmp_path / "report.html"
    code, _, err = run_cli(
        ["report", str(current), "--compare", str(baseline), "--output", str(out)], capsys
    )
    assert code == 0, err
    page = out.read_text()
    assert "default-src 'none'" in page
    # nothing to fetch: every src/href is a data: URI or a fragment
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page)
    assert refs and all(r.startswith(("data:", "#", "${")) for r in refs), refs
    assert not re.search(r"https?://", page)
    data = json.loads(
        page.split('<script type="application/json" id="data">')[1].split("</script>")[0]
    )
    ref = next(t for t in data["tasks"] if t["task"] == "refcoco_val")
    first = ref["items"][0]
    assert first["img"].startswith("data:image/jpeg;base64,")
    assert first["boxes"]["gt"] and first["boxes"]["pred"]
    assert "Output the bounding box of" in first["prompt"]
    assert data["baseline"] == baseline.name
    flips = [(f["task"], f["metric"], f["direction"]) for f in data["flips"]]
    assert ("okvqa", "vqa_acc", "right->wrong") in flips
    assert data["flips"][0]["baseline"]["output"] == "5"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium_flags(profile: Path, netlog: Path) -> list[str]:
    return [
        str(_chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        f"--user-data-dir={profile}",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=3000",
        "--window-size=1280,1600",
    ]


def page_requests(netlog: Path) -> list[str]:
    """Network URLs the page asked for. Chromium's own services (update checks, time, sign-in)
    also show in the net log; they start with the initiator 'not an origin', a page's
    requests with the page's origin ('null' for a file)."""
    text = netlog.read_text().rstrip().rstrip(",")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # the browser exited before closing the log
        log = json.loads(text + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start_job
        and e["params"].get("initiator") != "not an origin"
        and e["params"].get("url", "").startswith(("http:", "https:", "ws:", "wss:"))
    ]


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (.ci/run installs it)")
def test_network_probe_sees_a_page_request(tmp_path):
    """The check below can fail: a page that loads an image over http is caught."""
    page = tmp_path / "probe.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/probe.png"></body></html>')
    netlog = tmp_path / "netlog.json"
    flags = _chromium_flags(tmp_path / "profile", netlog)
    subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, timeout=120)
    assert page_requests(netlog) == ["http://127.0.0.1:9/probe.png"]


needs_chromium = pytest.mark.skipif(
    _chromium() is None, reason="chromium not installed (.ci/run installs it)"
)


def render(page: Path, tmp_path: Path, fragment: str = "", width: int = 1400) -> str:
    """The DOM after the page's script ran, in a real headless Chromium; no network."""
    netlog = tmp_path / f"netlog{abs(hash(fragment))}.json"
    flags = _chromium_flags(tmp_path / "profile", netlog)
    flags = [f for f in flags if not f.startswith("--window-size")] + [
        f"--window-size={width},1600"
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri() + fragment],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert page_requests(netlog) == []
    return dom


def _section(dom: str, task: str) -> str:
    start = dom.index(f'id="task-{task}"')
    end = dom.find('<section class="task"', start + 1)
    return dom[start : end if end > 0 else len(dom)]


def _shown_ids(section: str) -> list[str]:
    return re.findall(r'<div class="item[^"]*" data-id="([^"]*)"', section)


@needs_chromium
def test_report_renders_in_headless_chromium(two_runs, tmp_path, capsys):
    current, baseline = two_runs
    out = tmp_path / "report.html"
    argv = ["report", str(current), "--compare", str(baseline), "--output", str(out)]
    assert run_cli(argv, capsys)[0] == 0
    dom = render(out, tmp_path)
    assert 'data-rendered="yes"' in dom  # the page's script ran to the end
    # Scores: a tall table of numbers with their metric names, within a 1400 px screen.
    table = dom[dom.index('<table class="scores" id="scores">') :]
    table = table[: table.index("</table>")]
    row = r"<tr><td>refcoco_val</td><td>miou</td><td>0.00</td><td>\d+\.\d\d</td>"
    row += r"<td>\+\d+\.\d\d</td>"
    assert re.search(row, table), table
    assert int(re.search(r'data-table-width="(\d+)"', dom).group(1)) <= 1400
    # No raw JSON and no float noise anywhere in what is shown.
    visible = re.sub(r'<script[^>]*>.*?</script>|data:image/[^"]+', "", dom, flags=re.S)
    assert '{"vqa_acc"' not in visible and "&quot;vqa_acc&quot;" not in visible
    assert not re.search(r"\d\.\d{5,}", visible), re.findall(r"\d\.\d{5,}", visible)[:3]
    assert re.search(r'<span class="score">vqa_acc 0 · vqa_acc_official 0</span>', dom)
    # Boxes and their legend, on the grounding task only.
    ref, ok = _section(dom, "refcoco_val"), _section(dom, "okvqa")
    assert re.search(r'<rect class="box-gt" x="[\d.]+"', ref)
    assert re.search(r'<rect class="box-pred" x="[\d.]+"', ref)
    assert "ground truth" in ref and "ground truth" not in ok
    # The gate at the top: per-task delta, its CI and status; then a full flip card.
    gate = dom[dom.index('<table class="scores" id="gate">') :]
    assert dom.index('id="gate"') < dom.index('id="scores"')
    assert re.search(
        r"<td>okvqa</td><td>vqa_acc</td><td>-25.00</td><td>\[-\d+\.\d\d, [-+]?\d+\.\d\d\]</td>"
        r"<td>[a-zA-Z][^<]*</td>",  # the gate's status, whichever (4 items cannot prove a drop)
        gate,
    )
    assert re.search(r'<p class="verdict (good|bad)">Gate: ', dom)
    card = dom[dom.index('<div class="flip"') :]
    assert "right-&gt;wrong" in card
    assert re.search(r'<pre class="question">[^<]*Answer the question', card)
    assert re.search(r'<pre class="refs">answers: \[', card)
    assert "<pre>5</pre>" in card and "<pre>yes</pre>" in card  # both answers
    shoot(out, tmp_path)


def shoot(page: Path, tmp_path: Path) -> None:
    """A screenshot, checked for content: the gate verdict's colour band, the green and the
    red boxes drawn over an image, and not one blank page."""
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    flags = _chromium_flags(tmp_path / "profile", tmp_path / "shot-netlog.json")
    tall = [f for f in flags if not f.startswith("--window-size")] + ["--window-size=1400,3200"]
    subprocess.run([*tall, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    im = Image.open(shot).convert("RGB")
    assert im.size == (1400, 3200)
    colours = {c for _, c in im.getcolors(maxcolors=1 << 20)}
    assert {(0xFD, 0xE8, 0xE8), (0xE6, 0xF4, 0xE6)} & colours  # the gate verdict's band
    near = lambda target: any(  # noqa: E731  (anti-aliased strokes: close, not exact)
        sum(abs(a - b) for a, b in zip(c, target, strict=True)) < 40 for c in colours
    )
    assert near((0x00, 0xAA, 0x00)) and near((0xEE, 0x00, 0x00))  # ground truth, predicted
    assert len(colours) > 200  # thumbnails and text, not a blank page


@needs_chromium
def test_item_browser_search_sort_and_score_filter(two_runs, tmp_path, capsys):
    current, _ = two_runs
    out = tmp_path / "report.html"
    assert run_cli(["report", str(current), "--output", str(out)], capsys)[0] == 0
    data = json.loads(out.read_text().split('id="data">')[1].split("</script>")[0])
    ref = next(t for t in data["tasks"] if t["task"] == "refcoco_val")["items"]
    every = _shown_ids(_section(render(out, tmp_path), "refcoco_val"))
    assert sorted(every) == sorted(it["id"] for it in ref) and len(every) == 4
    # search finds the question text, the id and the answer
    word = ref[2]["prompt"].split("<|object_ref_start|>")[1].split("<|object_ref_end|>")[0]
    found = _shown_ids(_section(render(out, tmp_path, "#search=" + quote(word)), "refcoco_val"))
    assert ref[2]["id"] in found and all(word in it["prompt"] for it in ref if it["id"] in found)
    by_id = _shown_ids(_section(render(out, tmp_path, "#search=" + ref[1]["id"]), "refcoco_val"))
    assert by_id == [ref[1]["id"]]
    assert _shown_ids(_section(render(out, tmp_path, "#search=yes"), "okvqa"))  # the answer


@needs_chromium
def test_item_browser_sorts_and_filters_by_score(tmp_path, capsys):
    from tests.results.plant import plant_run

    scores = {"a": 0.3, "b": 1.0, "c": 0.0, "d": 0.6}
    rows = [
        {"id": i, "output": "x" * n, "score": {"vqa_acc": v}}
        for (i, v), n in zip(scores.items(), (5, 2, 9, 1), strict=True)
    ]
    run = plant_run(tmp_path / "r", model="m", items={"okvqa": rows})
    out = tmp_path / "report.html"
    assert run_cli(["report", str(run), "--output", str(out)], capsys)[0] == 0
    shown = lambda view: _shown_ids(_section(render(out, tmp_path, view), "okvqa"))  # noqa: E731
    assert shown("") == ["a", "b", "c", "d"]
    assert shown("#sort=score-desc") == ["b", "d", "a", "c"]
    assert shown("#sort=score-asc") == ["c", "a", "d", "b"]
    assert shown("#sort=length") == ["d", "b", "a", "c"]
    assert shown("#min=0.3&max=0.6") == ["a", "d"]
    assert shown("#min=0.5&sort=score-asc") == ["d", "b"]


HOSTILE = ["<!--<script>", "</script><script>alert(1)</script>", "a\u2028b\u2029c", "&amp; <b>"]


@needs_chromium
def test_hostile_answers_do_not_stop_the_script(tmp_path, capsys):
    from tests.results.plant import plant_run

    rows = [
        {"id": f"q{i}", "output": text, "answer": text, "score": {"vqa_acc": 0.0}}
        for i, text in enumerate(HOSTILE)
    ]
    run = plant_run(tmp_path / "r", model="m", items={"okvqa": rows})
    out = tmp_path / "report.html"
    assert run_cli(["report", str(run), "--output", str(out)], capsys)[0] == 0
    page = out.read_text()
    blob = page.split('<script type="application/json" id="data">')[1]
    assert blob.index("</script>") > blob.index("q3")  # no answer closed the element
    assert json.loads(blob.split("</script>")[0])["tasks"][0]["items"][0]["output"] == HOSTILE[0]
    dom = render(out, tmp_path)
    assert 'data-rendered="yes"' in dom
    assert _shown_ids(_section(dom, "okvqa")) == ["q0", "q1", "q2", "q3"]
    assert "&lt;!--&lt;script&gt;" in dom and "alert(1)" in dom  # shown as text


def test_report_output_at_a_directory_is_one_line(two_runs, tmp_path, capsys):
    current, _ = two_runs
    code, _, err = run_cli(["report", str(current), "--output", str(tmp_path)], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "is a directory" in err and str(tmp_path) in err


@needs_chromium
def test_not_comparable_baseline_is_a_visible_warning(two_runs, tmp_path, capsys):
    current, baseline = two_runs
    results = json.loads((baseline / "results.json").read_text())
    results["config"]["limit"] = 3  # another item count: not comparable
    (baseline / "results.json").write_text(json.dumps(results))
    out = tmp_path / "report.html"
    argv = ["report", str(current), "--compare", str(baseline), "--output", str(out)]
    assert run_cli(argv, capsys)[0] == 0
    dom = render(out, tmp_path)
    warning = dom[dom.index('<div class="warning" id="not-comparable">') :]
    assert "not comparable" in warning[:200] and "okvqa" in warning[:2000]
    assert "Gate: NOT COMPARABLE (exit 3)" in dom  # the gate's own verdict
    assert "flipped items of okvqa not shown" in dom
    assert '<div class="flip"' not in dom.split("<script")[0]


def test_report_without_the_data_says_so(tmp_path, capsys):
    from tests.results.plant import plant_run

    rows = [{"id": "a1", "output": "cat", "score": {"vqa_acc": 1.0}}]
    run = plant_run(tmp_path / "r", model="m", items={"okvqa": rows})
    code, _, err = run_cli(["report", str(run), "--data-dir", str(tmp_path / "moved")], capsys)
    assert code == 0, err
    page = (run / "report.html").read_text()
    assert "images and prompts unavailable" in page and '"output": "cat"' in page
