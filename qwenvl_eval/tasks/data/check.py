"""`qwenvl-eval data check`: what each task finds under a data root, without a model."""

from __future__ import annotations

from dataclasses import dataclass

from ... import registry
from ...errors import UserError
from .locate import resolve_data_root


@dataclass
class CheckRow:
    task: str
    status: str  # ok | partial | missing | error
    items: int | None
    expected: int | None
    detail: str


def check_task(name: str, root) -> CheckRow:
    task = registry.get_task(name)
    source = task.dataset
    expected = getattr(source, "split_size", None)
    missing = [p for p in task.expected(root) if not p.exists()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        return CheckRow(name, "missing", None, expected, f"missing: {shown}{more}")
    try:
        docs = task.load(root)
    except UserError as exc:
        return CheckRow(name, "error", None, expected, str(exc))
    n = len(docs)
    if expected is not None and n != expected:
        return CheckRow(
            name, "partial", n, expected, f"{n} of {expected} items of the official split"
        )
    return CheckRow(name, "ok", n, expected, str(root / source.subdir))


def check_tasks(names: list[str], data_dir: str | None) -> list[CheckRow]:
    root = resolve_data_root(data_dir)
    return [check_task(n, root) for n in names]
