"""`qwenvl-eval report`: a self-contained HTML file, rendered in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

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


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(two_runs, tmp_path, capsys):
    current, baseline = two_runs
    out = tmp_path / "report.html"
    argv = ["report", str(current), "--compare", str(baseline), "--output", str(out)]
    assert run_cli(argv, capsys)[0] == 0
    netlog = tmp_path / "netlog.json"
    flags = _chromium_flags(tmp_path / "profile", netlog)
    dom = subprocess.run(
        [*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert 'data-rendered="yes"' in dom  # the page's script ran to the end
    assert '<table id="T_scores" class="scores">' in dom
    assert re.search(r'<td class="[^"]*">\s*(<strong>)?\d+\.\d\d', dom)  # a score cell
    assert re.search(r'<rect class="box-gt" x="[\d.]+"', dom)
    assert re.search(r'<rect class="box-pred" x="[\d.]+"', dom)
    assert "Flipped items against" in dom and "right-&gt;wrong" in dom
    assert page_requests(netlog) == []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    tall = [f for f in flags if not f.startswith("--window-size")] + ["--window-size=1280,3200"]
    subprocess.run([*tall, f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_the_data_says_so(tmp_path, capsys):
    from tests.results.plant import plant_run

    rows = [{"id": "a1", "output": "cat", "score": {"vqa_acc": 1.0}}]
    run = plant_run(tmp_path / "r", model="m", items={"okvqa": rows})
    code, _, err = run_cli(["report", str(run), "--data-dir", str(tmp_path / "moved")], capsys)
    assert code == 0, err
    page = (run / "report.html").read_text()
    assert "images and prompts unavailable" in page and '"output": "cat"' in page
