"""VLMEvalKit's benchmark TSV files, read into plain records.

Many users hold MMBench, MMStar, MMMU, MathVista, OCRBench, MME, HallusionBench,
RealWorldQA, InfographicVQA and others as the TSV files VLMEvalKit downloads (its data
root, ``LMUData``). The format, as VLMEvalKit writes and reads it:

- tab-separated, pandas quoting (a cell with a tab, newline or quote is quoted, quotes
  doubled); one row per question; columns ``index``, ``question``, ``answer`` and, by
  benchmark, ``hint``, options ``A``..``Z`` (an empty cell is no option), ``category``,
  ``l2-category``, ``split``, ``image_path``, ...;
- ``image``: the picture as base64, a Python-literal list of base64 strings for several
  pictures, or -- to save space, as MMBench's rotated copies do -- the ``index`` of the
  row whose image it shares (a cell of at most 64 characters);
- VLMEvalKit checks a downloaded file against the MD5 in its dataset classes
  (:data:`VLMEVAL_MD5`, :func:`check_md5`).

Cells are read as pandas reads them for VLMEvalKit, with one exception: numbers are
kept as written ("2.50" stays "2.50"; VLMEvalKit's reader would turn it into 2.5). Like
pandas, the cells "", "NA", "N/A", "NaN", "nan", "None", "NULL", "null", "n/a", "<NA>",
"#N/A" and a few others mean *missing*, so an option reading "None" is no option, as in
VLMEvalKit's scoring. A list cell is parsed with ``ast.literal_eval`` (VLMEvalKit uses
``eval``; nothing in a data file is executed here). Images stay base64 text in the records
(:func:`image_bytes` decodes them), so reading a file takes about its size in memory, as
VLMEvalKit's reader does.
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DataError

VLMEVAL_MD5: dict[str, str] = {
    "MMBench_DEV_EN": "b6caf1133a01c6bb705cf753bb527ed8",
    "MMBench_DEV_CN": "08b8fc3324a5ed74155350f57be69fbd",
    "MMBench_DEV_EN_V11": "30c05be8f2f347a50be25aa067248184",
    "MMBench_DEV_CN_V11": "593f9b5f6bea453d870a798b34ae4f37",
    "MMStar": "e1ecd2140806c1b1bbf54b43372efb9e",
    "RealWorldQA": "4de008f55dc4fd008ca9e15321dc44b7",
    "MMMU_DEV_VAL": "585e8ad75e73f75dcad265dfd0417d64",
    "MathVista_MINI": "f199b98e178e5a2a20e7048f5dcb0464",
    "OCRBench": "e953d98a987cc6e26ef717b61260b778",
    "MME": "b36b43c3f09801f5d368627fb92187c3",
    "HallusionBench": "0c23ac0dc9ef46832d7a24504f2a0c7c",
    "InfoVQA_VAL": "2342e9c225222f0ef4dec545ebb126fe",
    "InfoVQA_TEST": "df535bf51b88dc9718252c34131a6227",
}
"""MD5 of each dataset's TSV as VLMEvalKit's dataset classes list it (``DATASET_MD5``)."""

OPTION_LETTERS = string.ascii_uppercase
_REFERENCE_MAX = 64  # VLMEvalKit: an image cell this short names another row's index
_KNOWN = frozenset({"index", "question", "answer", "hint", "image", "image_path"})


@dataclass(frozen=True)
class VLMEvalRecord:
    """One question of a VLMEvalKit TSV.

    ``options`` maps letters to option texts (letters with a missing cell left out, in
    letter order); ``images`` holds the base64 text of each picture (a shared picture
    resolved), empty when the row has none; ``fields`` holds every other non-missing
    column (``category``, ``l2-category``, ``split``, ...) as text.
    """

    index: str
    question: str
    answer: str | None
    hint: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    image_paths: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)


def file_md5(path: Path | str) -> str:
    """Hex MD5 of a file, read in 1 MiB blocks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_md5(path: Path | str, dataset: str) -> None:
    """Raise :class:`DataError` when ``path`` is not the file VLMEvalKit lists for ``dataset``.

    A dataset VLMEvalKit gives no MD5 for is not checked.
    """
    expected = VLMEVAL_MD5.get(dataset)
    if expected is None:
        return
    got = file_md5(path)
    if got != expected:
        raise DataError(
            path,
            f"MD5 {got} is not VLMEvalKit's {expected} for {dataset} "
            "(a different version of the file, or a damaged copy)",
        )


def list_literal(text: str, path: Path, item: str, column: str) -> tuple[str, ...]:
    """A list written as a Python literal, its values as strings; parsed with
    `ast.literal_eval` (VLMEvalKit uses `eval`: nothing in a data file is executed here)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise DataError(path, "not a valid list", item=item, field=column) from None
    if not isinstance(value, (list, tuple)):
        raise DataError(path, "not a valid list", item=item, field=column)
    return tuple(str(v) for v in value)


def _list_cell(cell: str, path: Path, item: str, column: str) -> tuple[str, ...]:
    """VLMEvalKit's ``toliststr``: "[...]" is a list literal, anything else one value."""
    if len(cell) > 1 and cell[0] == "[" and cell[-1] == "]":
        return list_literal(cell, path, item, column)
    return (cell,)


def _read_frame(path: Path) -> list[dict[str, str | None]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=True)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(path, f"not a readable TSV file: {first}") from None
    rows = frame.to_dict(orient="records")
    return [{k: (v if isinstance(v, str) else None) for k, v in row.items()} for row in rows]


def read_vlmeval_tsv(path: Path | str) -> list[VLMEvalRecord]:
    """The questions of a VLMEvalKit TSV, in file order.

    Raises :class:`DataError` naming the file, item and field for a missing ``index`` or
    ``question`` column or cell, a repeated index, a malformed list cell, or an image
    reference to a row that does not exist or has no image of its own.
    """
    path = Path(path)
    rows = _read_frame(path)
    columns = set(rows[0]) if rows else set()
    for required in ("index", "question"):
        if rows and required not in columns:
            raise DataError(path, f"no {required!r} column", field=required)

    by_index: dict[str, dict[str, str | None]] = {}
    for number, row in enumerate(rows):
        index = row.get("index")
        if index is None:
            raise DataError(path, "empty index", item=f"row {number + 2}", field="index")
        if index in by_index:
            raise DataError(path, "index repeated", item=index, field="index")
        by_index[index] = row

    records = []
    for index, row in by_index.items():
        question = row.get("question")
        if question is None:
            raise DataError(path, "empty question", item=index, field="question")
        images: tuple[str, ...] = ()
        cell = row.get("image")
        if cell:
            if len(cell) <= _REFERENCE_MAX:
                target = by_index.get(cell)
                shared = target.get("image") if target is not None else None
                if shared is None or len(shared) <= _REFERENCE_MAX:
                    raise DataError(
                        path, f"image refers to row {cell!r}, which has no image of its own",
                        item=index, field="image",
                    )  # fmt: skip
                cell = shared
            images = _list_cell(cell, path, index, "image")
        paths = row.get("image_path")
        options = {
            letter: text for letter in OPTION_LETTERS if (text := row.get(letter)) is not None
        }
        extra = {
            k: v
            for k, v in row.items()
            if k not in _KNOWN and k not in OPTION_LETTERS and v is not None
        }
        records.append(
            VLMEvalRecord(
                index=index,
                question=question,
                answer=row.get("answer"),
                hint=row.get("hint"),
                options=options,
                images=images,
                image_paths=_list_cell(paths, path, index, "image_path") if paths else (),
                fields=extra,
            )
        )
    return records


def image_bytes(record: VLMEvalRecord, source: Path | str = "<tsv>") -> list[bytes]:
    """The decoded pictures of a record; :class:`DataError` for base64 that is not valid."""
    out = []
    for number, text in enumerate(record.images):
        try:
            out.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            item = record.index if len(record.images) == 1 else f"{record.index} image {number}"
            raise DataError(source, "image is not valid base64", item=item, field="image") from None
    return out


def circular_groups(
    records: list[VLMEvalRecord], source: Path | str = "<tsv>"
) -> Mapping[int, list[VLMEvalRecord]]:
    """MMBench's rotations grouped by question (``index % 1_000_000``), in file order.

    Every index must be an integer (VLMEvalKit asserts the same for circular datasets).
    """
    from qwenvl_eval.metrics.mmbench import circular_group_of

    groups: dict[int, list[VLMEvalRecord]] = {}
    for record in records:
        try:
            number = int(record.index)
        except ValueError:
            raise DataError(source, "index is not an integer", item=record.index) from None
        groups.setdefault(circular_group_of(number), []).append(record)
    return groups
