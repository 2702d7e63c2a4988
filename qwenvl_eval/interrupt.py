"""SIGINT / SIGTERM: stop the run between two Python steps, keep every answer already written,
and tell the user how to resume. Exit code 128 + signal number (130, 143), as shells do."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised in the main thread by the signal handler. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` of a task or backend swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_dir: Path | None = None  # set by the run once it knows its directory

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum: int, frame: object) -> None:
    # Cleanup (closing the predictions file, releasing the lock) must not be cut short by a
    # second Ctrl-C: further signals are ignored from here on.
    for s in _SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """The batch in flight is dropped (its answers were not written); the process then
    unwinds through the store's clean-up, which flushes every line already written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
