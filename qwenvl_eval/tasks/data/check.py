"""`qwenvl-eval data check`: what each task finds under a data root, without a model.

Driven by the same format declarations as loading (`data.formats`): the format it reports
is the one `run` reads, and the files it hashes are the files `run` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import registry
from ...errors import UserError
from .formats import MissingData, check_layout, describe, select
from .locate import resolve_data_root


@dataclass
class CheckRow:
    task: str
    status: str  # ok | partial | missing | error
    items: int | None
    expected: int | None
    detail: str
    format: str | None = None  # e.g. "official", "eval_mm jsonl + annotations", "hf parquet"
    # Files read, with their size and sha256 (per source role: eval, train).
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("missing", "error")


def _source_formats(task, root: Path, layout: str) -> tuple[list[str], list[dict], str | None]:
    """(format names, files with checksums, the missing-data message or None)."""
    names: list[str] = []
    files: list[dict[str, Any]] = []
    for role, source in task.sources().items():
        if not hasattr(source, "formats"):  # a plug-in source with only load()
            missing = [p for p in getattr(source, "expected", lambda r: [])(root) if not p.exists()]
            if missing:
                return names, files, f"missing: {', '.join(str(p) for p in missing)}"
            names.append(type(source).__name__)
            continue
        try:
            fmt = select(source, root, layout)
        except MissingData as exc:
            return names, files, str(exc)
        info = describe(fmt, root, checksums=True)
        names.append(fmt.name if role == "eval" else f"{role}: {fmt.name}")
        files.extend({"role": role, **f} for f in info["files"])
    return names, files, None


def check_task(name: str, root: Path, layout: str = "auto") -> CheckRow:
    task = registry.get_task(name)
    expected = getattr(task.dataset, "split_size", None)
    try:
        names, files, missing = _source_formats(task, root, layout)
    except UserError as exc:
        return CheckRow(name, "error", None, expected, str(exc))
    fmt = "; ".join(names) or None
    if missing is not None:
        return CheckRow(name, "missing", None, expected, missing, fmt, files)
    try:
        docs = task.load(root, layout).docs
    except UserError as exc:
        return CheckRow(name, "error", None, expected, str(exc), fmt, files)
    n = len(docs)
    if expected is not None and n != expected:
        detail = f"{n} of {expected} items of the official split"
        return CheckRow(name, "partial", n, expected, detail, fmt, files)
    return CheckRow(name, "ok", n, expected, str(root / task.dataset.subdir), fmt, files)


def check_tasks(names: list[str], data_dir: str | None, layout: str = "auto") -> list[CheckRow]:
    check_layout(layout)
    root = resolve_data_root(data_dir)
    return [check_task(n, root, layout) for n in names]
