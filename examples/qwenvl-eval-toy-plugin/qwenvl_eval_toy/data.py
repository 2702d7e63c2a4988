"""Where the toy_colours split lives and how it is read: one `Format` per way the split may be
stored, shared by `run` and `qwenvl-eval data check`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qwenvl_eval.tasks.data import records as rec
from qwenvl_eval.tasks.data.formats import Format, SplitSource
from qwenvl_eval.tasks.data.locate import ImageCache, builtin_root, read_jsonl
from qwenvl_eval.types import Document

# The plug-in's own mini set (package data): what `--data-dir builtin` reads for this task.
BUNDLED = Path(__file__).resolve().parent / "data"


# --8<-- [start:source]
@dataclass(frozen=True)
class ToyColoursData(SplitSource):
    """`toy_colours/items.jsonl`: lines `{id, image, question, answer}`, `image` relative to
    the file's folder."""

    subdir: str = "toy_colours"
    split_size: int | None = 4  # items in the full split, for `data check`

    def formats(self, root: Path) -> list[Format]:
        # `--data-dir builtin` names the bundled mini sets: the harness's, and this plug-in's.
        base = BUNDLED if root == builtin_root() else root
        path = base / self.subdir / "items.jsonl"
        return [Format("toy jsonl", "official", (path,), lambda: _read(path, base))]


def _read(path: Path, root: Path) -> list[Document]:
    images = ImageCache(path.parent, root=root)  # every image path stays inside the root
    docs = []
    for n, raw in enumerate(read_jsonl(path), 1):
        row = rec.record(raw, source=path, item=f"line {n}")
        item = rec.ident(row, "id", source=path, item=f"line {n}")
        image = images.get(
            rec.text(row, "image", source=path, item=item), source=path, item=item, field="image"
        )
        fields = {
            "question": rec.text(row, "question", source=path, item=item),
            "answer": rec.text(row, "answer", source=path, item=item),
        }
        docs.append(Document(id=item, images=(image,), fields=fields))
    return rec.check_unique(docs, path)  # a repeated id is a data error, not a silent overwrite


# --8<-- [end:source]
