"""The regression gate: `qwenvl-eval compare BASELINE CURRENT`.

Items are paired by id. For each task and per-item metric the difference of the means gets a
paired-bootstrap confidence interval (fixed seed: the same runs always give the same verdict).
A metric fails the gate when it drops by more than `max_drop` points AND its whole
(1 - alpha) interval lies below zero. Two runs whose prompts, generation settings, data,
limits or backend differ are not comparable."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..types import ItemResult
from .runs import Run

# Per-item scores are fractions in [0, 1] and task numbers are x100, except CIDEr, whose
# per-item share is already on the task's scale.
PER_ITEM_SCALE = {"CIDEr": 1.0}
# The per-item key a task-level metric is the mean of, where the names differ.
ITEM_KEY = {"miou": "iou"}
BOOTSTRAP_SEED = 20230824
CORRECT = 0.5  # an item counts as right when its per-item score is >= this (fractions only)


def is_right(key: str, score: float) -> bool | None:
    """Whether an item's score on metric `key` counts as right; None for metrics whose
    per-item scores are no fractions of right (CIDEr), where right and wrong mean nothing."""
    if PER_ITEM_SCALE.get(key, 100.0) != 100.0:
        return None
    return score >= CORRECT


@dataclass
class MetricDiff:
    task: str
    metric: str
    n: int
    baseline: float
    current: float
    diff: float
    ci_low: float
    ci_high: float
    max_drop: float
    gated: bool  # the task's headline metric: the one the gate acts on
    regressed: bool = False

    @property
    def significant_drop(self) -> bool:
        return self.ci_high < 0


@dataclass
class Flip:
    task: str
    metric: str
    id: str
    direction: str  # "right->wrong" or "wrong->right"
    baseline: dict[str, Any]
    current: dict[str, Any]


@dataclass
class Comparison:
    baseline: str
    current: str
    alpha: float
    diffs: list[MetricDiff] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)
    not_comparable: dict[str, list[str]] = field(default_factory=dict)  # task -> reasons
    only_in_one: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricDiff]:
        return [d for d in self.diffs if d.regressed]


def paired_bootstrap(
    base: np.ndarray, cur: np.ndarray, *, alpha: float, resamples: int = 10000
) -> tuple[float, float]:
    """Percentile interval of mean(cur - base) over items resampled with replacement."""
    d = cur - base
    if len(d) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # chunks: bounded memory for big splits
        k = min(1000, resamples - start)
        idx = rng.integers(0, len(d), size=(k, len(d)))
        means[start : start + k] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def config_differences(baseline: Run, current: Run, task: str) -> list[str]:
    """What makes the two runs' results of `task` not comparable (empty: comparable)."""
    b, c = baseline.tasks[task], current.tasks[task]
    reasons = []
    if b.get("generation") != c.get("generation"):
        reasons.append("generation settings differ")
    elif b["prompt_hash"] != c["prompt_hash"]:
        reasons.append(f"prompt differs (prompt_hash {b['prompt_hash']} -> {c['prompt_hash']})")
    if baseline.limit != current.limit:
        reasons.append(f"--limit differs ({baseline.limit} -> {current.limit})")
    bm, cm = baseline.results["model"], current.results["model"]
    # The backend and anything recorded about it (its version, engine settings).
    for key in sorted(k for k in set(bm) | set(cm) if k.startswith("backend")):
        if bm.get(key) != cm.get(key):
            reasons.append(f"model {key} differs ({bm.get(key)} -> {cm.get(key)})")
    bc, cc = baseline.results["config"], current.results["config"]
    for key in ("gen_kwargs", "seed"):
        if (bc.get(key) or None) != (cc.get(key) or None):
            reasons.append(f"config {key} differs ({bc.get(key)} -> {cc.get(key)})")
    return reasons


def _item_view(it: ItemResult | None) -> dict[str, Any]:
    if it is None:
        return {}
    return {"output": it.output, "answer": it.answer, "score": it.score, "error": it.error}


def compare_runs(
    baseline: Run,
    current: Run,
    *,
    max_drop: float,
    task_max_drop: dict[str, float] | None = None,
    alpha: float = 0.05,
    resamples: int = 10000,
) -> Comparison:
    out = Comparison(str(baseline.path), str(current.path), alpha)
    unknown = sorted(set(task_max_drop or {}) - set(baseline.tasks) - set(current.tasks))
    if unknown:
        from ..errors import UserError

        raise UserError(f"--task-max-drop: no task {', '.join(unknown)} in either run")
    common = [t for t in baseline.tasks if t in current.tasks]
    out.only_in_one = sorted(set(baseline.tasks) ^ set(current.tasks))
    for task in common:
        reasons = config_differences(baseline, current, task)
        b_items = {it.id: it for it in baseline.items(task)}
        c_items = {it.id: it for it in current.items(task)}
        if set(b_items) != set(c_items):
            only_b, only_c = len(set(b_items) - set(c_items)), len(set(c_items) - set(b_items))
            reasons.append(
                f"data differ ({only_b} items only in baseline, {only_c} only in current)"
            )
        if reasons:
            out.not_comparable[task] = reasons
        ids = [i for i in b_items if i in c_items]
        head = baseline.headline(task)
        keys = sorted(
            {k for i in ids for k in b_items[i].score} & {k for i in ids for k in c_items[i].score}
        )
        gated_key = ITEM_KEY.get(head or "", head)
        limit = (task_max_drop or {}).get(task, max_drop)
        for key in sorted(keys, key=lambda k: (k != gated_key, k)):
            scale = PER_ITEM_SCALE.get(key, 100.0)
            b = np.array([float(b_items[i].score.get(key, 0.0)) for i in ids]) * scale
            c = np.array([float(c_items[i].score.get(key, 0.0)) for i in ids]) * scale
            lo, hi = paired_bootstrap(b, c, alpha=alpha, resamples=resamples)
            d = MetricDiff(
                task=task,
                metric=key,
                n=len(ids),
                baseline=float(b.mean()) if len(ids) else 0.0,
                current=float(c.mean()) if len(ids) else 0.0,
                diff=float((c - b).mean()) if len(ids) else 0.0,
                ci_low=lo,
                ci_high=hi,
                max_drop=limit,
                gated=key == gated_key,
            )
            d.regressed = d.gated and -d.diff > limit and d.significant_drop
            out.diffs.append(d)
            if scale == 100.0:
                for i in ids:
                    was = is_right(key, b_items[i].score.get(key, 0.0))
                    now = is_right(key, c_items[i].score.get(key, 0.0))
                    if was != now:
                        out.flips.append(
                            Flip(
                                task,
                                key,
                                i,
                                "right->wrong" if was else "wrong->right",
                                _item_view(b_items[i]),
                                _item_view(c_items[i]),
                            )
                        )
    return out


def exit_code(cmp: Comparison, *, allow_config_change: bool) -> int:
    if cmp.not_comparable and not allow_config_change:
        return 3
    return 1 if cmp.regressions else 0


def summary_markdown(cmp: Comparison, flips_file: str | None = None) -> str:
    pct = round(100 * (1 - cmp.alpha))
    lines = [
        "## qwenvl-eval compare",
        "",
        f"baseline `{cmp.baseline}` vs current `{cmp.current}`; {pct}% paired-bootstrap "
        "intervals; a gated metric fails when it drops by more than its max drop and the "
        "whole interval is below 0.",
        "",
        f"| task | metric | items | baseline | current | diff | {pct}% CI | max drop | status |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for d in cmp.diffs:
        if d.task in cmp.not_comparable:
            status = "not comparable"
        elif d.regressed:
            status = "**REGRESSION**"
        elif not d.gated:
            status = "info"
        else:
            status = "ok"
        lines.append(
            f"| {d.task} | {d.metric}{' (gated)' if d.gated else ''} | {d.n} | {d.baseline:.2f} "
            f"| {d.current:.2f} | {d.diff:+.2f} | [{d.ci_low:+.2f}, {d.ci_high:+.2f}] "
            f"| {d.max_drop:.2f} | {status} |"
        )
    for task, reasons in cmp.not_comparable.items():
        lines.append(f"\n- **{task} not comparable**: {'; '.join(reasons)}")
    if cmp.only_in_one:
        lines.append(f"\n- tasks in only one run (not compared): {', '.join(cmp.only_in_one)}")
    down = sum(f.direction == "right->wrong" for f in cmp.flips)
    lines.append(
        f"\n{down} item(s) went right->wrong, {len(cmp.flips) - down} wrong->right"
        + (f" (outputs in `{flips_file}`)" if flips_file else "")
    )
    return "\n".join(lines) + "\n"


def write_flips(cmp: Comparison, path: Path) -> None:
    from .atomic import write_text_atomic

    write_text_atomic(
        path, "".join(json.dumps(asdict(f), ensure_ascii=False) + "\n" for f in cmp.flips)
    )


def junit_xml(cmp: Comparison) -> str:
    """One test case per task x metric; a regression is a failure, a not comparable task an
    error."""
    import xml.etree.ElementTree as ET

    suite = ET.Element(
        "testsuite",
        name="qwenvl-eval compare",
        tests=str(len(cmp.diffs)),
        failures=str(len(cmp.regressions)),
        errors=str(sum(d.task in cmp.not_comparable for d in cmp.diffs)),
    )
    for d in cmp.diffs:
        case = ET.SubElement(suite, "testcase", classname=d.task, name=d.metric)
        text = (
            f"{d.baseline:.2f} -> {d.current:.2f} ({d.diff:+.2f}, CI [{d.ci_low:+.2f}, "
            f"{d.ci_high:+.2f}], max drop {d.max_drop:.2f})"
        )
        if d.task in cmp.not_comparable:
            ET.SubElement(case, "error", message="not comparable").text = "; ".join(
                cmp.not_comparable[d.task]
            )
        elif d.regressed:
            ET.SubElement(case, "failure", message="significant drop").text = text
        ET.SubElement(case, "system-out").text = text
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
