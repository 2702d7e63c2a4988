"""The flags of the runner settings and of every backend's options, built from their one
declaration each: RunnerOptions' fields that carry a help text (model/base.py), and the
options in the backend table (model/backends.py). A backend added to the table, or by
`backends.register`, has its flags on `run` without an edit here or in cli.py."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

_KW = inspect.Parameter.KEYWORD_ONLY


def _plain(hint: Any) -> Any:
    """`int | None` -> int."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _option(name: str, kind: Any, default: Any, help: str, **extra: Any) -> inspect.Parameter:
    """A keyword parameter typer turns into `--name-with-dashes` (a bool: an on-only flag, as
    --compile); `extra`: typer.Option's min, max, rich_help_panel (None: not set)."""
    info = typer.Option(
        "--" + name.replace("_", "-"),
        help=help,
        **{k: v for k, v in extra.items() if v is not None},
    )
    if kind is bool:
        return inspect.Parameter(name, _KW, default=bool(default), annotation=Annotated[bool, info])
    annotation = kind if default is not None else kind | None
    return inspect.Parameter(name, _KW, default=default, annotation=Annotated[annotation, info])


def runner_parameters() -> list[inspect.Parameter]:
    """RunnerOptions' flags (with their defaults), then the backends' (default None: not
    given, so that a flag of another backend can be refused)."""
    from .model.base import RunnerOptions

    hints = typing.get_type_hints(RunnerOptions)
    out = []
    for f in dataclasses.fields(RunnerOptions):
        if "help" in f.metadata:
            meta = dict(f.metadata)
            out.append(_option(f.name, _plain(hints[f.name]), f.default, meta.pop("help"), **meta))
    return out + backend_parameters()


def backend_parameters() -> list[inspect.Parameter]:
    from .model.backends import BACKENDS

    owners: dict[str, list[str]] = {}
    first = {}
    for backend in BACKENDS.values():
        for o in backend.options:
            owners.setdefault(o.name, []).append(backend.name)
            first.setdefault(o.name, o)
    out = []
    for name, o in first.items():
        shown = "" if o.default in (None, False) else f" (default {o.default})"
        help = f"{', '.join(owners[name])}: {o.help}{shown}"
        panel = f"Options of --backend {', '.join(owners[name])}"
        default = False if o.type is bool else None  # None: not given
        out.append(
            _option(name, o.type, default, help, min=o.min, max=o.max, rich_help_panel=panel)
        )
    return out


class _TakesRunnerFlags:
    """A command function as typer sees it: its own parameters plus one flag per runner
    setting and backend option. The signature is built each time the CLI is (so a backend
    registered later has its flags); the function gets the RunnerOptions they say as
    `runner`."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__module__ = func.__module__
        self.__doc__ = func.__doc__
        self.__annotations__ = {}  # typer reads them: they are all in the signature

    @property
    def __signature__(self) -> inspect.Signature:  # type: ignore[override]
        own = inspect.signature(self.func)  # annotations as written (strings), `runner` too
        scope = self.func.__globals__
        params = [
            p.replace(
                annotation=eval(p.annotation, scope)
                if isinstance(p.annotation, str)
                else p.annotation
            )  # noqa: S307  (our own source)
            for p in own.parameters.values()
            if p.name != "runner"
        ]
        extra = runner_parameters()
        clash = {p.name for p in params} & {p.name for p in extra}
        if clash:
            raise RuntimeError(f"flags declared twice: {', '.join(sorted(clash))}")
        return own.replace(parameters=params + extra)

    def __call__(self, **kwargs: Any) -> Any:
        from .model.backends import BACKENDS
        from .model.base import RunnerOptions

        fields = {f.name for f in dataclasses.fields(RunnerOptions)}
        options = {o.name for b in BACKENDS.values() for o in b.options}
        settings = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in options}
        given = {k: v for k, v in given.items() if v is not None and v is not False}
        runner = RunnerOptions(**settings, backend_options=given)
        return self.func(**kwargs, runner=runner)


def with_runner_flags(func: Callable[..., Any]) -> Any:
    return _TakesRunnerFlags(func)
