"""The Qwen-VL paper's tables (and the Qwen2-VL report's image table) with our runs beside
the published rows: `table --paper`.

Published figures come from the package data file `results/data/paper_tables.json` (each
row names its source and the paper's row group; columns carry the paper's column groups, and
where the headline is not the published figure, the metric and scale that give it). Each
measured cell gets its difference to the published row of the run's model (Qwen-VL, or
Qwen-VL-Chat for a qwen-vl-chat run; a table may name its own rows by model name); where a
run did not follow the paper's protocol (another prompt family, a --limit, other generation
settings, a task asked otherwise than the paper asked it) its row gets one note saying so,
and those cells are never ranked best. Submission-only splits show the submission file, or
the server's score once recorded (`submission.py`)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError
from ..itemsets import eval_mm_kept
from .runs import Run
from .scoretable import ScoreTable, unique_labels

PAPER_TABLES = ("table4", "table5", "table6", "figure4", "qwen2vl-image")
PAPER_FAMILIES = ("qwen-vl", "qwen-vl-chat")
SHOTS = (0, 4, 8, 16)


@cache
def published() -> dict[str, Any]:
    return json.loads(files(__package__).joinpath("data/paper_tables.json").read_text())


def reference_model(run: Run, spec: dict[str, Any] | None = None) -> str | None:
    """The published row a run is compared with: the first of the table's `references`
    whose `match` is in the run's model name (case-insensitive; None when none is), else
    Qwen-VL-Chat for a qwen-vl-chat run and Qwen-VL for any other."""
    if spec and "references" in spec:
        given = (run.results["config"].get("model"), run.results["model"].get("spec"))
        names = [str(n or "").lower() for n in given]
        for ref in spec["references"]:
            if any(ref["match"].lower() in n for n in names):
                return str(ref["row"])
        return None
    return "Qwen-VL-Chat" if run.family == "qwen-vl-chat" else "Qwen-VL"


def split_size(task: str) -> int | None:
    from .. import registry

    try:
        size = registry.get_task(task).dataset.split_size
    except (UserError, AttributeError):
        return None
    return size if isinstance(size, int) else None


def protocol_differences(
    run: Run, task: str, families: tuple[str, ...] = PAPER_FAMILIES
) -> list[str]:
    """Why a run's task result was not produced the way the paper's was (empty: same),
    without the run's name: the table groups them into one note per run. `families`: the
    prompt families the paper's own figures were produced with."""
    from .. import registry
    from ..model.families import FAMILIES

    reasons = []
    result = run.tasks[task]
    if run.family not in families:
        why = (
            "the harness's own prompts, not the paper's raw prompts"
            if families == PAPER_FAMILIES
            else f"the published figures are of the {', '.join(families)} family"
        )
        return [f"prompt family {run.family} ({why})"] + _limit_reason(run, task)
    try:
        declared = registry.get_task(task)
        # A few-shot prompt depends on the seed of its example draw: compare with the paper's
        # protocol under the run's own seed (the paper's draw itself cannot be recovered).
        seed = run.results["config"].get("seed") or 0
        info = FAMILIES[run.family].info
        paper_gen = asdict(declared.generation_for(info))
        paper_hash = declared.prompt_hash(info, seed=seed)
    except (UserError, KeyError):
        return [f"task {task} is not registered here; protocol unknown"]
    gen = result.get("generation")
    if gen is not None:
        changed = [
            f"{k}={gen.get(k)!r} (paper {v!r})"
            for k, v in paper_gen.items()
            if k in gen and _norm(gen[k]) != _norm(v)
        ]
        if changed:
            reasons.append(f"generation settings {', '.join(changed)}")
    if not reasons and result["prompt_hash"] != paper_hash:
        reasons.append(
            f"prompt differs from the paper's (prompt_hash {result['prompt_hash']}, "
            f"paper {paper_hash})"
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
    if items == run.limit:  # the same words for every split: one note for the row
        return [f"--limit {run.limit} ({items} items per split)"]
    of = f" of {size}" if size else ""
    return [f"--limit {run.limit} (scored {items}{of} items)"]


def _value(run: Run, task: str, metric: str | None = None, scale: float = 1.0) -> float:
    """The task's headline (or `metric`) x `scale`: the published figure's units."""
    r = run.tasks.get(task)
    if not r:
        return math.nan
    v = r["metrics"].get(metric or run.headline(task) or "")
    return scale * float(v) if isinstance(v, (int, float)) else math.nan


@dataclass
class Cell:
    """A measured cell: its value, the task it came from, and what it says instead of a
    number (a submission waiting for its server score)."""

    value: float = math.nan
    task: str | None = None
    text: str | None = None
    note: str | None = None


def measured_cell(run: Run, col: dict[str, Any]) -> Cell:
    """The column's own split first; else a server score recorded for it (or for the
    column's server-scored split); else the submission file written for the server. A column's
    `fallback` task (the same benchmark asked another way) comes last; its note says so."""
    if not col.get("measurable", True):
        return Cell()
    fallback = col.get("fallback", {}).get("task")
    tasks = [t for t in (col["task"], col.get("server_task"), fallback) if t and t in run.tasks]
    for task in tasks:
        v = _value(run, task, col.get("metric"), float(col.get("scale", 1.0)))
        if not math.isnan(v):
            return Cell(v, task)
    for task in tasks:
        score = run.tasks[task].get("server_score")
        if score:
            return Cell(
                float(score["score"]),
                task,
                note=f"{col['label']}: {task} scored by the evaluation server "
                f"({score['source']}; recorded {score.get('recorded', '?')})",
            )
    for task in tasks:
        sub = run.tasks[task].get("submission_file")
        if sub:
            return Cell(task=task, text=f"submission written: {Path(sub).name}")
    return Cell()


def run_note(reasons: dict[str, list[str]]) -> str | None:
    """One note for a run's row: what holds for all its cells, then what holds for some."""
    if not any(reasons.values()):
        return None
    cols = list(reasons)
    common = [r for r in dict.fromkeys(x for rs in reasons.values() for x in rs)]
    common = [r for r in common if all(r in reasons[c] for c in cols)]
    parts = []
    if common:
        parts.append(("all cells of this row: " if len(cols) > 1 else "") + "; ".join(common))
    for c in cols:
        rest = [r for r in reasons[c] if r not in common]
        if rest:
            parts.append(f"{c}: {'; '.join(rest)}")
    return ". ".join(parts)


def paper_table(name: str, runs: list[Run]) -> ScoreTable:
    if name == "figure4":
        return figure4_table(runs)
    try:
        spec = published()["tables"][name]
    except KeyError:
        raise UserError(
            f"--paper: unknown table {name!r} (one of {', '.join(PAPER_TABLES)})"
        ) from None
    cols = spec["columns"]
    names = [c["label"] for c in cols]
    labels, kinds, rows, groups = [], [], [], []
    pub = {r["model"]: r for r in spec["rows"]}
    for r in spec["rows"]:
        labels.append(r["model"])
        kinds.append("published")
        groups.append(r.get("group", ""))
        rows.append([r["values"].get(c["task"], math.nan) for c in cols])
    measured: list[tuple[int, Run, list[Cell]]] = []
    measured_group = published().get("measured_group", "")
    families = tuple(spec.get("families", PAPER_FAMILIES))
    unmatched: list[int] = []
    for run, label in zip(runs, unique_labels(runs), strict=True):
        ref = reference_model(run, spec)
        if ref is None:
            unmatched.append(len(rows) + 1)
        cells = [measured_cell(run, c) for c in cols]
        vals = [c.value for c in cells]
        refs = [pub.get(ref or "", {}).get("values", {}).get(c["task"], math.nan) for c in cols]
        measured.append((len(rows), run, cells))
        labels += [f"{label} (ours)", f"  vs {ref or '-'}"]
        kinds += ["measured", "delta"]
        groups += [measured_group, measured_group]
        rows += [vals, [v - p for v, p in zip(vals, refs, strict=True)]]
    frame = pd.DataFrame(rows, index=labels, columns=names, dtype=float)
    frame.index.name = "model"
    table = ScoreTable(title=spec["title"], values=frame, kinds=kinds, row_groups=groups)
    _layout(table, cols)
    _mark_sources(table, spec, cols)
    for i, run, cells in measured:
        reasons: dict[str, list[str]] = {}
        for col, cell in zip(cols, cells, strict=True):
            lab = col["label"]
            if cell.text:
                table.cell_text[(i, lab)] = cell.text
            if cell.note:
                table.mark(i, lab, cell.note)
            if not col.get("measurable", True):
                table.mark(i, lab, col["unmeasured_note"])
            if cell.task is None or math.isnan(cell.value):
                continue
            reasons[lab] = protocol_differences(run, cell.task, families)
            if cell.task == col.get("fallback", {}).get("task"):  # asked otherwise than the paper
                reasons[lab].append(col["fallback"]["note"])
            if reasons[lab]:
                table.unranked |= {(i, lab), (i + 1, lab)}
        note = run_note(reasons)
        if note:
            table.mark_row(i, f"{unique_labels(runs)[runs.index(run)]}: {note}")
    for i in unmatched:
        names = ", ".join(r["match"] for r in spec["references"])
        table.mark_row(i, f"no published row for this model (its name contains none of {names})")
    if "eval_mm_drop_last" in spec:
        _mark_drop_last(table, spec["eval_mm_drop_last"], cols, measured)
    table.footer += [f"{c['label']}: {c['metric_note']}" for c in cols if c.get("metric_note")]
    if spec.get("note"):
        table.footer.insert(0, spec["note"])
    return table


def _layout(table: ScoreTable, cols: list[dict[str, Any]]) -> None:
    """The paper's column groups (header spans) and short headers under them."""
    if not any("group" in c for c in cols):
        return
    for c in cols:
        g = c.get("group", "")
        if table.col_groups and table.col_groups[-1][0] == g:
            table.col_groups[-1] = (g, table.col_groups[-1][1] + 1)
        else:
            table.col_groups.append((g, 1))
        table.short_headers[c["label"]] = c.get("short", c["label"])


def _mark_sources(table: ScoreTable, spec: dict[str, Any], cols: list[dict[str, Any]]) -> None:
    sources = list(dict.fromkeys(r["source"] for r in spec["rows"]))
    for i, r in enumerate(spec["rows"]):
        if r.get("source_note"):
            table.mark_row(i, f"{r['model']}: {r['source_note']}")
        for c in cols:
            task, lab = c["task"], c["label"]
            if task in r.get("cell_text", {}):
                table.cell_text[(i, lab)] = r["cell_text"][task]
            if task in r.get("cell_notes", {}):
                table.mark(i, lab, f"{r['model']}: {r['cell_notes'][task]}")
            src = r.get("cell_sources", {}).get(task)
            if src and src != r["source"]:
                table.mark(i, lab, f"source: {src}")
            if c.get("published_split_note") and task in r["values"]:
                table.mark(i, lab, f"{lab}: {c['published_split_note']}")
    table.footer += [f"published rows: {s}" for s in sources]


def _mark_drop_last(
    table: ScoreTable,
    spec: dict[str, Any],
    cols: list[dict[str, Any]],
    measured: list[tuple[int, Run, list[Cell]]],
) -> None:
    """The published Qwen-VL figures leave out eval_mm's dropped items: one note for the
    published rows and one per measured run (on all items, or on eval_mm's items)."""
    w, b = spec["world_size"], spec["batch_size"]
    counts = []
    for c in cols:
        size = split_size(c["task"])
        if size is None:
            continue
        scored = sum(len(r) for r in eval_mm_kept(size, w, b))
        counts.append(f"{c['label']} {scored} of {size}")
    if not counts:
        return
    note = (
        f"eval_mm ({w} GPUs x batch {b}) scored {', '.join(counts)} items: "
        f"{spec['note']}; `--item-set eval_mm` scores exactly those items"
    )
    for i, lab in enumerate(table.values.index):
        if table.kinds[i] == "published" and lab in ("Qwen-VL", "Qwen-VL-Chat"):
            table.mark_row(i, note)
    for i, run, cells in measured:
        if not any(c.task and not math.isnan(c.value) for c in cells):
            continue
        item_set = run.results["config"].get("item_set") or "all"
        if item_set.startswith("eval_mm"):
            table.mark_row(i + 1, "delta on eval_mm's item set: the same items as published")
        else:
            table.mark_row(
                i + 1,
                "delta of every item against eval_mm's subset (see the published row's note); "
                "`--item-set eval_mm` gives the delta on identical items",
            )


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
    pub_points = _published_points()
    cell_notes: list[tuple[int, int, str]] = []
    for r in spec["rows"]:
        for base, pts in pub_points[r["model"]].items():
            for task, note in r.get("cell_notes", {}).items():
                b, n = shots_of(task)
                if b == base and n in SHOTS:
                    cell_notes.append((len(rows), SHOTS.index(n), f"{r['model']}: {note}"))
            labels.append(f"{r['model']} {base}")
            kinds.append("published")
            rows.append([pts.get(n, math.nan) for n in SHOTS])
    run_rows: dict[str, list[int]] = {}
    reasons: dict[str, dict[str, list[str]]] = {}
    by_label = {r.label: r for r in runs}
    for label, tasks in figure4_points(runs).items():
        run = by_label[label]
        ref = pub_points.get(reference_model(run), {})
        for base, pts in tasks.items():
            vals = [pts.get(n, math.nan) for n in SHOTS]
            refs = [ref.get(base, {}).get(n, math.nan) for n in SHOTS]
            for n in SHOTS:
                task = shot_task(base, n)
                holder = next((r for r in runs if r.label == label and task in r.tasks), None)
                if holder is not None and not math.isnan(pts.get(n, math.nan)):
                    reasons.setdefault(label, {})[f"{base} {n}-shot"] = protocol_differences(
                        holder, task
                    )
            run_rows.setdefault(label, []).append(len(rows))
            labels += [f"{label} {base} (ours)", f"  vs {reference_model(run)}"]
            kinds += ["measured", "delta"]
            rows += [vals, [v - p for v, p in zip(vals, refs, strict=True)]]
    frame = pd.DataFrame(rows, index=labels, columns=cols, dtype=float)
    frame.index.name = "model task"
    table = ScoreTable(title=spec["title"], values=frame, kinds=kinds)
    for i, j, note in cell_notes:
        table.mark(i, cols[j], note)
    for label, at in run_rows.items():
        note = run_note(reasons.get(label, {}))
        for i in at:
            if note:
                table.mark_row(i, f"{label}: {note}")
    for r in spec["rows"]:
        by_source: dict[str, list[str]] = {}
        for task in r["values"]:
            by_source.setdefault(r.get("cell_sources", {}).get(task, r["source"]), []).append(task)
        table.footer += [
            f"published {r['model']} {', '.join(t)}: {s}" for s, t in by_source.items()
        ]
    table.footer.append(spec["paper_draw_note"])
    table.rank_columns = False  # a column mixes tasks: its best value means nothing
    return table


def _published_points() -> dict[str, dict[str, dict[int, float]]]:
    """model -> base task -> shots -> published score."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for r in published()["tables"]["figure4"]["rows"]:
        for task, v in r["values"].items():
            base, n = shots_of(task)
            out.setdefault(r["model"], {}).setdefault(base, {})[n] = v
    return out


FIGURE4_ORDER = ("okvqa", "vizwiz", "textvqa", "flickr30k")  # the paper's panel order
_MARKERS = {"Qwen-VL": "X", "Qwen-VL-Chat": "P", "Flamingo-9B": "v", "Flamingo-80B": "^"}


def _metric_names(runs: list[Run]) -> dict[str, str]:
    """base task -> the headline metric its runs recorded (the panel's y-axis)."""
    out: dict[str, str] = {}
    for run in runs:
        for task in run.tasks:
            head = run.headline(task)
            if head:
                out.setdefault(shots_of(task)[0], head)
    return out


def plot_figure4(runs: list[Run], png: Any, svg: Any) -> None:
    """The paper's Figure 4: one panel per dataset (its metric on y, shots on x), a line per
    run labelled with its model, the published points as markers, each source cited below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = figure4_points(runs)
    measured = {b for tasks in points.values() for b in tasks}
    bases = [b for b in FIGURE4_ORDER if b in measured] + sorted(measured - set(FIGURE4_ORDER))
    bases = bases or list(FIGURE4_ORDER)
    metrics = _metric_names(runs)
    pub = _published_points()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "figure4"}):
        fig, axes = plt.subplots(
            1, len(bases), figsize=(3.3 * len(bases), 3.6), dpi=100, squeeze=False
        )
        many = len(points) > 1
        for ax, base in zip(axes[0], bases, strict=True):
            ax.set_gid(f"panel-{base}")
            for model, tasks in points.items():
                pts = tasks.get(base)
                if not pts:
                    continue
                xs = sorted(pts)
                (line,) = ax.plot(xs, [pts[x] for x in xs], marker="o", label=model)
                line.set_gid(f"line-{model}-{base}" if many else f"line-{base}")
            for model, tasks in pub.items():
                pts = tasks.get(base, {})
                if pts:
                    xs = sorted(pts)
                    ax.plot(
                        xs,
                        [pts[x] for x in xs],
                        marker=_MARKERS.get(model, "s"),
                        color="black" if model == "Qwen-VL" else "grey",
                        linestyle="none",
                        label=f"{model} (published)",
                        gid=f"paper-{model}-{base}",
                    )
            ax.set_title(base)
            ax.set_xticks(list(SHOTS))
            ax.set_xlabel("shots")
            ax.set_ylabel(metrics.get(base, "score"))
            ax.legend(fontsize="x-small", loc="best")
        fig.text(
            0.01,
            0.01,
            "Published: Qwen-VL and Qwen-VL-Chat 0-shot from the paper's Tables 4-5, 4-shot from "
            "the official README (HTML comment; uncertain); Flamingo 0-shot from the paper's "
            "Table 4.",
            fontsize="x-small",
            gid="sources",
        )
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        fig.savefig(png, format="png", metadata={"Title": "Figure 4"})
        fig.savefig(svg, format="svg", metadata={"Date": None})
        plt.close(fig)
