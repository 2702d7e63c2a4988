"""Reading a pickle without running its code: only plain containers and scalars come out.

The refer toolkit ships the RefCOCO annotations as `refs(unc).p` / `refs(umd).p`, pickles
written by Python 2 (protocol 2): a list of dicts holding lists, dicts, ints, floats and
strings. Python 2 `str` arrives as BINSTRING opcodes and `unicode` as BINUNICODE; none of
them needs a global. A pickle from the internet is code, though: every global lookup
(`os.system`, `copy_reg._reconstructor`, ...) goes through `find_class`, which here refuses
everything except the few builtins that only build plain data.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any

from ...errors import DataError


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Python 3 writes `bytes` at protocol 2 as `_codecs.encode(text, "latin1")`: allow exactly
    # that call, nothing else the codecs module could do.
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError("_codecs.encode is allowed only as (str, 'latin1')")
    return text.encode("latin1")


# (module, name) -> the callable handed to the unpickler. set/frozenset only build plain data
# from an iterable; Python 2 names its builtins module `__builtin__`.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_encode,
}


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.module = module
        self.name = name


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def loads_plain(data: bytes, *, source: Path | str = "<bytes>") -> Any:
    """Unpickle `data`, allowing only dict, list, tuple, set, str, bytes, int, float, bool, None.

    Python 2 byte strings are decoded as UTF-8 (the refer files' text), falling back to
    Latin-1 for bytes that are not valid UTF-8, so that no item is lost to an encoding slip.
    """
    last_exc: Exception | None = None
    for encoding in ("utf-8", "latin1"):
        try:
            return _PlainUnpickler(io.BytesIO(data), encoding=encoding).load()
        except RefusedGlobal as exc:
            raise DataError(
                source,
                f"refused to unpickle: the file asks for {exc.module}.{exc.name}, but only "
                "plain containers and scalars are allowed (a pickle can run code; this one "
                "is not a plain refer annotation file)",
            ) from None
        except UnicodeDecodeError as exc:
            last_exc = exc
            continue
        except (
            pickle.UnpicklingError,
            EOFError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
            MemoryError,
            OverflowError,
        ) as exc:
            # The C unpickler raises many types for truncated or malformed streams.
            raise DataError(
                source, f"not a readable pickle ({type(exc).__name__}: {exc})"
            ) from None
    raise DataError(source, f"not a readable pickle ({last_exc})")


def load_plain(path: Path) -> Any:
    """`loads_plain` on a file, with a DataError naming it when it is missing."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"unreadable ({exc})") from None
    return loads_plain(data, source=path)
