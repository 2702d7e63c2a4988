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
        bool, typer.Option(help="Reuse answers already in the run directory.")
    ] = True,
) -> None:
    """Evaluate a model on tasks and write results.json, results.md and predictions."""
    from .app import run as run_app
    from .config import RunConfig, parse_gen_kwargs

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
        resume=resume,
    )
    with RichProgress() as progress:
        outcome = run_app(config, progress)
    _print_results(outcome)


def _print_results(outcome) -> None:
    from .results.tables import RUN_COLUMNS, run_rows

    model = outcome.results["model"]
    table = Table(title=f"{model.get('spec')} ({model.get('backend')}, {model.get('dtype')})")
    for col in RUN_COLUMNS:
        table.add_column(col, justify="right" if col in ("value", "items", "errors") else "left")
    for row in run_rows(outcome.results):
        table.add_row(*row)
    out.print(table)
    out.print(f"results: {outcome.results_json}")


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


@app.command()
def leaderboard(
    results: Annotated[list[Path], typer.Argument(help="results.json files or run directories.")],
) -> None:
    """A markdown table: one row per run, each task's headline metric."""
    import json

    from .results.tables import leaderboard as make_table

    runs = []
    for p in results:
        path = p / "results.json" if p.is_dir() else p
        try:
            runs.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: unreadable results file ({exc})") from None
    print(make_table(runs))


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
    try:
        app()
    except UserError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
