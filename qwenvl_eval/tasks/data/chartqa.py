"""ChartQA test splits: the official JSON files, or an lmms-lab/ChartQA parquet folder.

Formats read
- Official (github.com/vis-nlp/ChartQA): `chartqa/test/test_human.json` and
  `chartqa/test/test_augmented.json`, `[{"imgname", "query", "label"}]`; images
  `chartqa/test/png/{imgname}`. The same under `chartqa/ChartQA Dataset/test/` as the
  repository lays it out.
- Qwen-VL eval_mm: `chartqa/test_human.jsonl`, `chartqa/test_augmented.jsonl`, lines
  `{image, question, answer}` (`image` relative to the folder holding `data/`).
- lmms-lab/ChartQA (`chartqa/data/test-*.parquet`): `type` ("human_test" / "augmented_test";
  a bare "human" / "augmented" is accepted too), `question`, `answer`, `image`.

Documents: id = `{split}-{n}` (n = position in that split's file; the files have no ids);
fields `question`, `answers` (the label; eval_mm lines may give a list, scored best-of as
eval_mm scores it), `split` ("human" or "augmented").
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document, ImageRef
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell
from .locate import ImageCache, read_json, read_jsonl, strip_data_prefix

SPLITS = ("human", "augmented")
_SPLIT_SIZE = 1250  # questions in each official test split


REPO_DIR = "ChartQA Dataset"


@dataclass(frozen=True)
class ChartQAData(SplitSource):
    splits: tuple[str, ...] = ("human",)
    subdir: str = "chartqa"
    hub_id: str = "lmms-lab/ChartQA"

    def __post_init__(self) -> None:
        unknown = set(self.splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown ChartQA split(s): {sorted(unknown)}")

    @property
    def split_size(self) -> int:
        return _SPLIT_SIZE * len(self.splits)

    def formats(self, root: Path) -> list[Format]:
        folder = root / self.subdir
        out = []
        for name, base in (("official", folder), ("repository layout", folder / REPO_DIR)):
            files = tuple(base / "test" / f"test_{s}.json" for s in self.splits)
            out.append(
                Format(name, "official", files, lambda b=base, f=files: self._read(root, b, f))
            )
        jsonls = tuple(folder / f"test_{s}.jsonl" for s in self.splits)
        out.append(
            Format("eval_mm jsonl", "eval_mm", jsonls, lambda: self._read_jsonl(root, jsonls))
        )
        out += hf_formats(folder, "test", self._from_rows, hub_id=self.hub_id)
        return out

    def _read(self, root: Path, base: Path, files: tuple[Path, ...]) -> list[Document]:
        images = ImageCache(base, root=root)
        docs: list[Document] = []
        for split, path in zip(self.splits, files, strict=True):
            rows = read_json(path)
            if not isinstance(rows, list):
                raise DataError(path, "expected a list of questions")
            for n, raw in enumerate(rows):
                item = f"{split}-{n}"
                row = rec.record(raw, source=path, item=item)
                name = rec.text(row, "imgname", source=path, item=item)
                image = images.get(
                    posixpath.join("test/png", name), source=path, item=item, field="imgname"
                )
                docs.append(_doc(item, image, row, "query", "label", split, path))
        return docs

    def _read_jsonl(self, root: Path, files: tuple[Path, ...]) -> list[Document]:
        folder = files[0].parent
        images = ImageCache(folder, root=root, bases=(root, folder, folder / "test" / "png"))
        docs: list[Document] = []
        for split, path in zip(self.splits, files, strict=True):
            for n, raw in enumerate(read_jsonl(path)):
                item = f"{split}-{n}"
                row = rec.record(raw, source=path, item=item)
                rel = strip_data_prefix(rec.text(row, "image", source=path, item=item))
                image = images.get(rel, source=path, item=item, field="image")
                docs.append(_doc(item, image, row, "question", "answer", split, path))
        return docs

    def _from_rows(self, rows: list[dict[str, Any]], folder: Path) -> list[Document]:
        counts = dict.fromkeys(self.splits, 0)
        docs = []
        for row in rows:
            kind = rec.text(row, "type", source=folder, item="?").split("_")[0]
            if kind not in SPLITS:
                raise DataError(folder, f"unknown question type {kind!r}", field="type")
            if kind not in counts:
                continue
            item = f"{kind}-{counts[kind]}"
            counts[kind] += 1
            image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
            docs.append(_doc(item, image, row, "question", "answer", kind, folder))
        # The official order: every question of the first split, then the next.
        order = {s: i for i, s in enumerate(self.splits)}
        return sorted(docs, key=lambda d: order[d.fields["split"]])


def _doc(
    item: str, image: ImageRef, row: dict[str, Any], q: str, a: str, split: str, source: Path
) -> Document:
    # eval_mm's relaxed accuracy takes the answer as a string or a list of any length (the
    # best over the list): the same here. A number is its text.
    label = row.get(a)
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        label = str(label)
    if not isinstance(label, (str, list)):
        raise DataError(
            source, f"expected a string answer or a list of them, got {label!r}", item=item, field=a
        )
    labels = rec.text_or_texts({a: label}, a, source=source, item=item)
    return Document(
        id=item,
        images=(image,),
        fields={
            "question": rec.text(row, q, source=source, item=item),
            "answers": labels,
            "split": split,
        },
    )
