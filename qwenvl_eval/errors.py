"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input (flags, files, data). Never shown as a traceback."""


class DataError(UserError):
    """A data file is missing or malformed. Names the file, the item and the field."""

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        item: str | None = None,
        field: str | None = None,
    ) -> None:
        where = str(path)
        if item is not None:
            where += f", item {item}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.item = item
        self.field = field


class StorageError(UserError):
    """Writing the run failed (disk full, read-only, file too large). Exit code 1: the input
    was fine; what was already written is kept."""

    exit_code = 1


class RunFailed(UserError):
    """The run finished (or stopped early) with too many failed items. Exit code 1."""

    exit_code = 1


def storage_error(path: Path | str, exc: OSError, doing: str = "writing") -> StorageError:
    """One line for an OSError while writing, naming the file and the cause in words."""
    import errno

    causes = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the file system is read-only",
        errno.EFBIG: "the file is larger than allowed (file size limit)",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "a file is in the way of a folder",
        errno.EISDIR: "it is a folder",
    }
    cause = causes.get(exc.errno or -1, exc.strerror or str(exc))
    return StorageError(
        f"{path}: {doing} failed: {cause}; answers written before this point are kept"
    )
