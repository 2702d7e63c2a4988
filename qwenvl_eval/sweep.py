"""The few-shot sweep of the paper's figure 4: one `app.run` per shot count, each in its own
run directory (so each resumes on its own), then the curves and the table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from . import registry
from .app import run as run_app
from .config import RunConfig
from .evaluator import Progress
from .results.paper import shot_task


@dataclass
class SweepResult:
    run_dirs: dict[int, Path]
    png: Path
    svg: Path
    table: Path


def fewshot_sweep(
    base: RunConfig, tasks: list[str], shots: list[int], progress: Progress | None = None
) -> SweepResult:
    from .results.atomic import write_text_atomic
    from .results.paper import figure4_table, plot_figure4
    from .results.render import render
    from .results.runs import load_run

    # Every task name is checked before the first model load.
    plan = {n: registry.resolve([shot_task(t, n) for t in tasks]) for n in shots}
    out_root = Path(base.output_dir)
    run_dirs = {}
    for n, names in plan.items():
        config = replace(base, tasks=names, output_dir=out_root / f"{n}shot")
        run_dirs[n] = run_app(config, progress).run_dir
    runs = [load_run(d) for d in run_dirs.values()]
    png, svg, md = (out_root / f"figure4.{ext}" for ext in ("png", "svg", "md"))
    plot_figure4(runs, png, svg)
    write_text_atomic(md, render(figure4_table(runs), "markdown") + "\n")
    return SweepResult(run_dirs, png, svg, md)
