"""The formats a split may be stored in, declared once per reader and used by both loading
and `qwenvl-eval data check`, so the two cannot disagree.

A reader lists its `Format`s in order of preference (official files first). Loading takes
the first one whose files are all present, within the `--data-layout` the user asked for
(`auto`: any); `data check` reports the same choice, the files it reads with their sizes and
checksums, and, when none is present, the exact paths each alternative would need.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DataError, UserError
from ...types import Document

# official: the benchmark's own release files (and the peer harnesses' copies of them);
# eval_mm: the Qwen-VL repository's converted files (its EVALUATION.md `data/` tree);
# hf: Hugging Face dataset copies (parquet shards, save_to_disk folders, the local hub cache).
LAYOUTS = ("auto", "official", "eval_mm", "hf")


@dataclass(frozen=True)
class Format:
    """One way a split can be stored: `needs` are the paths that must exist for it to be
    chosen (and the files it reads); `read` builds the documents."""

    name: str
    layout: str
    needs: tuple[Path, ...]
    read: Callable[[], list[Document]] = field(compare=False)
    why: str = ""  # why `needs` holds what it holds, shown when something is missing

    def present(self) -> bool:
        return bool(self.needs) and all(p.exists() for p in self.needs)

    def missing(self) -> list[Path]:
        return [p for p in self.needs if not p.exists()]

    def files(self) -> list[Path]:
        """The data files read (folders expanded to the files directly in them)."""
        out: list[Path] = []
        for p in self.needs:
            if (p / "state.json").is_file():  # a save_to_disk folder: its arrow files
                out.extend(sorted(c for c in p.iterdir() if c.is_file()))
            elif not p.is_dir():  # image folders are needed, not read as data
                out.append(p)
        return out


class MissingData(DataError):
    """No format of a split is present: names the paths each alternative needs."""

    def __init__(self, formats: list[Format]) -> None:
        first = formats[0]
        missing = first.missing() or list(first.needs)
        others = [
            f"{f.name}: {', '.join(str(p) for p in (f.missing() or f.needs))}"
            + (f" ({f.why})" if f.why else "")
            for f in formats[1:]
        ]
        alt = f" (or, as {'; as '.join(others)})" if others else ""
        super().__init__(
            missing[0],
            f"file not found; as {first.name} it needs {', '.join(str(p) for p in missing)}{alt}",
        )
        self.formats = formats


class SplitSource:
    """Base of the readers: `load` and `expected` from the one `formats` declaration."""

    def formats(self, root: Path) -> list[Format]:
        raise NotImplementedError

    def load(self, root: Path, layout: str = "auto") -> list[Document]:
        return load_source(self, root, layout)[0]

    def expected(self, root: Path, layout: str = "auto") -> list[Path]:
        """The paths the chosen format reads, or those the preferred one would need."""
        try:
            return list(select(self, root, layout).needs)
        except MissingData as exc:
            return list(exc.formats[0].needs)


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise UserError(f"--data-layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")


def allowed(formats: list[Format], layout: str, where: str) -> list[Format]:
    # `layout` was checked with the other flags (RunConfig.validate, `data check`).
    kept = [f for f in formats if layout == "auto" or f.layout == layout]
    if not kept:
        layouts = sorted({f.layout for f in formats})
        raise UserError(
            f"{where}: no {layout} layout is known for this data (it reads: {', '.join(layouts)})"
        )
    return kept


def select(source: Any, root: Path, layout: str = "auto") -> Format:
    """The format loading reads: the first present one the layout allows."""
    formats = allowed(source.formats(root), layout, str(root / source.subdir))
    for f in formats:
        if f.present():
            return f
    raise MissingData(formats)


def describe(fmt: Format, root: Path, *, checksums: bool = False) -> dict[str, Any]:
    """What was read, for results.json and `data check`: format, layout, files and sizes."""
    files = []
    for p in fmt.files():
        entry: dict[str, Any] = {"path": _rel(p, root), "bytes": _size(p)}
        if checksums:
            entry["sha256"] = sha256_of(p)
        files.append(entry)
    return {"format": fmt.name, "layout": fmt.layout, "files": files}


def load_source(source: Any, root: Path, layout: str = "auto") -> tuple[list[Document], dict]:
    """Documents of a source and the record of what was read. Sources declaring `formats`
    go through `select`; a plug-in source with only `load(root)` is read as it says. An
    empty split is an error: a run of zero items is no result."""
    if hasattr(source, "formats"):
        fmt = select(source, root, layout)
        with gc_paused():
            docs = fmt.read()
        info = describe(fmt, root)
        where: Path = fmt.needs[0]
    else:
        docs = source.load(root)
        info = {"format": type(source).__name__, "layout": "custom", "files": []}
        where = root / getattr(source, "subdir", "")
    if not docs:
        raise DataError(where, f"no items in this split ({info['format']})")
    return docs, info


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a split is read: parsing and building millions of
    acyclic objects would otherwise trigger full collections that walk all of them again
    (half of the load time of a 200k-question split)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
