"""The `qwenvl-eval` command line. Parses flags into a RunConfig and shows progress; all
the work happens in `app.run`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

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

app = typer.Typer(
    help="Evaluate Qwen-VL family models on the benchmarks of the Qwen-VL paper.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect benchmark data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
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


def _given(**flags: Any) -> dict[str, Any]:
    """Backend flags the user set (None: not given, the backend's own default applies)."""
    return {k: v for k, v in flags.items() if v is not None}


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@app.command()
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
    batch_size: Annotated[int, typer.Option(min=1, help="Upper bound on a batch.")] = 8,
    max_batch_tokens: Annotated[
        int | None,
        typer.Option(
            min=1, help="Token budget per batch (padded prompt tokens incl. image tokens)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for everything random (few-shot draws).")] = 1234,
    output_dir: Annotated[Path, typer.Option(help="Where runs are written.")] = Path("results"),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
    dtype: Annotated[
        str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")
    ] = "auto",
    min_pixels: Annotated[int | None, typer.Option(help="Image processor min_pixels.")] = None,
    max_pixels: Annotated[int | None, typer.Option(help="Image processor max_pixels.")] = None,
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
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Allow the checkpoint's own Python code.")
    ] = False,
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
    backend: Annotated[
        str,
        typer.Option(
            help="Engine: hf (in-process transformers), vllm, openai (a served endpoint)."
        ),
    ] = "hf",
    tensor_parallel_size: Annotated[
        int | None, typer.Option(min=1, help="vllm: GPUs one model is split over.")
    ] = None,
    gpu_memory_utilization: Annotated[
        float | None,
        typer.Option(min=0.01, max=1.0, help="vllm: fraction of each GPU's memory to use."),
    ] = None,
    max_model_len: Annotated[
        int | None, typer.Option(min=1, help="vllm: context length (prompt + answer tokens).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="openai: the server's API root, e.g. http://host:8000/v1.")
    ] = None,
    api_model: Annotated[
        str | None, typer.Option(help="openai: the served model name (default: --model).")
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="openai: environment variable holding the API key [OPENAI_API_KEY]."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="openai: requests in flight [8].")
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option(min=0.001, help="openai: seconds per request attempt [600].")
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(min=0, help="openai: retries on 429/5xx/timeouts (backoff, jitter) [5]."),
    ] = None,
    api_min_tokens: Annotated[
        bool,
        typer.Option(
            "--api-min-tokens",
            help="openai: send min_new_tokens as `min_tokens` (vLLM, SGLang extension).",
        ),
    ] = False,
    api_prompt_logprobs: Annotated[
        bool,
        typer.Option(
            "--api-prompt-logprobs",
            help="openai: the server returns prompt log-probs (vLLM): allows option scoring.",
        ),
    ] = False,
) -> None:
    """Evaluate a model on tasks and write results.json, results.md and predictions."""
    from .app import run as run_app
    from .config import RunConfig, parse_gen_kwargs

    if resume and no_resume:
        raise UserError("--resume and --no-resume contradict each other; give one of them")
    config = RunConfig(
        model=model,
        tasks=_split(tasks),
        data_dir=data_dir,
        data_layout=data_layout,
        limit=limit,
        batch_size=batch_size,
        max_batch_tokens=max_batch_tokens,
        seed=seed,
        output_dir=output_dir,
        device=device,
        dtype=dtype,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        family=family,
        gen_kwargs=parse_gen_kwargs(gen_kwargs),
        compile=compile,
        trust_remote_code=trust_remote_code,
        resume=not no_resume,
        max_failures=max_failures,
        backend=backend,
        backend_options=_given(
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            base_url=base_url.rstrip("/") if base_url else None,
            api_model=api_model,
            api_key_env=api_key_env,
            concurrency=concurrency,
            request_timeout=request_timeout,
            max_retries=max_retries,
            api_min_tokens=api_min_tokens or None,
            api_prompt_logprobs=api_prompt_logprobs or None,
        ),
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
    out.print(to_rich(task_rows_table(outcome.results, title=title)))
    out.print(f"results: {outcome.results_json}", markup=False, highlight=False)


@app.command()
def rescore(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with results.json.")],
    data_dir: Annotated[
        str | None, typer.Option(help="Data root (default: the one the run used).")
    ] = None,
) -> None:
    """Score a run's saved outputs again with the current code: no model, no GPU."""
    from .app import rescore as rescore_app

    _print_results(rescore_app(run_dir, data_dir))


def _write_or_print(text: str, output: Path | None) -> None:
    from .results.atomic import write_text_atomic

    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
    else:
        write_text_atomic(output, text if text.endswith("\n") else text + "\n")
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
            "figure4 (also draws figure4.png/.svg beside --output)."
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
        out.print(to_rich(table))
    else:
        _write_or_print(render(table, format or "markdown"), output)
    if paper == "figure4":
        stem = output.with_suffix("") if output else Path("figure4")
        png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
        plot_figure4(runs, png, svg)
        console.print(f"wrote {png} and {svg}", highlight=False)


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
        float, typer.Option(min=0, help="Allowed drop in points of a gated metric.")
    ] = 1.0,
    task_max_drop: Annotated[
        str | None, typer.Option(help="Per-task allowed drop, e.g. okvqa=2,textvqa=0.5.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the drop.")] = 0.05,
    allow_config_change: Annotated[
        bool,
        typer.Option(
            "--allow-config-change",
            help="Compare even when prompts, generation, data, limits or backend differ.",
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
    """Regression gate. Exit 1: a gated metric dropped by more than --max-drop, significant
    at --alpha; 3: the runs are not comparable; 2: usage error; 0: otherwise."""
    import os

    from .results import compare as C
    from .results.atomic import write_text_atomic
    from .results.runs import load_run

    if not 0 < alpha < 1:
        raise UserError(f"--alpha: must be between 0 and 1, got {alpha}")
    if alpha / 2 * resamples < 10:  # a percentile needs resamples beyond it
        raise UserError(f"--alpha {alpha} needs more than {resamples} --resamples")
    cmp = C.compare_runs(
        load_run(baseline),
        load_run(current),
        max_drop=max_drop,
        task_max_drop=_task_numbers(task_max_drop, "--task-max-drop"),
        alpha=alpha,
        resamples=resamples,
    )
    flips = output.with_suffix(".flips.jsonl")
    C.write_flips(cmp, flips)
    summary = C.summary_markdown(cmp, flips.name)
    write_text_atomic(output, summary)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(summary)
    if junit_xml is not None:
        write_text_atomic(junit_xml, C.junit_xml(cmp))
    print(summary)
    raise typer.Exit(C.exit_code(cmp, allow_config_change=allow_config_change))


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
    from .results.atomic import write_text_atomic
    from .results.html_report import build_report
    from .results.runs import load_run

    run = load_run(run_dir)
    base = load_run(compare_with) if compare_with else None
    path = output or run.path / "report.html"
    write_text_atomic(path, build_report(run, base, data_dir=data_dir, max_items=max_items))
    out.print(f"report: {path}", highlight=False)


@app.command("fewshot-sweep")
def fewshot_sweep(
    model: Annotated[str, typer.Option(help="As for `run`.")],
    tasks: Annotated[str, typer.Option(help="Base tasks.")] = "okvqa,vizwiz,textvqa,flickr30k",
    shots: Annotated[str, typer.Option(help="Shot counts; 0 is the zero-shot task.")] = "0,4,8,16",
    data_dir: Annotated[str | None, typer.Option(help="As for `run`.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N items per task.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    seed: Annotated[int, typer.Option()] = 1234,
    output_dir: Annotated[
        Path, typer.Option(help="One folder per shot count under it, and figure4.*")
    ] = Path("results/fewshot"),
    device: Annotated[str, typer.Option()] = "auto",
    dtype: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Paper figure 4: run each shot count (one run directory each, resumable), then draw
    the curves and the table (figure4.png, .svg, .md under --output-dir)."""
    from .config import RunConfig
    from .sweep import fewshot_sweep as sweep

    try:
        counts = [int(s) for s in _split(shots)]
    except ValueError:
        raise UserError(f"--shots: expected comma-separated integers, got {shots!r}") from None
    base = RunConfig(
        model=model,
        tasks=[],
        data_dir=data_dir,
        limit=limit,
        batch_size=batch_size,
        seed=seed,
        output_dir=output_dir,
        device=device,
        dtype=dtype,
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
        table.add_column(col)
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
