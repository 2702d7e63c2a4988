"""RefCOCO / RefCOCO+ / RefCOCOg in the refer toolkit's layout, one document per sentence.

`<root>/<subdir>/refs(unc).p` (or `refs(umd).p`): a protocol-2 pickle, a list of refs
`{ref_id, ann_id, image_id, split, category_id, sent_ids, file_name, sentences: [{sent_id,
sent, raw, tokens}]}`, read with the restricted unpickler (no code runs).
`<root>/<subdir>/instances.json`: COCO `images` ({id, file_name, width, height}) and
`annotations` ({id, image_id, bbox: [x, y, w, h]}).
Images: `train2014/<file_name>` in the task folder, else in `<root>/coco/train2014/`.
Without the refs file, the Qwen-VL eval_mm file `<subdir>/<subdir>_<split>.jsonl` is read
(lines `{image, sent, bbox: [x1, y1, x2, y2] pixels, width, height}`, `image` relative to the
folder holding `data/`), else a local copy of lmms-lab/RefCOCO (RefCOCOplus, RefCOCOg)
(see `refer_rows`).

The paper evaluates every (ref, sentence) pair: RefCOCO val has 3811 refs but 10834 items.
The expression is the toolkit's `sent` (lower-cased, tokenised); the ground truth is the
ref's annotation box, as x1y1x2y2 pixels; the image size comes from the image record, so no
image is decoded to score.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell
from .locate import ImageCache, read_json, read_jsonl, strip_data_prefix
from .records import require
from .safe_pickle import load_plain

_NUM = (int, float)


@dataclass(frozen=True)
class _Index:
    refs: list[dict[str, Any]]
    images: dict[int, dict[str, Any]]
    boxes: dict[int, tuple[int, list[float]]]  # ann id -> (image id, xywh)


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    return (str(path), st.st_mtime_ns, st.st_size)


def load_index(refs_path: Path, instances_path: Path) -> _Index:
    """Parsed refs and instances. Cached: the splits of one dataset share both files."""
    return _load_index(_file_key(refs_path), _file_key(instances_path))


@lru_cache(maxsize=2)
def _load_index(refs_key: tuple[str, int, int], inst_key: tuple[str, int, int]) -> _Index:
    refs_path, inst_path = Path(refs_key[0]), Path(inst_key[0])
    refs = load_plain(refs_path)
    if not isinstance(refs, list):
        raise DataError(refs_path, f"expected a list of refs, got {type(refs).__name__}")
    inst = read_json(inst_path)
    if not isinstance(inst, dict):
        raise DataError(inst_path, "expected a COCO instances object")
    images: dict[int, dict[str, Any]] = {}
    for n, im in enumerate(_list(inst, "images", inst_path)):
        image_id = require(im, "id", int, source=inst_path, item=f"images #{n}")
        item = f"image {image_id}"
        if image_id in images:
            raise DataError(inst_path, "duplicate image id", item=item, field="id")
        for key in ("width", "height"):
            rec.positive(
                require(im, key, _NUM, source=inst_path, item=item),
                source=inst_path,
                item=item,
                field=key,
            )
        images[image_id] = im
    boxes: dict[int, tuple[int, list[float]]] = {}
    for n, ann in enumerate(_list(inst, "annotations", inst_path)):
        ann_id = require(ann, "id", int, source=inst_path, item=f"annotations #{n}")
        item = f"annotation {ann_id}"
        image_id = require(ann, "image_id", int, source=inst_path, item=item)
        bbox = require(ann, "bbox", list, source=inst_path, item=item)
        x1, y1, x2, y2 = rec.box(bbox, source=inst_path, item=item, field="bbox", xywh=True)
        if ann_id in boxes:
            raise DataError(inst_path, "duplicate annotation id", item=item, field="id")
        boxes[ann_id] = (image_id, [x1, y1, x2 - x1, y2 - y1])
    return _Index(refs=refs, images=images, boxes=boxes)


def _list(blob: dict, key: str, path: Path) -> list:
    value = blob.get(key)
    if not isinstance(value, list):
        raise DataError(path, "expected a list", field=key)
    return value


@dataclass(frozen=True)
class ReferSource(SplitSource):
    subdir: str  # "refcoco", "refcoco+", "refcocog"
    refs_file: str  # "refs(unc).p", "refs(umd).p"
    split: str  # "val", "testA", "testB", "test"
    split_size: int | None = None
    instances_file: str = "instances.json"
    image_dir: str = "train2014"

    hub_id: str | None = None

    @property
    def eval_mm(self) -> str:
        return f"{self.subdir}_{self.split}.jsonl"

    def formats(self, root: Path) -> list[Format]:
        task_dir = root / self.subdir
        refs_path, inst_path = task_dir / self.refs_file, task_dir / self.instances_file
        jsonl = task_dir / self.eval_mm
        return [
            Format(
                "refer",
                "official",
                (refs_path, inst_path),
                lambda: self._read_refer(root, refs_path, inst_path),
            ),
            Format("eval_mm jsonl", "eval_mm", (jsonl,), lambda: read_refer_jsonl(jsonl, root)),
            *hf_formats(task_dir, self.split, refer_rows, hub_id=self.hub_id),
        ]

    def _read_refer(self, root: Path, refs_path: Path, inst_path: Path) -> list[Document]:
        task_dir = root / self.subdir
        index = load_index(refs_path, inst_path)
        images = ImageCache(task_dir, shared=root / "coco", root=root)
        docs: list[Document] = []
        seen: set[str] = set()
        for n, ref in enumerate(index.refs):
            if not isinstance(ref, dict):
                raise DataError(refs_path, "expected a ref object", item=f"#{n}")
            if ref.get("split") != self.split:
                continue
            ref_id = require(ref, "ref_id", int, source=refs_path, item=f"#{n}")
            item = f"ref {ref_id}"
            ann_id = require(ref, "ann_id", int, source=refs_path, item=item)
            image_id = require(ref, "image_id", int, source=refs_path, item=item)
            sentences = require(ref, "sentences", list, source=refs_path, item=item)
            if ann_id not in index.boxes:
                raise DataError(
                    inst_path,
                    f"no annotation {ann_id} (named by ref {ref_id})",
                    item=item,
                    field="ann_id",
                )
            box_image, (x, y, w, h) = index.boxes[ann_id]
            if box_image != image_id:
                raise DataError(
                    inst_path,
                    f"annotation {ann_id} belongs to image {box_image}, the ref says {image_id}",
                    item=item,
                    field="image_id",
                )
            record = index.images.get(image_id)
            if record is None:
                raise DataError(
                    inst_path, f"no image record {image_id}", item=item, field="image_id"
                )
            file_name = record.get("file_name")
            if not isinstance(file_name, str) or not file_name:
                file_name = f"COCO_train2014_{image_id:012d}.jpg"
            image = images.get(
                f"{self.image_dir}/{file_name}", source=inst_path, item=item, field="file_name"
            )
            for k, sent in enumerate(sentences):
                sitem = f"{item} sentence #{k}"
                sent_id = require(sent, "sent_id", int, source=refs_path, item=sitem)
                text = require(sent, "sent", str, source=refs_path, item=sitem)
                doc_id = f"{ref_id}_{sent_id}"
                if doc_id in seen:
                    raise DataError(refs_path, "duplicate sentence", item=sitem, field="sent_id")
                seen.add(doc_id)
                fields = {
                    "expression": text,
                    # COCO [x, y, w, h] -> x1y1x2y2 pixels, continuous (no +1)
                    "bbox": [x, y, x + w, y + h],
                    "image_size": [float(record["width"]), float(record["height"])],
                    "ref_id": ref_id,
                    "sent_id": sent_id,
                    "ann_id": ann_id,
                    "image_id": image_id,
                }
                docs.append(Document(id=doc_id, images=(image,), fields=fields))
        if not docs:
            found = sorted({str(r.get("split")) for r in index.refs if isinstance(r, dict)})
            raise DataError(
                refs_path,
                f"no sentences in split {self.split!r} (the file has "
                f"splits: {', '.join(found) or 'none'})",
                field="split",
            )
        return docs


def read_refer_jsonl(path: Path, root: Path) -> list[Document]:
    """Qwen-VL eval_mm grounding lines `{image, sent, bbox, width, height}`: the box is
    already x1y1x2y2 in pixels. The lines carry no id: id = the line number (from 1)."""
    task_dir = path.parent
    images = ImageCache(task_dir, root=root, bases=(root, task_dir, root / "coco"))
    docs: list[Document] = []
    for n, row in enumerate(read_jsonl(path), 1):
        item = f"line {n}"
        rel = require(row, "image", str, source=path, item=item)
        text = require(row, "sent", str, source=path, item=item)
        bbox = rec.box(row.get("bbox"), source=path, item=item, field="bbox", xywh=False)
        size = [
            rec.positive(row.get(k), source=path, item=item, field=k) for k in ("width", "height")
        ]
        image = images.get(strip_data_prefix(rel), source=path, item=item, field="image")
        fields = {"expression": text, "bbox": bbox, "image_size": size}
        docs.append(Document(id=str(n), images=(image,), fields=fields))
    return docs


def refer_rows(rows: list[dict], source: Path) -> list[Document]:
    """lmms-lab/RefCOCO-style rows: one per referred object with `question_id`, `image` (an
    HF Image cell), `bbox` (COCO [x, y, w, h] pixels) and `answer` (the list of its referring
    sentences; a single string is one sentence). One document per sentence, id
    `<question_id>_<k>`; the image size is read from the image header (no decoding)."""
    docs: list[Document] = []
    seen: set[str] = set()
    for n, row in enumerate(rows):
        qid = str(require(row, "question_id", (int, str), source=source, item=f"row {n}"))
        if qid in seen:
            raise DataError(source, "duplicate question id", item=qid, field="question_id")
        seen.add(qid)
        sentences = require(row, "answer", (list, str), source=source, item=qid)
        sentences = [sentences] if isinstance(sentences, str) else sentences
        x1, y1, x2, y2 = rec.box(row.get("bbox"), source=source, item=qid, field="bbox", xywh=True)
        image = image_from_cell(row.get("image"), source=source, item=qid, field="image")
        try:
            width, height = image.size()
        except Exception as exc:  # PIL raises several types for a damaged header
            raise DataError(source, f"unreadable image ({exc})", item=qid, field="image") from None
        for k, text in enumerate(sentences):
            if not isinstance(text, str):
                raise DataError(source, "expected sentence strings", item=qid, field="answer")
            fields = {
                "expression": text,
                "bbox": [x1, y1, x2, y2],
                "image_size": [width, height],
                "ref_id": qid,
                "sent_id": k,
            }
            docs.append(Document(id=f"{qid}_{k}", images=(image,), fields=fields))
    return docs
