"""`qwenvl-eval compare`: the regression gate's exit codes, summary, flips and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from qwenvl_eval.results.compare import compare_runs, paired_bootstrap
from qwenvl_eval.results.runs import load_run
from tests.results.plant import plant_run
from tests.test_cli import run_cli

N = 200


def _items(right: set[int]) -> list[dict]:
    return [
        {
            "id": f"q{i}",
            "output": f"answer {i}" if i in right else "wrong",
            "score": {"vqa_acc": float(i in right), "vqa_acc_official": float(i in right)},
        }
        for i in range(N)
    ]


BASE_RIGHT = set(range(100))  # 50% right


@pytest.fixture()
def runs(tmp_path):
    def make(name, right, **kw):
        return plant_run(tmp_path / name, model=name, items={"okvqa": _items(right)}, **kw)

    return make


def gate(capsys, tmp_path, base, cur, *extra):
    out = tmp_path / "gate" / "compare.md"
    code, stdout, err = run_cli(
        ["compare", str(base), str(cur), "--max-drop", "1", "--output", str(out), *extra], capsys
    )
    return code, stdout, err, out


def test_planted_significant_drop_exits_1(runs, tmp_path, capsys, monkeypatch):
    base = runs("base", BASE_RIGHT)
    cur = runs("cur", BASE_RIGHT - set(range(12)))  # 12 of 200 right->wrong: -6 points
    summary_file = tmp_path / "step_summary.md"
    summary_file.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    junit = tmp_path / "junit.xml"
    code, stdout, err, out = gate(capsys, tmp_path, base, cur, "--junit-xml", str(junit))
    assert code == 1, stdout + err
    assert "| okvqa | vqa_acc (gated) | 200 | 50.00 | 44.00 | -6.00 |" in stdout
    assert "**REGRESSION**" in stdout
    assert summary_file.read_text() == "earlier step\n" + out.read_text()
    flips = [json.loads(x) for x in out.with_suffix(".flips.jsonl").read_text().splitlines()]
    gated = [f for f in flips if f["metric"] == "vqa_acc"]
    assert [f["id"] for f in gated] == [f"q{i}" for i in range(12)]
    assert gated[0]["direction"] == "right->wrong"
    assert gated[0]["baseline"]["output"] == "answer 0" and gated[0]["current"]["output"] == "wrong"
    suite = ET.parse(junit).getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert set(cases) == {("okvqa", "vqa_acc"), ("okvqa", "vqa_acc_official")}
    assert cases[("okvqa", "vqa_acc")].find("failure") is not None
    assert cases[("okvqa", "vqa_acc_official")].find("failure") is None  # not gated
    assert suite.get("failures") == "1"


def test_same_size_drop_as_noise_over_items_exits_0(runs, tmp_path, capsys):
    base = runs("base", BASE_RIGHT)
    # 60 right->wrong and 48 wrong->right: the same -6 points, spread over 108 items
    cur = runs("cur", (BASE_RIGHT - set(range(60))) | set(range(100, 148)))
    code, stdout, err, _ = gate(capsys, tmp_path, base, cur)
    assert code == 0, stdout + err
    assert "| okvqa | vqa_acc (gated) | 200 | 50.00 | 44.00 | -6.00 |" in stdout
    cmp = compare_runs(load_run(base), load_run(cur), max_drop=1.0)
    d = next(x for x in cmp.diffs if x.metric == "vqa_acc")
    assert d.ci_low < -6 < 0 < d.ci_high and not d.regressed
    assert len([f for f in cmp.flips if f.metric == "vqa_acc"]) == 108


def test_per_task_max_drop_and_alpha(runs, tmp_path, capsys):
    base = runs("base", BASE_RIGHT)
    cur = runs("cur", BASE_RIGHT - set(range(12)))
    assert gate(capsys, tmp_path, base, cur, "--task-max-drop", "okvqa=7")[0] == 0
    assert gate(capsys, tmp_path, base, cur, "--task-max-drop", "okvqa=5")[0] == 1
    code, _, err, _ = gate(capsys, tmp_path, base, cur, "--task-max-drop", "okvq=5")
    assert code == 2 and "--task-max-drop: no task okvq in either run" in err
    # 20 right->wrong, 8 wrong->right: -6 points, z about 2.3: significant at 5%, not at 1%
    moderate = runs("moderate", (BASE_RIGHT - set(range(20))) | set(range(100, 108)))
    assert gate(capsys, tmp_path, base, moderate, "--alpha", "0.05")[0] == 1
    assert gate(capsys, tmp_path, base, moderate, "--alpha", "0.01")[0] == 0
    code, _, err, _ = gate(capsys, tmp_path, base, cur, "--alpha", "0.0001")
    assert code == 2 and "--alpha 0.0001 needs more than 10000 --resamples" in " ".join(err.split())
    code, _, err, _ = gate(capsys, tmp_path, base, cur, "--alpha", "2")
    assert code == 2 and "--alpha" in err


def test_changed_prompt_is_not_comparable_exits_3(runs, tmp_path, capsys):
    base = runs("base", BASE_RIGHT)
    cur = runs("cur", BASE_RIGHT, prompt_hash={"okvqa": "0123456789abcdef"})
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3
    assert "**okvqa not comparable**: prompt differs" in stdout
    assert gate(capsys, tmp_path, base, cur, "--allow-config-change")[0] == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"limit": 50}, "--limit differs (None -> 50)"),
        ({"backend": "vllm"}, "model backend differs (hf-transformers -> vllm)"),
        (
            {"model_extra": {"backend_version": "0.9"}},
            "model backend_version differs (None -> 0.9)",
        ),
        ({"gen_kwargs": {"max_new_tokens": 3}}, "config gen_kwargs differs"),
    ],
)
def test_other_config_changes_are_not_comparable(runs, tmp_path, capsys, change, reason):
    base = runs("base", BASE_RIGHT)
    cur = runs("cur", BASE_RIGHT, **change)
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3 and reason in stdout


def test_different_items_are_not_comparable(runs, tmp_path, capsys):
    base = runs("base", BASE_RIGHT)
    cur = runs("cur", BASE_RIGHT)
    path = cur / "okvqa.predictions.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-5]))
    code, stdout, _, _ = gate(capsys, tmp_path, base, cur)
    assert code == 3 and "data differ (5 items only in baseline, 0 only in current)" in stdout


def test_paired_bootstrap_is_seeded_and_exact_on_constant_differences():
    base = np.zeros(50)
    assert paired_bootstrap(base, base + 2.5, alpha=0.05) == (2.5, 2.5)
    rng = np.random.default_rng(0)
    b, c = rng.random(300), rng.random(300)
    first = paired_bootstrap(b, c, alpha=0.05)
    assert first == paired_bootstrap(b, c, alpha=0.05)
    # close to the normal approximation of the paired mean's interval
    d = c - b
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    assert first[0] == pytest.approx(d.mean() - half, abs=0.01)
    assert first[1] == pytest.approx(d.mean() + half, abs=0.01)


def test_few_valued_differences_take_the_multinomial_path_with_the_same_interval():
    """VQA-like scores (few distinct differences) are resampled as counts per distinct value;
    the interval matches drawing indices (the first release's algorithm) and the normal
    approximation, and is the same on every rerun."""
    rng = np.random.default_rng(1)
    values = np.array([0.0, 0.3, 0.6, 0.9, 1.0])
    base = rng.choice(values, size=50_000) * 100
    cur = np.where(rng.random(50_000) < 0.1, rng.choice(values, size=50_000) * 100, base)
    lo, hi = paired_bootstrap(base, cur, alpha=0.05, resamples=2000)
    assert (lo, hi) == paired_bootstrap(base, cur, alpha=0.05, resamples=2000)
    d = cur - base
    idx = np.random.default_rng(7).integers(0, len(d), size=(400, len(d)))
    by_index = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    assert lo == pytest.approx(d.mean() - half, abs=0.02)
    assert hi == pytest.approx(d.mean() + half, abs=0.02)
    assert lo == pytest.approx(by_index[0], abs=0.03) and hi == pytest.approx(by_index[1], abs=0.03)


def test_results_without_metric_meanings_get_the_tasks_declaration(tmp_path):
    """Version-1 files written before runs recorded their metrics' meaning are upgraded in
    memory from the task registry: RefCOCO's miou is the mean of the items' iou."""
    rows = [
        {"id": f"r{i}", "score": {"acc@0.5": float(i % 2), "iou": 0.5 * (i % 2)}} for i in range(8)
    ]
    run = load_run(plant_run(tmp_path / "r", model="m", items={"refcoco_val": rows}))
    meanings = run.meanings("refcoco_val")
    assert meanings["miou"].item_key == "iou" and meanings["acc@0.5"].item_key == "acc@0.5"
    run = load_run(plant_run(tmp_path / "c", model="m", metrics={"flickr30k": {"CIDEr": 80.0}}))
    cider = run.meanings("flickr30k")["CIDEr"]
    assert (cider.item_scale, cider.right_at) == (1.0, None)
