"""Where task data lives, and keeping every path a data file names inside its data root."""

from __future__ import annotations

import json
import os
import posixpath
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
        if "\x00" in data_dir:
            raise UserError(f"{data_dir!r}: NUL byte in the data directory (--data-dir)")
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


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def check_rel(rel: object, *, source: Path | str, item: str, field: str) -> str:
    """A path named inside a data file: a non-empty string without NUL bytes."""
    if not isinstance(rel, str) or not rel:
        raise DataError(source, "expected a relative image path", item=item, field=field)
    if "\x00" in rel:
        raise DataError(source, "NUL byte in the path", item=item, field=field)
    return rel


def safe_join(root: Path, rel: str, *, source: Path | str, item: str, field: str) -> Path:
    """`root / rel` with every link followed, refusing anything that escapes `root`."""
    check_rel(rel, source=source, item=item, field=field)
    base = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(base, rel))
    if not _inside(candidate, base):
        raise DataError(source, f"path {rel!r} leaves the data root {base}", item=item, field=field)
    return Path(candidate)


class RootedFiles:
    """Finds the files a data file names, keeping every one inside the data root.

    Paths are checked after following links, against the DATA ROOT (not the task folder): an
    image folder linked to another folder inside the root (`vqav2/val2014 -> ../coco/val2014`)
    is fine, a link or `..` leading out of the root is refused. Each directory is resolved and
    listed once, so a split with 200k questions costs one `scandir` per image folder instead of
    a `Path.resolve()` (a syscall per path component) per image."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._root = str(self.root)
        self._dirs: dict[str, str] = {}
        self._listings: dict[str, dict[str, bool]] = {}

    def _real_dir(self, joined: str) -> str:
        real = self._dirs.get(joined)
        if real is None:
            real = self._dirs[joined] = os.path.realpath(joined)
        return real

    def _listing(self, real_dir: str) -> dict[str, bool]:
        """name -> is a symlink, for the regular files and links of a directory."""
        listing = self._listings.get(real_dir)
        if listing is None:
            listing = {}
            try:
                with os.scandir(real_dir) as entries:
                    for e in entries:
                        if e.is_symlink():
                            listing[e.name] = True
                        elif e.is_file(follow_symlinks=False):
                            listing[e.name] = False
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                pass
            self._listings[real_dir] = listing
        return listing

    def locate(
        self, base: Path, rel: str, *, source: Path | str, item: str, field: str
    ) -> tuple[Path, bool]:
        """(path, exists) of `base/rel`; refuses a path that leaves the data root."""
        check_rel(rel, source=source, item=item, field=field)
        head, name = posixpath.split(rel)
        joined = os.path.join(base, head) if head else os.fspath(base)
        real_dir = self._real_dir(joined)
        if name in ("", ".", "..") or not _inside(real_dir, self._root):
            self._refuse(base, rel, source=source, item=item, field=field)
        path = os.path.join(real_dir, name)
        is_link = self._listing(real_dir).get(name)
        if is_link is None:
            return Path(path), False
        if is_link:
            path = os.path.realpath(path)
            if not _inside(path, self._root):
                self._refuse(base, rel, source=source, item=item, field=field)
            return Path(path), os.path.isfile(path)
        return Path(path), True

    def _refuse(self, base: Path, rel: str, *, source: Path | str, item: str, field: str):
        target = os.path.realpath(os.path.join(base, rel))
        raise DataError(
            source,
            f"path {rel!r} leaves the data root {self._root} (it resolves to {target})",
            item=item,
            field=field,
        )


def _json_problem(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "unreadable JSON (nested too deeply)"
    if isinstance(exc, ValueError) and "digits" in str(exc):
        return "unreadable JSON (a number with more than 4300 digits)"
    return f"unreadable JSON ({exc})"


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a DataError that names the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable ({exc})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, 5,000-digit ints, nesting
        raise DataError(path, _json_problem(exc)) from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except (ValueError, RecursionError) as exc:
                        raise DataError(path, _json_problem(exc), item=f"line {n}") from None
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


def _names(rel: str) -> list[str]:
    stem, dot, ext = rel.rpartition(".")
    return [rel] + ([f"{stem}{e}" for e in IMAGE_EXTS if e != f".{ext}"] if dot else [])


class ImageCache:
    """The images of one data file: each looked up once, every one inside the data root.

    `rel` is tried against each of `bases` in order (e.g. the task folder, then `<root>/coco`
    for COCO images shared by several tasks), with the named extension first, then the other
    usual ones. `root` is the data root (default: the task folder's parent)."""

    def __init__(
        self,
        task_dir: Path,
        shared: Path | None = None,
        *,
        root: Path | None = None,
        files: RootedFiles | None = None,
        bases: tuple[Path, ...] | None = None,
    ) -> None:
        self.files = files or RootedFiles(root if root is not None else task_dir.parent)
        self.bases = bases or ((task_dir,) + ((shared,) if shared is not None else ()))
        self._seen: dict[str, ImageRef] = {}

    def get(self, rel: str, *, source: Path | str, item: str, field: str) -> ImageRef:
        ref = self._seen.get(rel) if isinstance(rel, str) else None
        if ref is None:
            ref = self._find(rel, source=source, item=item, field=field)
            self._seen[rel] = ref
        return ref

    def _find(self, rel: str, *, source: Path | str, item: str, field: str) -> ImageRef:
        check_rel(rel, source=source, item=item, field=field)
        first: Path | None = None
        names = _names(rel)
        for base in self.bases:
            for name in names:
                path, exists = self.files.locate(base, name, source=source, item=item, field=field)
                first = first or path
                if exists:
                    return ImageRef(key=name, path=path)
        raise DataError(source, f"image not found: {first}", item=item, field=field)


def strip_data_prefix(rel: str) -> str:
    """Qwen-VL's eval_mm files name images from the folder that holds `data/`
    (`data/vizwiz/test/x.jpg`); with `data/` as the data root that is `vizwiz/test/x.jpg`."""
    return rel[5:] if rel.startswith("data/") else rel
