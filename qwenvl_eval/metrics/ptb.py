"""Stanford PTB tokenization of captions in a single Java call.

pycocoevalcap's ``PTBTokenizer.tokenize`` starts one JVM per call and ``COCOEvalCap``
calls it twice (references, then predictions). The tokenizer runs with
``-preserveLines``, so each input line becomes exactly one output line and lines do
not influence each other: tokenizing references and predictions as one stream gives
the same tokens as two calls. This module does that, with the same jar, flags,
lower-casing and punctuation filter as pycocoevalcap, so the scores computed from
its output equal ``COCOEvalCap``'s.

One deliberate difference: pycocoevalcap only replaces ``\\n`` inside a caption by a
space, but the Java lexer also ends a line at ``\\r``, ``\\v``, ``\\f``, U+2028 and
U+2029. In pycocoevalcap such a caption shifts every later caption onto the wrong
image (or crashes); here those characters are replaced by spaces too, so one odd
model output cannot corrupt the scores of the others.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache

# Characters that end a line for the PTB lexer (JFlex NEWLINE) besides "\n".
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\x0b\x0c\u2028\u2029"})


@cache
def _jar_and_punctuation() -> tuple[str, frozenset[str]]:
    """Location of pycocoevalcap's CoreNLP jar and its punctuation list."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    jar = os.path.join(
        os.path.dirname(os.path.abspath(ptbtokenizer.__file__)),
        ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR,
    )
    return jar, frozenset(ptbtokenizer.PUNCTUATIONS)


def java_executable() -> str:
    """Path of ``java``; a clear error instead of a FileNotFoundError deep in subprocess."""
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "captioning metrics need Java (pycocoevalcap's PTB tokenizer and METEOR are "
            "Java programs); install a JRE and put `java` on PATH"
        )
    return java


def ptb_tokenize(sentences: Sequence[str | None]) -> list[str]:
    """PTB-tokenize ``sentences`` (one JVM for all of them), pycocoevalcap style.

    Returns one string per input sentence: lower-cased tokens joined by single spaces,
    with pycocoevalcap's punctuation tokens removed. Non-string entries are tokenized
    as "". An empty input gives ``[]`` without starting Java.
    """
    if not sentences or isinstance(sentences, str):
        return []
    sentences = [s if isinstance(s, str) else "" for s in sentences]
    jar, punctuation = _jar_and_punctuation()
    text = "\n".join(s.translate(_LINE_BREAKS) for s in sentences)
    proc = subprocess.run(
        [
            java_executable(),
            "-cp",
            jar,
            "edu.stanford.nlp.process.PTBTokenizer",
            "-preserveLines",
            "-lowerCase",
        ],
        input=text.encode("utf-8", errors="replace"),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"PTB tokenizer failed (exit {proc.returncode}): "
            f"{proc.stderr.decode('utf-8', errors='replace')[-2000:]}"
        )
    lines = proc.stdout.decode("utf-8", errors="replace").split("\n")
    if len(lines) > len(sentences) and all(not line for line in lines[len(sentences) :]):
        lines = lines[: len(sentences)]
    if len(lines) != len(sentences):
        raise RuntimeError(
            f"PTB tokenizer returned {len(lines)} lines for {len(sentences)} sentences"
        )
    return [" ".join(w for w in line.rstrip().split(" ") if w not in punctuation) for line in lines]
