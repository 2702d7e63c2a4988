"""METEOR 1.5 through pycocoevalcap's jar, started early and fed in one pipelined batch.

pycocoevalcap's ``Meteor`` writes one ``SCORE`` line, waits for its statistics, writes
the next, ... and only then sends one ``EVAL`` line. Each round trip needs the Python
thread to wake up, so the scorer cannot usefully run beside other Python work (the
GIL delays every wake-up). Here the same lines go to the same jar with the same
flags, all at once from a writer thread, and the answers are read back in order:
the jar sees byte-identical input and therefore returns identical numbers, while the
process can be started before tokenization (loading its paraphrase table takes
seconds) and run while BLEU, ROUGE-L and CIDEr are computed in Python.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence

from qwenvl_eval.metrics.ptb import java_executable


def _meteor_dir_and_jar() -> tuple[str, str]:
    from pycocoevalcap.meteor import meteor

    return os.path.dirname(os.path.abspath(meteor.__file__)), meteor.METEOR_JAR


def score_line(hypothesis: str, references: Sequence[str]) -> str:
    """The ``SCORE`` request pycocoevalcap's ``Meteor._stat`` sends for one item."""
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    return " ||| ".join(("SCORE", " ||| ".join(references), hypothesis))


class MeteorProcess:
    """One METEOR JVM (``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm``).

    Start it as early as possible; :meth:`score` may be called once. Use as a context
    manager so the JVM is always reaped.
    """

    def __init__(self) -> None:
        cwd, jar = _meteor_dir_and_jar()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            [java_executable(), "-jar", "-Xmx2G", jar, "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def __enter__(self) -> MeteorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the JVM (idempotent)."""
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stdin):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        self._stderr.close()

    def _failure(self, what: str) -> RuntimeError:
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode("utf-8", errors="replace")
        return RuntimeError(f"METEOR process {what}: {tail}")

    def _readline(self) -> str:
        line = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise self._failure("ended early")
        return line.decode("utf-8", errors="replace").strip()

    def _write_all(self, lines: list[str], errors: list[BaseException]) -> None:
        try:
            payload = "".join(f"{line}\n" for line in lines).encode("utf-8", errors="replace")
            self._proc.stdin.write(payload)  # type: ignore[union-attr]
            self._proc.stdin.flush()  # type: ignore[union-attr]
        except BaseException as exc:  # reported by the reader
            errors.append(exc)

    def score(
        self, references: Sequence[Sequence[str]], hypotheses: Sequence[str]
    ) -> tuple[float, list[float]]:
        """Corpus METEOR and per-item METEOR, as pycocoevalcap's ``compute_score``.

        ``references[i]`` and ``hypotheses[i]`` are PTB-tokenized strings; there must be
        at least one item.
        """
        requests = [score_line(h, r) for h, r in zip(hypotheses, references, strict=True)]
        errors: list[BaseException] = []
        writer = threading.Thread(target=self._write_all, args=(requests, errors), daemon=True)
        writer.start()
        try:
            stats = [self._readline() for _ in requests]
        finally:
            writer.join()
        if errors:
            raise self._failure(f"rejected input ({errors[0]!r})")
        eval_line = "EVAL" + "".join(f" ||| {s}" for s in stats)
        self._write_all([eval_line], errors)
        if errors:
            raise self._failure(f"rejected input ({errors[0]!r})")
        try:
            per_item = [float(self._readline()) for _ in requests]
            corpus = float(self._readline())
        except ValueError as exc:
            raise self._failure(f"returned a non-number ({exc})") from None
        return corpus, per_item
