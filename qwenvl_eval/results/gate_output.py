"""Where `compare` writes: checked before anything is computed (a directory, or a file of one
of the compared runs, is refused), and every write failure is one line naming the flag."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .atomic import write_text_atomic
from .rundir import is_run_file


def check_targets(targets: dict[str, Path | None], run_dirs: list[Path]) -> None:
    runs = {d.resolve() for d in run_dirs}
    for flag, path in targets.items():
        if path is None:
            continue
        if path.is_dir():
            raise UserError(f"{flag} {path}: is a directory; give a file name")
        resolved = path.resolve()
        if resolved.parent in runs and (resolved.exists() and is_run_file(resolved)):
            raise UserError(
                f"{flag} {path}: is a file of the run {resolved.parent}; refusing to write over "
                "it (give a path outside the run directories)"
            )


def _write(flag: str, path: Path, text: str, *, append: bool = False) -> None:
    try:
        if append:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
        else:
            write_text_atomic(path, text)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from None


def write_outputs(
    *,
    output: tuple[Path, str],
    flips: tuple[Path, str],
    junit: tuple[Path, str] | None,
    step_summary: tuple[Path, str] | None,
) -> None:
    _write("--output", *output)
    _write("--output (flips)", *flips)
    if junit is not None:
        _write("--junit-xml", *junit)
    if step_summary is not None:
        _write("GITHUB_STEP_SUMMARY", *step_summary, append=True)
