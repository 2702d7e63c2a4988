"""The task registry: tasks register by name with a decorator; groups expand to members;
third-party packages add tasks through the entry-point group `qwenvl_eval.tasks`."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

from .errors import UserError

if TYPE_CHECKING:
    from .tasks.base import Task

ENTRY_POINT_GROUP = "qwenvl_eval.tasks"

_TASKS: dict[str, type[Task]] = {}
_ALIASES: dict[str, str] = {}
_GROUPS: dict[str, list[str]] = {}
_loaded = False

T = TypeVar("T", bound="type[Task]")


def register_task(
    name: str, *, group: Iterable[str] = (), aliases: Iterable[str] = ()
) -> Callable[[T], T]:
    """Class decorator: `@register_task("vqav2", group=("paper-table4",))`."""

    def deco(cls: T) -> T:
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is registered twice ({_TASKS[name]} and {cls})")
        cls.name = name
        _TASKS[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        for g in group:
            members = _GROUPS.setdefault(g, [])
            if name not in members:
                members.append(name)
        return cls

    return deco


def _load_all() -> None:
    """Import the built-in tasks, then every plug-in announced by an entry point."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import tasks  # noqa: F401  (registers the built-in tasks)

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must not take the harness down
            raise UserError(f"task plug-in {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if callable(obj) and not isinstance(obj, type):
            obj()  # a registration function


def task_names() -> list[str]:
    _load_all()
    return sorted(_TASKS)


def groups() -> dict[str, list[str]]:
    _load_all()
    return {g: list(m) for g, m in sorted(_GROUPS.items())}


def resolve(names: Iterable[str]) -> list[str]:
    """Expand groups and aliases, keep order, drop duplicates; unknown names raise a UserError
    that lists close matches."""
    _load_all()
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in _GROUPS:
            expanded = resolve(_GROUPS[name])
        elif name in _TASKS:
            expanded = [name]
        elif name in _ALIASES:
            expanded = [_ALIASES[name]]
        else:
            known = list(_TASKS) + list(_ALIASES) + list(_GROUPS)
            close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UserError(
                f"unknown task {name!r}.{hint} Run `qwenvl-eval tasks` for the full list."
            )
        out.extend(n for n in expanded if n not in out)
    return out


def get_task(name: str) -> Task:
    """A fresh instance of the task registered under `name` (or an alias)."""
    (resolved,) = resolve([name])
    return _TASKS[resolved]()
