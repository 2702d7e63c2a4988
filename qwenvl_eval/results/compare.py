"""The regression gate: `qwenvl-eval compare BASELINE CURRENT`.

Its promise: exit 0 only when every gated metric was tested and none dropped significantly
beyond its limit. Items are paired by id. For each task, the metrics with a per-item score
(what each metric means is read from the runs' results.json, as the task declared it) get the
difference of the means and a paired-bootstrap confidence interval (fixed seed: the same runs
always give the same verdict). The task's headline metric is gated: it fails when it drops by
more than its max drop AND its whole (1 - alpha) interval lies on the worse side of zero; it
is inconclusive when the interval still reaches a drop beyond the limit. A gated metric the
gate cannot test (no per-item score, a missing or non-finite per-item score), a task missing
from the current run, and two runs whose prompts, generation settings, data, limits, backend
or weights differ make the runs not comparable."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..semantics import MetricMeaning
from ..types import ItemResult
from .runs import ItemScores, Run

BOOTSTRAP_SEED = 20230824
_CHUNK_CELLS = 1 << 22  # random draws per chunk of resamples: bounded memory on big splits


@dataclass
class MetricDiff:
    task: str
    metric: str  # the task's metric, as results.json names it
    n: int
    baseline: float
    current: float
    diff: float
    ci_low: float
    ci_high: float
    max_drop: float
    gated: bool  # the task's headline metric: the one the gate acts on
    higher_is_better: bool = True
    regressed: bool = False
    inconclusive: bool = False

    @property
    def drop(self) -> float:
        """How much worse the current run is, in points (negative: better)."""
        return -self.diff if self.higher_is_better else self.diff

    @property
    def worst_drop(self) -> float:
        """The largest drop the interval still allows."""
        return -self.ci_low if self.higher_is_better else self.ci_high

    @property
    def significant_drop(self) -> bool:
        return self.ci_high < 0 if self.higher_is_better else self.ci_low > 0

    @property
    def detectable_drop(self) -> float:
        """About the smallest drop this many items can tell from noise: the interval's
        half-width."""
        return (self.ci_high - self.ci_low) / 2


@dataclass
class Flip:
    task: str
    metric: str
    id: str
    direction: str  # "right->wrong" or "wrong->right"
    baseline: dict[str, Any]
    current: dict[str, Any]


@dataclass
class RunInfo:
    path: str
    model: str
    weights_id: str | None
    git: str | None

    @classmethod
    def of(cls, run: Run) -> RunInfo:
        env = run.results.get("environment") or {}
        return cls(
            path=str(run.path),
            model=str(run.results["config"]["model"]),
            weights_id=run.results["model"].get("weights_id"),
            git=env.get("harness_commit"),
        )

    def describe(self) -> str:
        weights = self.weights_id[:12] if self.weights_id else "unknown"
        return f"`{self.model}` (weights {weights}, git {self.git or 'unknown'}, `{self.path}`)"


@dataclass
class Comparison:
    baseline: str
    current: str
    alpha: float
    diffs: list[MetricDiff] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)
    # task -> reasons the configurations differ (--allow-config-change compares anyway)
    not_comparable: dict[str, list[str]] = field(default_factory=dict)
    # task -> reasons its gated metric could not be tested (never overridden)
    untested: dict[str, list[str]] = field(default_factory=dict)
    missing_tasks: list[str] = field(default_factory=list)  # in the baseline only
    new_tasks: list[str] = field(default_factory=list)  # in the current run only
    ungated_tasks: list[str] = field(default_factory=list)  # no metric (submission tasks)
    run_reasons: list[str] = field(default_factory=list)  # the whole runs differ (weights)
    notes: list[str] = field(default_factory=list)
    baseline_info: RunInfo | None = None
    current_info: RunInfo | None = None
    allow_config_change: bool = False
    allow_missing_tasks: bool = False
    fail_inconclusive: bool = False

    @property
    def regressions(self) -> list[MetricDiff]:
        return [d for d in self.diffs if d.regressed]

    @property
    def inconclusive(self) -> list[MetricDiff]:
        return [d for d in self.diffs if d.inconclusive]

    def blocked(self, task: str) -> bool:
        """The task's numbers cannot stand for a verdict."""
        return task in self.untested or (
            not self.allow_config_change and (task in self.not_comparable or self.run_reasons)
        )


DEFAULT_MAX_DROP = 1.0  # points: `compare --max-drop`'s default, and the report's


def paired_bootstrap(
    base: np.ndarray, cur: np.ndarray, *, alpha: float, resamples: int = 10000
) -> tuple[float, float]:
    """Percentile interval of mean(cur - base) over items resampled with replacement.

    A resample of n items takes each distinct difference v_k c_k times with c ~ Multinomial(n,
    counts_k / n): the same distribution as drawing n indices, for K numbers per resample
    instead of n. Per-item scores are mostly few-valued (0/1, VQA's 0 .. 1 in tenths), so a
    214k-item split costs a few dozen numbers per resample; many-valued differences (IoU,
    CIDEr shares) on a small split draw indices in bounded chunks."""
    d = np.asarray(cur, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    n = len(d)
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    values, counts = np.unique(d, return_counts=True)
    means = np.empty(resamples)
    if len(values) * 16 <= n:
        p = counts / n
        step = max(1, _CHUNK_CELLS // len(values))
        for start in range(0, resamples, step):
            k = min(step, resamples - start)
            means[start : start + k] = rng.multinomial(n, p, size=k) @ values / n
    else:
        step = max(1, _CHUNK_CELLS // n)
        for start in range(0, resamples, step):
            k = min(step, resamples - start)
            idx = rng.integers(0, n, size=(k, n), dtype=np.int64)
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
    if baseline.headline(task) != current.headline(task):
        reasons.append(
            f"headline metric differs ({baseline.headline(task)} -> {current.headline(task)})"
        )
    b_mean, c_mean = baseline.meanings(task), current.meanings(task)
    for metric in sorted(set(b_mean) & set(c_mean)):
        if b_mean[metric] != c_mean[metric]:
            reasons.append(
                f"the meaning of {metric} differs ({b_mean[metric]} -> {c_mean[metric]})"
            )
    return reasons


def weights_differences(baseline: Run, current: Run) -> tuple[list[str], list[str]]:
    """(reasons, notes): runs of one model name whose recorded weights differ are not
    comparable (the answers of one were written for other weights); unknown weights are a
    note."""
    bw = baseline.results["model"].get("weights_id")
    cw = current.results["model"].get("weights_id")
    unknown = [name for name, w in (("baseline", bw), ("current", cw)) if not w]
    if unknown:
        return [], [
            f"weights identity unknown for the {' and '.join(unknown)} run (not recorded): "
            "the gate cannot tell whether the answers were written for the weights named"
        ]
    same_name = baseline.results["config"]["model"] == current.results["config"]["model"] or (
        baseline.results["model"].get("path") is not None
        and baseline.results["model"].get("path") == current.results["model"].get("path")
    )
    if same_name and bw != cw:
        return [
            f"weights differ under the same model {current.results['config']['model']!r} "
            f"({bw[:12]} -> {cw[:12]})"
        ], []
    return [], []


def _item_view(it: ItemResult) -> dict[str, Any]:
    view = {"output": it.output, "answer": it.answer, "score": it.score, "error": it.error}
    if it.extra:  # e.g. ScienceQA's option scores (mean_loss per option)
        view["extra"] = it.extra
    return view


def _where(scores: ItemScores, rows: np.ndarray, bad: np.ndarray) -> str:
    first = int(scores.line_numbers[rows[np.argmax(bad)]])
    return f"{int(bad.sum())} item(s) of {scores.path}, first at line {first}"


def _untestable(
    metric: str, key: str, b: ItemScores, c: ItemScores, b_rows: np.ndarray, c_rows: np.ndarray
) -> str | None:
    """Why per-item key `key` cannot be tested on the paired rows (None: it can)."""
    for scores, rows in ((b, b_rows), (c, c_rows)):
        absent = ~scores.present[key][rows]
        if absent.any():
            return f"{metric}: per-item score {key!r} missing on {_where(scores, rows, absent)}"
        bad = ~np.isfinite(scores.values[key][rows])
        if bad.any():
            return f"{metric}: per-item score {key!r} not finite on {_where(scores, rows, bad)}"
    return None


def compare_runs(
    baseline: Run,
    current: Run,
    *,
    max_drop: float,
    task_max_drop: dict[str, float] | None = None,
    alpha: float = 0.05,
    resamples: int = 10000,
    allow_config_change: bool = False,
    allow_missing_tasks: bool = False,
    fail_inconclusive: bool = False,
) -> Comparison:
    task_max_drop = task_max_drop or {}
    for flag, value in [("--max-drop", max_drop), *task_max_drop.items()]:
        if not (math.isfinite(value) and value >= 0):
            where = flag if flag == "--max-drop" else f"--task-max-drop {flag}"
            raise UserError(f"{where}: the allowed drop must be a finite number >= 0, got {value}")
    unknown = sorted(set(task_max_drop) - set(baseline.tasks) - set(current.tasks))
    if unknown:
        raise UserError(f"--task-max-drop: no task {', '.join(unknown)} in either run")
    out = Comparison(
        str(baseline.path),
        str(current.path),
        alpha,
        baseline_info=RunInfo.of(baseline),
        current_info=RunInfo.of(current),
        allow_config_change=allow_config_change,
        allow_missing_tasks=allow_missing_tasks,
        fail_inconclusive=fail_inconclusive,
    )
    out.run_reasons, out.notes = weights_differences(baseline, current)
    out.missing_tasks = [t for t in baseline.tasks if t not in current.tasks]
    out.new_tasks = [t for t in current.tasks if t not in baseline.tasks]
    for task in baseline.tasks:
        if task in current.tasks:
            limit = task_max_drop.get(task, max_drop)
            _compare_task(out, baseline, current, task, limit, resamples)
    return out


def _compare_task(
    out: Comparison, baseline: Run, current: Run, task: str, limit: float, resamples: int
) -> None:
    reasons = config_differences(baseline, current, task)
    if reasons:
        out.not_comparable[task] = reasons
    head = baseline.headline(task)
    meanings = baseline.meanings(task)
    if head is None:  # a task with no metric (a test split scored by its server)
        out.ungated_tasks.append(task)
        return
    untested: list[str] = []
    head_meaning = meanings.get(head)
    if head_meaning is None or head_meaning.item_key is None:
        untested.append(f"headline metric {head} has no per-item score: the gate cannot test it")
    testable = {m: v for m, v in meanings.items() if v.item_key is not None}
    order = sorted(testable, key=lambda m: m != head)
    keys = sorted({testable[m].item_key for m in order})  # type: ignore[misc]
    b, c = baseline.item_scores(task, keys), current.item_scores(task, keys)
    ids = [i for i in b.rows if i in c.rows]
    if len(ids) != len(b.rows) or len(ids) != len(c.rows):
        only_b, only_c = len(b.rows) - len(ids), len(c.rows) - len(ids)
        reasons.append(f"data differ ({only_b} items only in baseline, {only_c} only in current)")
        out.not_comparable[task] = reasons
    if not ids:
        untested.append("no item is in both runs")
    b_rows = np.fromiter((b.rows[i] for i in ids), dtype=np.int64, count=len(ids))
    c_rows = np.fromiter((c.rows[i] for i in ids), dtype=np.int64, count=len(ids))
    for metric in order if ids else ():
        meaning, gated = testable[metric], metric == head
        key = meaning.item_key
        assert key is not None
        problem = _untestable(metric, key, b, c, b_rows, c_rows)
        if problem:
            if gated:
                untested.append(problem)
            else:
                out.notes.append(f"{task}: {problem} (not gated: not shown)")
            continue
        bv = b.values[key][b_rows] * meaning.item_scale
        cv = c.values[key][c_rows] * meaning.item_scale
        lo, hi = paired_bootstrap(bv, cv, alpha=out.alpha, resamples=resamples)
        d = MetricDiff(
            task=task,
            metric=metric,
            n=len(ids),
            baseline=float(bv.mean()),
            current=float(cv.mean()),
            diff=float((cv - bv).mean()),
            ci_low=lo,
            ci_high=hi,
            max_drop=limit,
            gated=gated,
            higher_is_better=meaning.higher_is_better,
        )
        if gated:
            d.regressed = d.drop > limit and d.significant_drop
            d.inconclusive = not d.regressed and d.worst_drop > limit
            _add_flips(out, task, metric, meaning, b, c, b_rows, c_rows, ids)
        out.diffs.append(d)
    if untested:
        out.untested[task] = untested


def _add_flips(
    out: Comparison,
    task: str,
    metric: str,
    meaning: MetricMeaning,
    b: ItemScores,
    c: ItemScores,
    b_rows: np.ndarray,
    c_rows: np.ndarray,
    ids: list[str],
) -> None:
    """One flip per item, on the gated metric (an item with two metrics flips once)."""
    if meaning.right_at is None or meaning.item_key is None:
        return  # right and wrong mean nothing for this metric (CIDEr)
    was = b.values[meaning.item_key][b_rows] >= meaning.right_at
    now = c.values[meaning.item_key][c_rows] >= meaning.right_at
    if not meaning.higher_is_better:
        was, now = ~was, ~now
    flipped = np.flatnonzero(was != now)
    b_items = b.items([int(r) for r in b_rows[flipped]])
    c_items = c.items([int(r) for r in c_rows[flipped]])
    for j, b_it, c_it in zip(flipped, b_items, c_items, strict=True):
        direction = "right->wrong" if was[j] else "wrong->right"
        out.flips.append(Flip(task, metric, ids[j], direction, _item_view(b_it), _item_view(c_it)))


def exit_code(cmp: Comparison, *, allow_config_change: bool | None = None) -> int:
    """0 pass, 1 a significant drop beyond its limit (or inconclusive with
    --fail-inconclusive), 3 not comparable or a gated metric not tested."""
    if allow_config_change is not None:
        cmp.allow_config_change = allow_config_change
    if cmp.untested or not any(d.gated for d in cmp.diffs):
        return 3
    if not cmp.allow_config_change and (cmp.not_comparable or cmp.run_reasons):
        return 3
    if cmp.missing_tasks and not cmp.allow_missing_tasks:
        return 3
    if cmp.regressions:
        return 1
    return 1 if cmp.inconclusive and cmp.fail_inconclusive else 0


def verdict_head(cmp: Comparison) -> str:
    """The verdict and why (exit code included), without the runs' names."""
    code = exit_code(cmp)
    if code == 3:
        why = []
        if not any(d.gated for d in cmp.diffs) and not cmp.untested:
            why.append("no gated metric was compared")
        why += [f"{t}: {r[0]}" for t, r in cmp.untested.items()]
        if not cmp.allow_config_change:
            why += cmp.run_reasons + [f"{t}: {r[0]}" for t, r in cmp.not_comparable.items()]
        if cmp.missing_tasks and not cmp.allow_missing_tasks:
            why.append(f"missing from the current run: {', '.join(cmp.missing_tasks)}")
        head = f"NOT COMPARABLE (exit 3): {'; '.join(why)}"
    elif cmp.regressions:
        head = "FAIL (exit 1): " + "; ".join(
            f"{d.task} {d.metric} {d.diff:+.2f} (limit {d.max_drop:g})" for d in cmp.regressions
        )
    else:
        gated = sum(d.gated for d in cmp.diffs)
        if cmp.inconclusive:
            what = ", ".join(f"{d.task} {d.metric}" for d in cmp.inconclusive)
            head = ("FAIL (exit 1)" if code else "PASS (exit 0)") + f": inconclusive on {what}"
        else:
            head = (
                f"PASS (exit 0): every gated metric ({gated}) was tested and none dropped "
                "significantly beyond its limit"
            )
    return head


def verdict(cmp: Comparison) -> str:
    """The one line a reviewer reads first: the verdict, why, and both runs."""
    b, c = cmp.baseline_info, cmp.current_info
    runs = f" | baseline {b.describe()} | current {c.describe()}" if b and c else ""
    return f"**{verdict_head(cmp)}**{runs}"


def status(cmp: Comparison, d: MetricDiff) -> str:
    """The gate's word on one row: not comparable, REGRESSION, info, inconclusive or ok."""
    if cmp.blocked(d.task):
        return "not comparable"
    if d.regressed:
        return "REGRESSION"
    if not d.gated:
        return "info"
    if d.inconclusive:
        return (
            f"inconclusive: {d.n} items cannot detect a drop of {d.max_drop:g} (the interval "
            f"reaches {d.worst_drop:.2f}; detectable here: about {d.detectable_drop:.2f})"
        )
    return "ok"


def _md_status(cmp: Comparison, d: MetricDiff) -> str:
    word = status(cmp, d)
    return f"**{word}**" if word == "REGRESSION" else word


def summary_markdown(cmp: Comparison, flips_file: str | None = None) -> str:
    pct = round(100 * (1 - cmp.alpha))
    lines = [
        "## qwenvl-eval compare",
        "",
        verdict(cmp),
        "",
        f"{pct}% paired-bootstrap intervals; a gated metric fails when it drops by more than "
        "its max drop and the whole interval is on the worse side of 0, and is inconclusive "
        "when the interval still reaches a drop beyond its max drop.",
        "",
        f"| task | metric | items | baseline | current | diff | {pct}% CI | max drop | status |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for d in cmp.diffs:
        lines.append(
            f"| {d.task} | {d.metric}{' (gated)' if d.gated else ''} | {d.n} | {d.baseline:.2f} "
            f"| {d.current:.2f} | {d.diff:+.2f} | [{d.ci_low:+.2f}, {d.ci_high:+.2f}] "
            f"| {d.max_drop:.2f} | {_md_status(cmp, d)} |"
        )
    for reason in cmp.run_reasons:
        lines.append(f"\n- **runs not comparable**: {reason}")
    for task, reasons in cmp.untested.items():
        why = "; ".join(reasons)
        lines.append(f"\n- **{task} not comparable** (gated metric not tested): {why}")
    for task, reasons in cmp.not_comparable.items():
        lines.append(f"\n- **{task} not comparable**: {'; '.join(reasons)}")
    if cmp.missing_tasks:
        allowed = " (allowed by --allow-missing-tasks)" if cmp.allow_missing_tasks else ""
        lines.append(
            f"\n- **tasks of the baseline missing from the current run**{allowed}: "
            + ", ".join(cmp.missing_tasks)
        )
    if cmp.new_tasks:
        new = ", ".join(cmp.new_tasks)
        lines.append(f"\n- tasks only in the current run (nothing to gate): {new}")
    if cmp.ungated_tasks:
        lines.append(
            f"\n- tasks without a metric (scored by a server; not gated): "
            f"{', '.join(cmp.ungated_tasks)}"
        )
    for note in cmp.notes:
        lines.append(f"\n- note: {note}")
    down = sum(f.direction == "right->wrong" for f in cmp.flips)
    lines.append(
        f"\n{down} item(s) went right->wrong, {len(cmp.flips) - down} wrong->right"
        + (f" (outputs in `{flips_file}`)" if flips_file else "")
    )
    return "\n".join(lines) + "\n"


def flips_jsonl(cmp: Comparison) -> str:
    return "".join(json.dumps(asdict(f), ensure_ascii=False) + "\n" for f in cmp.flips)


def write_flips(cmp: Comparison, path: Path) -> None:
    from .atomic import write_text_atomic

    write_text_atomic(path, flips_jsonl(cmp))


def junit_xml(cmp: Comparison) -> str:
    """One test case per task x metric; a regression (or, with --fail-inconclusive, an
    inconclusive gated metric) is a failure; a not comparable or missing task an error. The
    verdict and both runs' model, weights and git revision are suite properties."""
    import xml.etree.ElementTree as ET

    code = exit_code(cmp)
    errors = [d for d in cmp.diffs if cmp.blocked(d.task)]
    suite = ET.Element("testsuite", name="qwenvl-eval compare")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="verdict", value=verdict(cmp).replace("**", ""))
    ET.SubElement(props, "property", name="exit_code", value=str(code))
    for role, info in (("baseline", cmp.baseline_info), ("current", cmp.current_info)):
        if info is not None:
            for key in ("model", "weights_id", "git", "path"):
                value = getattr(info, key)
                ET.SubElement(props, "property", name=f"{role}.{key}", value=str(value or ""))
    failures = 0
    for d in cmp.diffs:
        case = ET.SubElement(suite, "testcase", classname=d.task, name=d.metric)
        text = (
            f"{d.baseline:.2f} -> {d.current:.2f} ({d.diff:+.2f}, CI [{d.ci_low:+.2f}, "
            f"{d.ci_high:+.2f}], max drop {d.max_drop:.2f}): {status(cmp, d)}"
        )
        if d in errors:
            reasons = cmp.untested.get(d.task, []) + cmp.not_comparable.get(d.task, [])
            ET.SubElement(case, "error", message="not comparable").text = "; ".join(
                reasons + cmp.run_reasons
            )
        elif d.regressed or (d.inconclusive and cmp.fail_inconclusive):
            failures += 1
            message = "significant drop" if d.regressed else "inconclusive"
            ET.SubElement(case, "failure", message=message).text = text
        ET.SubElement(case, "system-out").text = text
    tested = {d.task for d in cmp.diffs if d.gated}
    extra = [(t, r) for t, r in cmp.untested.items() if t not in tested]
    if not cmp.allow_missing_tasks:
        extra += [(t, ["missing from the current run"]) for t in cmp.missing_tasks]
    for task, reasons in extra:
        case = ET.SubElement(suite, "testcase", classname=task, name="(gate)")
        ET.SubElement(case, "error", message="not comparable").text = "; ".join(reasons)
    suite.set("tests", str(len(cmp.diffs) + len(extra)))
    suite.set("failures", str(failures))
    suite.set("errors", str(len(errors) + len(extra)))
    ET.SubElement(suite, "system-out").text = verdict(cmp).replace("**", "")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
