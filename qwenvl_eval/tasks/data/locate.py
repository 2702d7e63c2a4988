"""Where task data lives, and keeping every path a data file names inside its data root."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ...errors import DataError, UserError
from ...types import ImageRef

BUILTIN = "builtin"
ENV_VAR = "QWENVL_EVAL_DATA"


def builtin_root() -> Path:
    """The bundled mini datasets (package data, made by scripts/make_builtin_data.py)."""
    return Path(__file__).resolve().parent.parent / "builtin"


def default_root() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "qwenvl_eval" / "data"


def resolve_data_root(data_dir: str | None) -> Path:
    """`builtin` selects the bundled mini sets; a path is used as given; nothing means
    $QWENVL_EVAL_DATA, then ~/.cache/qwenvl_eval/data. Never falls back to the mini sets."""
    if data_dir == BUILTIN:
        return builtin_root()
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise UserError(f"{root}: data directory not found (--data-dir)")
        return root.resolve()
    root = default_root()
    if not root.is_dir():
        raise UserError(
            f"{root}: no data directory (pass --data-dir, set ${ENV_VAR}, or use "
            f"--data-dir builtin for the bundled mini sets)"
        )
    return root.resolve()


def safe_join(root: Path, rel: str, *, source: Path | str, item: str, field: str) -> Path:
    """`root / rel`, refusing anything that escapes `root` (absolute paths, `..`, links)."""
    if not isinstance(rel, str) or not rel:
        raise DataError(source, "expected a relative image path", item=item, field=field)
    candidate = (root / rel).resolve()
    base = root.resolve()
    if candidate != base and base not in candidate.parents:
        raise DataError(source, f"path {rel!r} leaves the data root {base}", item=item, field=field)
    return candidate


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a DataError that names the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"unreadable JSON ({exc})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(path, f"line {n}: invalid JSON ({exc})") from None
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable ({exc})") from None
    return rows


def require_image(path: Path, *, source: Path | str, item: str, field: str) -> Path:
    """Images are checked to exist at load time (a stat, no decoding)."""
    if not path.is_file():
        raise DataError(source, f"image not found: {path}", item=item, field=field)
    return path


# Some builtin mini sets store PNGs under the official file names' stems; the official
# extension is always tried first.
IMAGE_EXTS = (".jpg", ".png", ".jpeg")


def find_image(
    task_dir: Path,
    rel: str,
    *,
    source: Path | str,
    item: str,
    field: str,
    shared: Path | None = None,
) -> ImageRef:
    """The image `rel` (relative to the task folder), as a lazy `ImageRef` keyed by `rel`.

    Tries the named extension, then the other usual ones with the same stem. `shared` is a
    second folder inside the data root to look in (e.g. `<root>/coco` for COCO images used
    by several tasks, since links leaving a task folder are refused)."""
    bases = [task_dir] + ([shared] if shared is not None else [])
    stem, dot, ext = rel.rpartition(".")
    names = [rel] + ([f"{stem}{e}" for e in IMAGE_EXTS if e != f".{ext}"] if dot else [])
    first: Path | None = None
    for base in bases:
        for name in names:
            path = safe_join(base, name, source=source, item=item, field=field)
            first = first or path
            if path.is_file():
                return ImageRef(key=name, path=path)
    assert first is not None
    require_image(first, source=source, item=item, field=field)  # raises: not found
    raise AssertionError("unreachable")


class ImageCache:
    """Many questions share an image: stat each file once."""

    def __init__(self, task_dir: Path, shared: Path | None = None) -> None:
        self.task_dir = task_dir
        self.shared = shared
        self._seen: dict[str, ImageRef] = {}

    def get(self, rel: str, *, source: Path | str, item: str, field: str) -> ImageRef:
        ref = self._seen.get(rel)
        if ref is None:
            ref = find_image(
                self.task_dir, rel, source=source, item=item, field=field, shared=self.shared
            )
            self._seen[rel] = ref
        return ref
