"""The regression gate on real runs of the tiny model: it never exits 0 on a drop it did not
test, says when it cannot tell, and refuses hostile output paths and inputs (issue 16)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from qwenvl_eval.results.compare import compare_runs
from qwenvl_eval.results.runs import load_run
from tests.fakes import run_cli
from tests.results.plant import (
    copy_run,
    edit_predictions,
    edit_results,
    plant_right,
    real_run,
)

N = 16
VQA_KEYS = ("vqa_acc", "vqa_acc_official")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return real_run(tmp_path_factory.mktemp("real"))


@pytest.fixture()
def pair(tiny_run, tmp_path):
    """A baseline and a current copy of one real run: the same answers until a test plants
    something."""
    return copy_run(tiny_run, tmp_path / "base"), copy_run(tiny_run, tmp_path / "cur")


def gate(capsys, tmp_path, base, cur, *extra):
    out = tmp_path / "gate" / "compare.md"
    argv = ["compare", str(base), str(cur), "--max-drop", "1", "--output", str(out), *extra]
    code, stdout, err = run_cli(argv, capsys)
    assert "Traceback" not in err
    return code, stdout, " ".join(err.split()), out


def test_identical_real_runs_pass_with_the_promise_and_the_metric_names(pair, tmp_path, capsys):
    code, stdout, err, _ = gate(capsys, tmp_path, *pair)
    assert code == 0, stdout + err
    verdict = stdout.splitlines()[2]
    assert verdict.startswith("**PASS (exit 0): every gated metric (4) was tested and none")
    weights = json.loads((pair[0] / "results.json").read_text())["model"]["weights_id"]
    assert "tiny-qwen2-vl" in verdict and f"weights {weights[:12]}" in verdict
    # the task's names (miou, not the per-item key iou); CIDEr on its own scale, ungated rows
    table = [line.split("|") for line in stdout.splitlines() if line.startswith("| ")]
    rows = {(cells[1].strip(), cells[2].strip()) for cells in table}
    assert ("refcoco_val", "miou") in rows and ("refcoco_val", "acc@0.5 (gated)") in rows
    assert not any(m == "iou" for _, m in rows)
    assert ("flickr30k", "CIDEr (gated)") in rows
    assert "weights identity unknown" not in stdout


def test_planted_drop_on_real_runs_fails_and_counts_flips_per_item(pair, tmp_path, capsys):
    base, cur = pair
    plant_right(base, "vqav2", VQA_KEYS, range(N))  # 16 items right in the baseline only
    junit = tmp_path / "junit.xml"
    code, stdout, err, out = gate(capsys, tmp_path, base, cur, "--junit-xml", str(junit))
    assert code == 1, stdout + err
    assert stdout.splitlines()[2].startswith("**FAIL (exit 1): vqav2 vqa_acc -100.00 (limit 1)")
    flips = [json.loads(x) for x in out.with_suffix(".flips.jsonl").read_text().splitlines()]
    # 16 items flipped, each once (VQA has two per-item metrics: not 32)
    assert len(flips) == N and {f["metric"] for f in flips} == {"vqa_acc"}
    assert f"{N} item(s) went right->wrong, 0 wrong->right" in stdout
    suite = ET.parse(junit).getroot()
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"].startswith("FAIL (exit 1): vqav2 vqa_acc -100.00")
    assert props["baseline.model"] == props["current.model"] == "tiny-qwen2-vl"
    assert props["exit_code"] == "1" and "baseline.git" in props
    assert suite.get("failures") == "1"


def test_nan_gated_item_score_is_not_comparable(pair, tmp_path, capsys):
    base, cur = pair
    plant_right(base, "vqav2", VQA_KEYS, range(N))

    def nan_score(i, r):
        r["score"]["vqa_acc"] = float("nan")  # json writes NaN
        return r

    edit_predictions(cur, "vqav2", nan_score)
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3
    assert "vqa_acc: per-item score 'vqa_acc' not finite on 16 item(s) of" in stdout
    assert "line 1" in stdout and "NOT COMPARABLE (exit 3)" in stdout.splitlines()[2]


def test_gated_item_key_missing_from_current_is_not_comparable(pair, tmp_path, capsys):
    base, cur = pair
    plant_right(base, "vqav2", VQA_KEYS, range(N))

    def drop_key(i, r):
        del r["score"]["vqa_acc"]
        return r

    edit_predictions(cur, "vqav2", drop_key)
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3 and "per-item score 'vqa_acc' missing on 16 item(s)" in stdout


def test_headline_without_item_score_is_not_comparable(pair, tmp_path, capsys):
    base, cur = pair
    for run in pair:  # ScienceQA's NAT category: a subset number, no per-item score
        edit_results(run, lambda d: d["tasks"]["scienceqa_img"].update(headline="NAT"))
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3
    assert "headline metric NAT has no per-item score: the gate cannot test it" in stdout


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (["--task-max-drop", "vqav2=nan"], "--task-max-drop vqav2: the allowed drop must be a"),
        (["--task-max-drop", "vqav2=-5"], "--task-max-drop vqav2: the allowed drop must be a"),
        (["--task-max-drop", "vqav2=inf"], "--task-max-drop vqav2: the allowed drop must be a"),
        (["--max-drop", "inf"], "--max-drop: the allowed drop must be a finite number >= 0"),
        (["--max-drop", "nan"], "--max-drop: the allowed drop must be a finite number >= 0"),
        (["--max-drop", "-1"], "--max-drop: the allowed drop must be a finite number >= 0"),
    ],
)
def test_bad_max_drops_are_usage_errors(pair, tmp_path, capsys, flag, message):
    base, cur = pair
    plant_right(base, "vqav2", VQA_KEYS, range(N))
    code, _, err, _ = gate(capsys, tmp_path, base, cur, *flag)
    assert code == 2 and message in err


def test_task_missing_from_current_fails_unless_allowed(pair, tmp_path, capsys):
    base, cur = pair
    edit_results(cur, lambda d: d["tasks"].pop("refcoco_val"))
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3 and "missing from the current run: refcoco_val" in stdout
    assert gate(capsys, tmp_path, base, cur, "--allow-missing-tasks")[0] == 0
    edit_results(cur, lambda d: d["tasks"].clear())  # tasks: {}
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3 and "no gated metric was compared" in stdout.splitlines()[2]
    assert gate(capsys, tmp_path, base, cur, "--allow-missing-tasks")[0] == 3  # nothing tested


@pytest.mark.parametrize(("value", "shown"), [("0.5", '"0.5"'), (None, "null"), ([1], "[1]")])
def test_non_numeric_item_score_is_one_line(pair, tmp_path, capsys, value, shown):
    base, cur = pair

    def bad(i, r):
        if i == 3:
            r["score"]["vqa_acc"] = value
        return r

    edit_predictions(cur, "vqav2", bad)
    code, _, err, _ = gate(capsys, tmp_path, base, cur)
    path = cur / "vqav2.predictions.jsonl"
    assert code == 2
    assert f"{path}, line 4: field score.vqa_acc: expected a number, got {shown}" in err


def test_weights_identity(pair, tmp_path, capsys):
    base, cur = pair
    edit_results(base, lambda d: d["model"].update(weights_id="a" * 64))
    edit_results(cur, lambda d: d["model"].pop("weights_id"))  # a run from before weights_id
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 0 and "weights identity unknown for the current run" in stdout
    edit_results(cur, lambda d: d["model"].update(weights_id="b" * 64))
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3
    assert "weights differ under the same model 'tiny-qwen2-vl' (aaaaaaaaaaaa -> bbbbbbbbbbbb)" in (
        stdout
    )
    assert "weights aaaaaaaaaaaa" in stdout.splitlines()[2]
    edit_results(cur, lambda d: d["model"].update(weights_id="a" * 64))
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 0 and "weights identity unknown" not in stdout


def test_underpowered_drop_is_inconclusive(pair, tmp_path, capsys):
    base, cur = pair
    plant_right(base, "vqav2", VQA_KEYS, range(N))
    plant_right(cur, "vqav2", VQA_KEYS, range(1, N))  # 1 of 16 right->wrong: -6.25 points
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 0
    row = next(x for x in stdout.splitlines() if x.startswith("| vqav2 | vqa_acc (gated)"))
    assert "| -6.25 | [-18.75, +0.00] |" in row
    assert "inconclusive: 16 items cannot detect a drop of 1 (the interval reaches 18.75;" in row
    assert "PASS (exit 0): inconclusive on vqav2 vqa_acc" in stdout.splitlines()[2]
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur, "--fail-inconclusive")
    assert code == 1 and "FAIL (exit 1): inconclusive on vqav2 vqa_acc" in stdout


def test_scienceqa_flips_carry_option_scores(pair, tmp_path, capsys):
    base, cur = pair
    rows = [json.loads(x) for x in (cur / "scienceqa_img.predictions.jsonl").open()]
    wrong = next(i for i, r in enumerate(rows) if r["score"]["acc"] == 0.0)
    plant_right(base, "scienceqa_img", ("acc",), {wrong})
    cmp = compare_runs(load_run(base), load_run(cur), max_drop=1.0)
    (flip,) = [f for f in cmp.flips if f.task == "scienceqa_img"]
    assert flip.direction == "right->wrong" and flip.id == rows[wrong]["id"]
    assert flip.current["extra"]["mean_loss"] == rows[wrong]["extra"]["mean_loss"]
    assert len(flip.current["extra"]["mean_loss"]) >= 2


def test_refuses_to_write_over_run_files(pair, tmp_path, capsys):
    base, cur = pair
    before = (base / "results.json").read_bytes()
    argv = ["compare", str(base), str(base), "--output", str(base / "results.json")]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "is a file of the run" in err
    assert (base / "results.json").read_bytes() == before
    code, _, err = run_cli(
        ["compare", str(base), str(cur), "--output", str(cur / "vqav2.predictions.md")], capsys
    )  # the flips file would be cur/vqav2.predictions.flips.jsonl: a new file, allowed
    assert code == 0, err


@pytest.mark.parametrize("target", ["--output", "--junit-xml", "GITHUB_STEP_SUMMARY"])
def test_output_at_a_directory_is_one_line(pair, tmp_path, capsys, monkeypatch, target):
    base, cur = pair
    where = tmp_path / "a_dir"
    where.mkdir()
    extra = [] if target == "GITHUB_STEP_SUMMARY" else [target, str(where)]
    if target == "GITHUB_STEP_SUMMARY":
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(where))
    code, _, err, _ = gate(capsys, tmp_path, base, cur, *extra)
    assert code == 2 and f"{target} {where}: is a directory" in err
    assert len(err.strip().splitlines()) == 1


def test_output_on_a_read_only_file_system_is_one_line(pair, tmp_path):
    """A read-only tmpfs in a private mount namespace (skipped where unshare is not allowed)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("user and mount namespaces are not allowed here")
    base, cur = pair
    mnt = tmp_path / "ro"
    mnt.mkdir()
    gate_cmd = f"{sys.executable} -m qwenvl_eval compare {base} {cur}"
    script = (
        f"mount -t tmpfs -o ro tmpfs {mnt} && "
        f"{gate_cmd} --output {mnt}/c.md; echo RC=$?; "
        f"{gate_cmd} --output {tmp_path}/c.md --junit-xml {mnt}/j.xml; echo RC=$?; "
        f"GITHUB_STEP_SUMMARY={mnt}/s.md {gate_cmd} --output {tmp_path}/c.md; echo RC=$?"
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.stdout.count("RC=2") == 3, done.stdout[-1000:] + done.stderr
    err = done.stderr
    assert "Traceback" not in err
    for flag, name in (
        ("--output", "c.md"),
        ("--junit-xml", "j.xml"),
        ("GITHUB_STEP_SUMMARY", "s.md"),
    ):
        assert f"{flag} {mnt}/{name}: cannot write (Read-only file system)" in " ".join(err.split())


def test_deep_json_is_one_line(pair, tmp_path, capsys):
    base, cur = pair
    (cur / "results.json").write_text("[" * 100_000 + "]" * 100_000)
    code, _, err, _ = gate(capsys, tmp_path, base, cur)
    assert code == 2 and "nested too deeply" in err
    shutil.copy(base / "results.json", cur / "results.json")
    path = cur / "vqav2.predictions.jsonl"
    path.write_text(path.read_text() + '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    code, _, err, _ = gate(capsys, tmp_path, base, cur)
    assert code == 2 and f"{path}, line {N + 1}: not a prediction record" in err


def test_a_changed_headline_is_not_comparable(pair, tmp_path, capsys):
    base, cur = pair
    edit_results(cur, lambda d: d["tasks"]["vqav2"].update(headline="vqa_acc_official"))
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3 and "headline metric differs (vqa_acc -> vqa_acc_official)" in stdout
