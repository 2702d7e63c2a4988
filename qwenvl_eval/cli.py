"""The `qwenvl-eval` command line. Parses flags into a RunConfig and shows progress; all
the work happens in `app.run`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .errors import UserError
from .judge import JUDGE_FLAG_HELP
from .runflags import with_runner_flags

# the judge's flags, shared by `run` and `rescore`
JudgeBaseUrl = Annotated[str | None, typer.Option(help=JUDGE_FLAG_HELP["judge_base_url"])]
JudgeModel = Annotated[str | None, typer.Option(help=JUDGE_FLAG_HELP["judge_model"])]
JudgeApiKeyEnv = Annotated[str | None, typer.Option(help=JUDGE_FLAG_HELP["judge_api_key_env"])]

if TYPE_CHECKING:
    from .model.base import RunnerOptions

app = typer.Typer(
    help="Evaluate Qwen-VL family models on the benchmarks of the Qwen-VL paper.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect benchmark data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
submission_app = typer.Typer(help="Scores of server-scored splits.", no_args_is_help=True)
app.add_typer(submission_app, name="submission")
console = Console(stderr=True)
out = Console()


class RichProgress:
    """A progress bar per task with live throughput from the runner's counters."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._ids: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def start(self, task: str, total: int, done: int) -> None:
        self._ids[task] = self._bar.add_task(task, total=total, completed=done, rate="")

    def advance(self, task: str, n: int, stats: dict[str, Any]) -> None:
        rate = f"{stats.get('items_per_s', 0):.2f} it/s {stats.get('tokens_per_s', 0):.0f} tok/s"
        self._bar.update(self._ids[task], advance=n, rate=rate)

    def finish(self, task: str) -> None:
        self._bar.refresh()


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@app.command()
@with_runner_flags
def run(
    model: Annotated[
        str,
        typer.Option(
            help="Preset name (see `models`), checkpoint folder, "
            "or Hub id present in the local HF cache."
        ),
    ],
    tasks: Annotated[str, typer.Option(help="Comma-separated task or group names.")],
    data_dir: Annotated[
        str | None,
        typer.Option(
            help="Data root; `builtin` for the bundled mini sets. Default: $QWENVL_EVAL_DATA, "
            "then ~/.cache/qwenvl_eval/data."
        ),
    ] = None,
    data_layout: Annotated[
        str,
        typer.Option(
            help="Which copy of the data to read: auto (official files first, then the Qwen-VL "
            "eval_mm files, then Hugging Face copies), official, eval_mm or hf."
        ),
    ] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="First N items per task.")] = None,
    item_set: Annotated[
        str,
        typer.Option(
            help="all, or eval_mm: only the RefCOCO items the Qwen-VL repository's eval_mm "
            "script scored (8 GPUs x batch 8; eval_mm:GPUSxBATCH for another launch)."
        ),
    ] = "all",
    output_dir: Annotated[Path, typer.Option(help="Where runs are written.")] = Path("results"),
    family: Annotated[
        str | None,
        typer.Option(
            help="Override the model family (qwen-vl, qwen-vl-chat, qwen2-vl, qwen2.5-vl, "
            "qwen3-vl)."
        ),
    ] = None,
    gen_kwargs: Annotated[
        str | None,
        typer.Option(
            help="Generation overrides, e.g. max_new_tokens=20,min_new_tokens=1 (recorded)."
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Reuse answers already in the run directory (default)."),
    ] = False,
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="Compute every item again for these tasks.")
    ] = False,
    max_failures: Annotated[
        str | None,
        typer.Option(
            help="Stop the run once more than N items (or P% of the run's items) failed; "
            "answers written so far are kept."
        ),
    ] = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
    *,
    runner: RunnerOptions,
) -> None:
    """Evaluate a model on tasks and write results.json, results.md and predictions."""
    from .app import run as run_app
    from .config import RunConfig, parse_gen_kwargs
    from .judge import JudgeOptions

    if resume and no_resume:
        raise UserError("--resume and --no-resume contradict each other; give one of them")
    config = RunConfig(
        model=model,
        tasks=_split(tasks),
        data_dir=data_dir,
        data_layout=data_layout,
        limit=limit,
        item_set=item_set,
        output_dir=output_dir,
        family=family,
        gen_kwargs=parse_gen_kwargs(gen_kwargs),
        resume=not no_resume,
        max_failures=max_failures,
        runner=runner,
        judge=JudgeOptions.from_flags(judge_base_url, judge_model, judge_api_key_env),
    )
    config.validate()  # before the progress bar and any model work
    with RichProgress() as progress:
        outcome = run_app(config, progress)
    if outcome.primary:  # under torchrun, rank 0 prints the table for the whole run
        _print_results(outcome)


def _print_results(outcome) -> None:

    from .results.render import to_rich
    from .results.scoretable import task_rows_table

    model = outcome.results["model"]
    title = f"{model.get('spec')} ({model.get('backend')}, {model.get('dtype')})"
    out.print(to_rich(task_rows_table(outcome.results, title=title), width=out.width))
    out.print(f"results: {outcome.results_json}", markup=False, highlight=False)


@app.command()
def rescore(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with results.json.")],
    data_dir: Annotated[
        str | None, typer.Option(help="Data root (default: the one the run used).")
    ] = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
) -> None:
    """Score a run's saved outputs again with the current code: no model, no GPU."""
    from .app import rescore as rescore_app
    from .judge import JudgeOptions

    judge = JudgeOptions.from_flags(judge_base_url, judge_model, judge_api_key_env)
    _print_results(rescore_app(run_dir, data_dir, judge))


def _write_or_print(text: str, output: Path | None) -> None:
    from .results.atomic import write_text_atomic

    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    if output.is_dir():
        raise UserError(f"--output {output}: is a directory; give a file name")
    try:
        write_text_atomic(output, text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise UserError(f"--output {output}: cannot write ({exc.strerror or exc})") from None
    console.print(f"wrote {output}", highlight=False)


@app.command("table")
def table_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (or results.json).")],
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="markdown, latex, csv, html or json (default: the "
            "terminal, or markdown with --output).",
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    all_metrics: Annotated[
        bool, typer.Option("--all-metrics", help="Every metric, not only the headline.")
    ] = False,
    paper: Annotated[
        str | None,
        typer.Option(
            help="The paper's layout with published rows: table4, table5, table6, "
            "figure4 (also draws figure4.png/.svg beside --output), or qwen2vl-image "
            "(the Qwen2-VL report's image table)."
        ),
    ] = None,
) -> None:
    """A table of runs: rows are runs, columns each task's headline metric, best marked."""
    from .results.paper import paper_table, plot_figure4
    from .results.render import render, to_rich
    from .results.runs import load_run
    from .results.scoretable import runs_table

    runs = [load_run(p) for p in run_dirs]
    table = paper_table(paper, runs) if paper else runs_table(runs, all_metrics=all_metrics)
    if format is None and output is None:
        out.print(to_rich(table, width=out.width))
    else:
        _write_or_print(render(table, format or "markdown"), output)
    if paper == "figure4":
        stem = output.with_suffix("") if output else Path("figure4")
        png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
        plot_figure4(runs, png, svg)
        console.print(f"wrote {png} and {svg}", highlight=False)


@submission_app.command("record")
def submission_record(
    run_dir: Annotated[Path, typer.Argument(help="The run directory holding the submission.")],
    task: Annotated[str, typer.Option(help="The submission-only task, e.g. vqav2_testdev.")],
    score: Annotated[float, typer.Option(help="The server's score, in percent.")],
    source: Annotated[str, typer.Option(help="Where it comes from, e.g. 'EvalAI run 123'.")],
) -> None:
    """Record the score an evaluation server returned for a run's submission file."""
    from .results.submission import record_server_score

    rec = record_server_score(run_dir, task, score, source)
    console.print(f"recorded {task} = {rec['score']:g} ({rec['source']})", highlight=False)


@app.command()
def leaderboard(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (or results.json).")],
) -> None:
    """Alias of `table --format markdown`."""
    table_command(run_dirs, format="markdown", output=None, all_metrics=False, paper=None)


def _task_numbers(text: str | None, flag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in _split(text or ""):
        task, _, value = pair.partition("=")
        try:
            out[task.strip()] = float(value)
        except ValueError:
            raise UserError(f"{flag}: expected task=number, got {pair!r}") from None
    return out


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="The baseline run directory.")],
    current: Annotated[Path, typer.Argument(help="The run to check.")],
    max_drop: Annotated[
        float, typer.Option(help="Allowed drop in points of a gated metric (finite, >= 0).")
    ] = 1.0,  # compare.DEFAULT_MAX_DROP
    task_max_drop: Annotated[
        str | None, typer.Option(help="Per-task allowed drop, e.g. okvqa=2,textvqa=0.5.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the drop.")] = 0.05,
    allow_config_change: Annotated[
        bool,
        typer.Option(
            "--allow-config-change",
            help="Compare even when prompts, generation, data, limits, backend or weights differ.",
        ),
    ] = False,
    allow_missing_tasks: Annotated[
        bool,
        typer.Option(
            "--allow-missing-tasks",
            help="Pass although tasks of the baseline are missing from the current run.",
        ),
    ] = False,
    fail_inconclusive: Annotated[
        bool,
        typer.Option(
            "--fail-inconclusive",
            help="Fail (exit 1) when a gated metric's interval still reaches a drop beyond "
            "its max drop (too few items to tell).",
        ),
    ] = False,
    output: Annotated[
        Path, typer.Option(help="Markdown summary; the flipped items go beside it.")
    ] = Path("compare.md"),
    junit_xml: Annotated[
        Path | None, typer.Option(help="Also write a JUnit XML report here.")
    ] = None,
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = 10000,
) -> None:
    """Regression gate: exit 0 only when every gated metric was tested and none dropped
    significantly beyond its limit. Exit 1: a gated metric dropped by more than --max-drop,
    significant at --alpha (or inconclusive, with --fail-inconclusive); 3: the runs are not
    comparable or a gated metric could not be tested; 2: usage error."""
    import os

    from .results import compare as C
    from .results.gate_output import check_targets, write_outputs
    from .results.runs import load_run

    if not 0 < alpha < 1:
        raise UserError(f"--alpha: must be between 0 and 1, got {alpha}")
    if alpha / 2 * resamples < 10:  # a percentile needs resamples beyond it
        raise UserError(f"--alpha {alpha} needs more than {resamples} --resamples")
    base_run, cur_run = load_run(baseline), load_run(current)
    flips = output.with_suffix(".flips.jsonl")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY") or None
    targets = {"--output": output, "--output (flips)": flips, "--junit-xml": junit_xml}
    targets["GITHUB_STEP_SUMMARY"] = Path(step_summary) if step_summary else None
    check_targets(targets, [base_run.path, cur_run.path])
    cmp = C.compare_runs(
        base_run,
        cur_run,
        max_drop=max_drop,
        task_max_drop=_task_numbers(task_max_drop, "--task-max-drop"),
        alpha=alpha,
        resamples=resamples,
        allow_config_change=allow_config_change,
        allow_missing_tasks=allow_missing_tasks,
        fail_inconclusive=fail_inconclusive,
    )
    summary = C.summary_markdown(cmp, flips.name)
    write_outputs(
        output=(output, summary),
        flips=(flips, C.flips_jsonl(cmp)),
        junit=(junit_xml, C.junit_xml(cmp)) if junit_xml is not None else None,
        step_summary=(Path(step_summary), summary) if step_summary else None,
    )
    print(summary)
    raise typer.Exit(C.exit_code(cmp))


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    output: Annotated[
        Path | None, typer.Option(help="The HTML file (default: RUN_DIR/report.html).")
    ] = None,
    compare_with: Annotated[
        Path | None,
        typer.Option("--compare", help="A baseline run: its flipped items side by side."),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option(help="Data root for the images (default: the run's).")
    ] = None,
    max_items: Annotated[int, typer.Option(min=1, help="Items shown per task.")] = 200,
) -> None:
    """One self-contained HTML file: scores, and per task a browser of items."""
    from .evaluator import prepare_saved_task
    from .results.html_report import build_report, write_report
    from .results.runs import load_run

    run = load_run(run_dir)
    base = load_run(compare_with) if compare_with else None
    path = output or run.path / "report.html"
    write_report(
        path,
        build_report(run, base, prepare=prepare_saved_task, data_dir=data_dir, max_items=max_items),
    )
    out.print(f"report: {path}", highlight=False)


@app.command("fewshot-sweep")
@with_runner_flags
def fewshot_sweep(
    model: Annotated[str, typer.Option(help="As for `run`.")],
    tasks: Annotated[str, typer.Option(help="Base tasks.")] = "okvqa,vizwiz,textvqa,flickr30k",
    shots: Annotated[str, typer.Option(help="Shot counts; 0 is the zero-shot task.")] = "0,4,8,16",
    data_dir: Annotated[str | None, typer.Option(help="As for `run`.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N items per task.")] = None,
    output_dir: Annotated[
        Path, typer.Option(help="One folder per shot count under it, and figure4.*")
    ] = Path("results/fewshot"),
    *,
    runner: RunnerOptions,
) -> None:
    """Paper figure 4: run each shot count (one run directory each, resumable), then draw
    the curves and the table (figure4.png, .svg, .md under --output-dir)."""
    from .config import RunConfig
    from .sweep import fewshot_sweep as sweep

    try:
        counts = [int(s) for s in _split(shots)]
    except ValueError:
        raise UserError(f"--shots: expected comma-separated integers, got {shots!r}") from None
    if not counts or min(counts) < 0 or len(set(counts)) < len(counts):
        raise UserError(
            f"--shots {shots!r}: expected distinct shot counts >= 0, comma-separated "
            "(e.g. 0,4,8,16)"
        )
    base = RunConfig(
        model=model,
        tasks=[],
        data_dir=data_dir,
        limit=limit,
        output_dir=output_dir,
        runner=runner,
    )
    with RichProgress() as progress:
        result = sweep(base, _split(tasks), counts, progress)
    for n, run_dir in result.run_dirs.items():
        out.print(f"{n}-shot: {run_dir}", highlight=False)
    out.print(f"figure: {result.png}, {result.svg}; table: {result.table}", highlight=False)


@app.command("tasks")
def list_tasks() -> None:
    """List registered tasks with their split, metric and prompt families."""
    from . import registry

    table = Table(title="tasks")
    for col in ("task", "split", "metrics", "prompts", "groups"):
        table.add_column(col, overflow="fold")  # at 80 columns names wrap, never "RefCO…"
    groups = registry.groups()
    for name in registry.task_names():
        task = registry.get_task(name)
        member_of = ", ".join(g for g, members in groups.items() if name in members)
        table.add_row(
            name,
            str(getattr(task.dataset, "split", "")),
            ", ".join(task.metrics),
            ", ".join(sorted(task.prompts)),
            member_of,
        )
    out.print(table)


@app.command("models")
def list_models() -> None:
    """List model presets."""
    from .model.presets import PRESETS

    table = Table(title="model presets")
    for col in ("preset", "family", "source", "description"):
        table.add_column(col)
    for p in PRESETS.values():
        source = "built locally" if p.tiny else f"local HF cache: {p.hub_id}"
        table.add_row(p.name, p.family, source, p.description)
    out.print(table)


@data_app.command("check")
def data_check(
    tasks: Annotated[str, typer.Option(help="Comma-separated task or group names.")],
    data_dir: Annotated[str | None, typer.Option(help="Data root, or `builtin`.")] = None,
    data_layout: Annotated[
        str, typer.Option(help="auto (first format found), official, eval_mm or hf.")
    ] = "auto",
) -> None:
    """Report, per task, the format found, item counts against the split sizes, the files
    read (size, sha256) and what is missing. Exits 1 when a task is missing or in error."""
    from . import registry
    from .tasks.data.check import check_tasks

    rows = check_tasks(registry.resolve(_split(tasks)), data_dir, data_layout)
    table = Table(title="data check")
    for col in ("task", "status", "format", "items", "expected", "detail"):
        table.add_column(col)
    for r in rows:
        style = {"ok": "green", "partial": "yellow"}.get(r.status, "red")
        table.add_row(
            r.task,
            f"[{style}]{r.status}[/]",
            escape(r.format or "-"),
            str(r.items if r.items is not None else "-"),
            str(r.expected or "-"),
            escape(r.detail),
        )
    out.print(table)
    for r in rows:
        for f in r.files:
            out.print(
                f"{r.task}\t{f['role']}\t{f['path']}\t{f['bytes']} bytes\tsha256 {f['sha256']}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    if any(r.failed for r in rows):
        raise typer.Exit(1)


def main() -> None:
    from rich.text import Text

    from .interrupt import Interrupted, stop_on_signals

    try:
        with stop_on_signals():
            app()
    except UserError as exc:
        # Text, not markup: "data[v2]" in a message must print as is.
        console.print(
            Text("error: ", style="red") + Text(str(exc)), highlight=False, soft_wrap=True
        )
        sys.exit(getattr(exc, "exit_code", 2))
    except Interrupted as exc:
        import shlex

        where = f" in {exc.run_dir}" if exc.run_dir else ""
        command = shlex.join(["qwenvl-eval", *sys.argv[1:]])
        console.print(
            Text(
                f"interrupted ({exc}): the answers written so far are kept{where}; "
                f"to resume, run the same command again: {command}"
            ),
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
