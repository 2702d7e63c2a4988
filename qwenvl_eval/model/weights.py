"""The content identity of a checkpoint folder (`weights_id`), so that a folder rewritten in
place (a training job overwriting `/models/candidate`) is another run's weights, not the
same path's old answers.

The identity is a sha256 over each top-level file's name, size and content hash. Hashing a
15 GB checkpoint takes a minute, so each file's hash is cached by what changes when a file
is rewritten: its resolved path, size, mtime_ns, ctime_ns and inode (ctime and inode cannot
be set back by `cp -p` or `rsync -a`, mtime can). The cache is one small JSON file under the
user cache dir; a rerun on an unchanged checkpoint costs one stat per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .presets import cache_dir

log = logging.getLogger(__name__)

CACHE_NAME = "weights-hashes.json"
_CACHE_VERSION = 1
_MAX_ENTRIES = 4096  # files remembered; the oldest entries go first
_CHUNK = 8 << 20


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def checkpoint_files(folder: Path) -> list[Path]:
    """The files that make the checkpoint: every regular top-level file (weights, configs,
    tokenizer), hidden ones excluded (download metadata, locks). Loaders read only the top
    level, so `checkpoint-500/` subfolders of a training output are not part of it."""
    return sorted(
        p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()
    )  # is_file follows links: HF snapshots link every file to a blob


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def weights_id(folder: Path, cache: Path | None = None) -> str | None:
    """The checkpoint folder's content identity (hex), or None when `folder` is no folder.
    An unreadable file is a one-line error naming it (the load would fail on it anyway)."""
    from ..errors import UserError

    folder = Path(folder)
    if not folder.is_dir():
        return None
    cache = cache if cache is not None else cache_dir() / CACHE_NAME
    with _locked(cache):
        known = _read_cache(cache)
        changed = False
        lines = []
        try:
            for path in checkpoint_files(folder):
                real = str(path.resolve())
                before = _key(path.stat())
                entry = known.get(real)
                if entry is not None and entry.get("key") == before:
                    digest = entry["sha256"]
                else:
                    digest = file_sha256(path)
                    if _key(path.stat()) != before:  # written while we read it
                        raise UserError(
                            f"{path}: the file changed while it was being hashed; wait for "
                            "whatever writes the checkpoint to finish, then run again"
                        )
                    changed = True
                known.pop(real, None)  # re-inserted last: the most recently used stays
                known[real] = {"key": before, "sha256": digest}
                lines.append(f"{path.name}\t{before[0]}\t{digest}\n")
        except OSError as exc:
            why = f"cannot read the checkpoint to fingerprint it ({exc})"
            raise UserError(f"{folder}: {why}") from None
        if changed:
            _write_cache(cache, known)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"] if data.get("version") == _CACHE_VERSION else {}
        if not isinstance(files, dict):
            return {}
        return {
            k: v
            for k, v in files.items()
            if isinstance(v, dict) and isinstance(v.get("sha256"), str)
        }
    except (OSError, ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return {}  # no cache, or a damaged one: hash again, nothing is wrong


def _write_cache(path: Path, files: dict[str, Any]) -> None:
    from ..results.atomic import write_json_atomic

    recent = dict(list(files.items())[-_MAX_ENTRIES:])
    try:
        write_json_atomic(path, {"version": _CACHE_VERSION, "files": recent})
    except OSError as exc:  # a read-only cache costs time on the next run, not correctness
        log.info("%s: weights hash cache not written (%s)", path, exc)


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One hasher at a time per cache: the ranks of a torchrun hash once, then read it."""
    try:
        import fcntl

        cache.parent.mkdir(parents=True, exist_ok=True)
        handle = open(cache.with_name(cache.name + ".lock"), "a")  # noqa: SIM115
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
