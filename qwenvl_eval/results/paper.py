"""The Qwen-VL paper's tables with our runs beside the published rows: `table --paper`.

Published figures come from the package data file `results/data/paper_tables.json` (each
row names its source). Each measured cell gets its difference to the published Qwen-VL (or
Qwen-VL-Chat, for a qwen-vl-chat run) value; a cell whose run did not follow the paper's
protocol (another prompt family, a --limit, other generation settings) is marked with the
reason, never silently compared."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from functools import cache
from importlib.resources import files
from typing import Any

import pandas as pd

from ..errors import UserError
from .runs import Run
from .scoretable import ScoreTable, unique_labels

PAPER_TABLES = ("table4", "table5", "table6", "figure4")
PAPER_FAMILIES = ("qwen-vl", "qwen-vl-chat")
SHOTS = (0, 4, 8, 16)


@cache
def published() -> dict[str, Any]:
    return json.loads(files(__package__).joinpath("data/paper_tables.json").read_text())


def reference_model(run: Run) -> str:
    """The published row a run is compared with."""
    return "Qwen-VL-Chat" if run.family == "qwen-vl-chat" else "Qwen-VL"


def split_size(task: str) -> int | None:
    from .. import registry

    try:
        size = registry.get_task(task).dataset.split_size
    except (UserError, AttributeError):
        return None
    return size if isinstance(size, int) else None


def protocol_differences(run: Run, task: str) -> list[str]:
    """Why a run's task result was not produced the way the paper's was (empty: same)."""
    from .. import registry
    from ..model.families import FAMILIES

    reasons = []
    result = run.tasks[task]
    if run.family not in PAPER_FAMILIES:
        return [
            f"{run.label}: prompt family {run.family} (the harness's own prompts, not the "
            "paper's raw prompts)"
        ] + _limit_reason(run, task)
    try:
        declared = registry.get_task(task)
        info = FAMILIES[run.family].info
        paper_gen = asdict(declared.generation_for(info))
        paper_hash = declared.prompt_hash(info)
    except (UserError, KeyError):
        return [f"{run.label}: task {task} is not registered here; protocol unknown"]
    gen = result.get("generation")
    if gen is not None:
        changed = [
            f"{k}={gen.get(k)!r} (paper {v!r})"
            for k, v in paper_gen.items()
            if k in gen and _norm(gen[k]) != _norm(v)
        ]
        if changed:
            reasons.append(f"{run.label}: generation settings {', '.join(changed)}")
    if not reasons and result["prompt_hash"] != paper_hash:
        reasons.append(
            f"{run.label}: prompt differs from the paper's (prompt_hash "
            f"{result['prompt_hash']}, paper {paper_hash})"
        )
    return reasons + _limit_reason(run, task)


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _limit_reason(run: Run, task: str) -> list[str]:
    if run.limit is None:
        return []
    items = run.tasks[task]["counts"].get("items")
    size = split_size(task)
    if size is not None and items is not None and items >= size:
        return []
    of = f" of {size}" if size else ""
    return [f"{run.label}: --limit {run.limit}, scored {items}{of} items"]


def _value(run: Run, task: str) -> float:
    r = run.tasks.get(task)
    if not r:
        return math.nan
    v = r["metrics"].get(run.headline(task) or "")
    return float(v) if isinstance(v, (int, float)) else math.nan


def paper_table(name: str, runs: list[Run]) -> ScoreTable:
    if name == "figure4":
        return figure4_table(runs)
    try:
        spec = published()["tables"][name]
    except KeyError:
        raise UserError(
            f"--paper: unknown table {name!r} (one of {', '.join(PAPER_TABLES)})"
        ) from None
    cols = [(c["task"], c["label"]) for c in spec["columns"]]
    labels, kinds, rows = [], [], []
    pub = {r["model"]: r for r in spec["rows"]}
    for r in spec["rows"]:
        labels.append(r["model"])
        kinds.append("published")
        rows.append([r["values"].get(t, math.nan) for t, _ in cols])
    measured_at: list[tuple[int, Run]] = []
    for run, label in zip(runs, unique_labels(runs), strict=True):
        ref = reference_model(run)
        vals = [_value(run, t) for t, _ in cols]
        refs = [pub.get(ref, {}).get("values", {}).get(t, math.nan) for t, _ in cols]
        measured_at.append((len(rows), run))
        labels += [f"{label} (ours)", f"  vs {ref}"]
        kinds += ["measured", "delta"]
        rows += [vals, [v - p for v, p in zip(vals, refs, strict=True)]]
    frame = pd.DataFrame(rows, index=labels, columns=[lab for _, lab in cols], dtype=float)
    frame.index.name = "model"
    table = ScoreTable(title=spec["title"], values=frame, kinds=kinds)
    _mark_sources(table, spec, cols)
    for i, run in measured_at:
        for task, lab in cols:
            if task not in run.tasks:
                continue
            for reason in protocol_differences(run, task):
                table.mark(i, lab, reason)
                if not math.isnan(table.values.iloc[i + 1][lab]):
                    table.mark(i + 1, lab, reason)
    if "eval_mm_drop_last" in spec:
        _mark_drop_last(table, spec["eval_mm_drop_last"], cols, [i for i, _ in measured_at])
    return table


def _mark_sources(table: ScoreTable, spec: dict[str, Any], cols: list[tuple[str, str]]) -> None:
    sources = {r["source"] for r in spec["rows"]}
    for i, r in enumerate(spec["rows"]):
        for task, lab in cols:
            if task in r.get("cell_notes", {}):
                table.mark(i, lab, f"{r['model']}: {r['cell_notes'][task]}")
            src = r.get("cell_sources", {}).get(task)
            if src and src != r["source"]:
                table.mark(i, lab, f"source: {src}")
    table.footer += [f"published rows: {s}" for s in sorted(sources)]


def _mark_drop_last(
    table: ScoreTable, spec: dict[str, Any], cols: list[tuple[str, str]], measured: list[int]
) -> None:
    """eval_mm's grounding loader drops the last partial batch: the published Qwen-VL
    figures leave out N mod (GPUs x batch) items of every split."""
    step = spec["world_size"] * spec["batch_size"]
    published_qwen = [
        i
        for i, lab in enumerate(table.values.index)
        if table.kinds[i] == "published" and lab in ("Qwen-VL", "Qwen-VL-Chat")
    ]
    for task, lab in cols:
        size = split_size(task)
        if size is None:
            continue
        skipped = size % step
        note = (
            f"{task}: eval_mm scored {size - skipped} of {size} items ({spec['world_size']} "
            f"GPUs x batch {spec['batch_size']} = {step} per step, drop_last=True skips the "
            f"last {skipped}); we score every item"
        )
        for i in published_qwen + [m + 1 for m in measured]:
            if not math.isnan(table.values.iloc[i][lab]):
                table.mark(i, lab, note)


# -- figure 4 ---------------------------------------------------------------------------------
_SHOT = re.compile(r"^(?P<base>.+)_(?P<n>\d+)shot$")


def shot_task(task: str, shots: int) -> str:
    """The few-shot variant's name (the base task for 0 shots); shots_of is its inverse."""
    return task if shots == 0 else f"{task}_{shots}shot"


def shots_of(task: str) -> tuple[str, int]:
    m = _SHOT.match(task)
    return (m["base"], int(m["n"])) if m else (task, 0)


def figure4_points(runs: list[Run]) -> dict[str, dict[str, dict[int, float]]]:
    """model label -> base task -> shots -> score, from any runs holding few-shot tasks."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for run in runs:
        for task in run.tasks:
            base, n = shots_of(task)
            v = _value(run, task)
            if not math.isnan(v):
                out.setdefault(run.label, {}).setdefault(base, {})[n] = v
    return out


def figure4_table(runs: list[Run]) -> ScoreTable:
    spec = published()["tables"]["figure4"]
    cols = [f"{n}-shot" for n in SHOTS]
    labels, kinds, rows = [], [], []
    pub_points: dict[str, dict[str, dict[int, float]]] = {}
    for r in spec["rows"]:
        for task, v in r["values"].items():
            base, n = shots_of(task)
            pub_points.setdefault(r["model"], {}).setdefault(base, {})[n] = v
    for model, tasks in pub_points.items():
        for base, pts in tasks.items():
            labels.append(f"{model} {base}")
            kinds.append("published")
            rows.append([pts.get(n, math.nan) for n in SHOTS])
    marks: list[tuple[int, int, str]] = []
    by_label = {r.label: r for r in runs}
    for label, tasks in figure4_points(runs).items():
        run = by_label[label]
        ref = pub_points.get(reference_model(run), {})
        for base, pts in tasks.items():
            vals = [pts.get(n, math.nan) for n in SHOTS]
            refs = [ref.get(base, {}).get(n, math.nan) for n in SHOTS]
            for j, n in enumerate(SHOTS):
                task = shot_task(base, n)
                holder = next((r for r in runs if r.label == label and task in r.tasks), None)
                for reason in protocol_differences(holder, task) if holder else []:
                    marks += [(len(rows), j, reason), (len(rows) + 1, j, reason)]
            labels += [f"{label} {base} (ours)", f"  vs {reference_model(run)}"]
            kinds += ["measured", "delta"]
            rows += [vals, [v - p for v, p in zip(vals, refs, strict=True)]]
    frame = pd.DataFrame(rows, index=labels, columns=cols, dtype=float)
    frame.index.name = "model task"
    table = ScoreTable(title=spec["title"], values=frame, kinds=kinds)
    for i, j, reason in marks:
        if not math.isnan(table.values.iloc[i, j]):
            table.mark(i, cols[j], reason)
    for r in spec["rows"]:
        by_source: dict[str, list[str]] = {}
        for task in r["values"]:
            by_source.setdefault(r.get("cell_sources", {}).get(task, r["source"]), []).append(task)
        table.footer += [
            f"published {r['model']} {', '.join(t)}: {s}" for s, t in by_source.items()
        ]
    table.rank_columns = False  # a column mixes tasks: its best value means nothing
    return table


def plot_figure4(runs: list[Run], png: Any, svg: Any) -> None:
    """Score against shots, one line per task (and model), published points as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    points = figure4_points(runs)
    many = len(points) > 1
    colors: dict[str, str] = {}
    for model, tasks in points.items():
        for base, pts in sorted(tasks.items()):
            xs = sorted(pts)
            label = f"{model} {base}" if many else base
            (line,) = ax.plot(xs, [pts[x] for x in xs], marker="o", label=label)
            line.set_gid(f"line-{model}-{base}" if many else f"line-{base}")
            colors.setdefault(base, line.get_color())
    for r in published()["tables"]["figure4"]["rows"]:
        if r["model"] != "Qwen-VL":
            continue
        for task, v in r["values"].items():
            base, n = shots_of(task)
            color = colors.get(base, "black")
            ax.plot([n], [v], marker="x", color=color, linestyle="none", gid=f"paper-{task}")
    ax.set_xticks(list(SHOTS))
    ax.set_xlabel("shots")
    ax.set_ylabel("score")
    ax.set_title("Few-shot in-context learning (x: published Qwen-VL)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(png, format="png")
    fig.savefig(svg, format="svg")
    plt.close(fig)
