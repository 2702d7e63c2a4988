"""Captioning data: COCO-style caption files, Karpathy split files, lmms-lab parquet folders.

Each document is one image with its reference captions: fields `references` (list[str]),
`domain` (NoCaps: in-domain / near-domain / out-domain; else None) and `file_name`.

Formats read
- COCO-style (NoCaps `nocaps_val_4500_captions.json`, Flickr30K `flickr30k_karpathy_test.json`):
  `{"images": [{"id", "file_name" (or "image"), "domain"?}], "annotations": [{"image_id",
  "caption"}]}`; images keep the file's order, references the annotations' order.
- Karpathy (`dataset_flickr30k.json`): `{"images": [{"filename", "split", "imgid",
  "sentences": [{"raw", ...}]}]}`; one split is selected (train / val / test).
- lmms-lab/NoCaps parquet (split `validation`): `image`, `image_id`, `image_file_name`,
  `annotations_captions` (list), `domain` when present (the lmms-lab copy has none: then no
  per-domain numbers).
- lmms-lab/flickr30k parquet (split `test`, which is the WHOLE corpus, 31,784 images):
  `image`, `filename`, `caption` (list). Only the images of the requested Karpathy split are
  kept, so `dataset_flickr30k.json` must sit beside it (the parquet has no split column).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document, ImageRef
from . import records as rec
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import find_image, read_json

NOCAPS_DOMAINS = ("in-domain", "near-domain", "out-domain")


def _top_list(data: Any, key: str, path: Path) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise DataError(path, f"expected a top-level {key!r} list", field=key)
    return value


def read_coco_captions(
    path: Path,
    *,
    task_dir: Path,
    image_path: Callable[[str], str],
    doc_id: Callable[[str, str], str] = lambda image_id, name: image_id,
    with_domain: bool = False,
) -> list[Document]:
    """A COCO-style caption file. `image_path(file_name)` gives the image's path in the task
    folder; `doc_id(image_id, file_name)` the document id."""
    data = read_json(path)
    images = _top_list(data, "images", path)
    refs: dict[str, list[str]] = {}
    for n, raw in enumerate(_top_list(data, "annotations", path)):
        where = f"annotations[{n}]"
        ann = rec.record(raw, source=path, item=where)
        refs.setdefault(rec.ident(ann, "image_id", source=path, item=where), []).append(
            rec.text(ann, "caption", source=path, item=where)
        )
    docs: list[Document] = []
    for n, raw in enumerate(images):
        img = rec.record(raw, source=path, item=f"images[{n}]")
        image_id = rec.ident(img, "id", source=path, item=f"images[{n}]")
        key = "file_name" if "file_name" in img or "image" not in img else "image"
        name = rec.text(img, key, source=path, item=image_id)
        if image_id not in refs:
            raise DataError(
                path, "image has no reference caption", item=image_id, field="annotations"
            )
        domain = None
        if with_domain:
            domain = rec.text(img, "domain", source=path, item=image_id)
            if domain not in NOCAPS_DOMAINS:
                raise DataError(
                    path,
                    f"unknown domain {domain!r} (expected one of {', '.join(NOCAPS_DOMAINS)})",
                    item=image_id,
                    field="domain",
                )
        image = find_image(task_dir, image_path(name), source=path, item=image_id, field=key)
        docs.append(_doc(doc_id(image_id, name), image, refs.pop(image_id), domain, name))
    if refs:
        stray = next(iter(refs))
        raise DataError(
            path, "caption for an image that is not in 'images'", item=stray, field="image_id"
        )
    return docs


def karpathy_split(path: Path, split: str) -> list[dict[str, Any]]:
    """The image records of one split of a Karpathy `dataset_*.json`, in file order."""
    data = read_json(path)
    rows = []
    for n, raw in enumerate(_top_list(data, "images", path)):
        row = rec.record(raw, source=path, item=f"images[{n}]")
        if rec.text(row, "split", source=path, item=f"images[{n}]") == split:
            rows.append(row)
    return rows


def _karpathy_refs(row: dict[str, Any], path: Path, item: str) -> list[str]:
    sentences = row.get("sentences")
    if not isinstance(sentences, list) or not sentences:
        raise DataError(
            path, "expected a non-empty list of sentences", item=item, field="sentences"
        )
    return [
        rec.text(rec.record(s, source=path, item=item), "raw", source=path, item=item)
        for s in sentences
    ]


def read_karpathy(path: Path, split: str, *, task_dir: Path, image_dir: str) -> list[Document]:
    """Karpathy's split file; document id = the image file's stem (as in the COCO-style copy)."""
    docs = []
    for row in karpathy_split(path, split):
        name = rec.text(row, "filename", source=path, item=str(row.get("imgid", "?")))
        item = _stem(name)
        image = find_image(
            task_dir, posixpath.join(image_dir, name), source=path, item=item, field="filename"
        )
        docs.append(_doc(item, image, _karpathy_refs(row, path, item), None, name))
    return docs


def read_nocaps_parquet(folder: Path, split: str) -> list[Document]:
    docs = []
    for row in read_parquet_split(folder, split):
        item = rec.ident(row, "image_id", source=folder, item="?")
        refs = rec.texts(row, "annotations_captions", source=folder, item=item)
        domain = row.get("domain")
        if domain is not None and domain not in NOCAPS_DOMAINS:
            raise DataError(folder, f"unknown domain {domain!r}", item=item, field="domain")
        image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
        name = row.get("image_file_name") or image.key
        docs.append(_doc(item, image, refs, domain, str(name)))
    return docs


def read_flickr_parquet(folder: Path, karpathy: Path, split: str) -> list[Document]:
    """The lmms-lab copy holds all 31,784 images: keep the Karpathy split's, in its order."""
    wanted = [
        rec.text(r, "filename", source=karpathy, item=str(r.get("imgid", "?")))
        for r in karpathy_split(karpathy, split)
    ]
    rows: dict[str, dict[str, Any]] = {}
    for row in read_parquet_split(folder, "test"):
        rows[rec.text(row, "filename", source=folder, item="?")] = row
    docs = []
    for name in wanted:
        item = _stem(name)
        row = rows.get(name)
        if row is None:
            raise DataError(
                folder,
                f"image {name} of the Karpathy {split} split is not in the parquet files",
                item=item,
                field="filename",
            )
        image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
        refs = rec.texts(row, "caption", source=folder, item=item)
        docs.append(_doc(item, ImageRef(key=name, data=image.data), refs, None, name))
    return docs


def _doc(item: str, image: ImageRef, refs: list[str], domain: str | None, name: str) -> Document:
    return Document(
        id=item, images=(image,), fields={"references": refs, "domain": domain, "file_name": name}
    )


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]


@dataclass(frozen=True)
class NoCapsData:
    """NoCaps val: `nocaps/nocaps_val_4500_captions.json`, images `nocaps/images/{file_name}`;
    or an lmms-lab/NoCaps parquet folder at `nocaps/`."""

    subdir: str = "nocaps"
    split_size: int | None = 4500
    annotations: str = "nocaps_val_4500_captions.json"
    image_dir: str = "images"
    hf_split: str = "validation"

    def expected(self, root: Path) -> list[Path]:
        folder = root / self.subdir
        official = folder / self.annotations
        if not official.is_file() and parquet_files(folder, self.hf_split):
            return parquet_files(folder, self.hf_split)
        return [official]

    def load(self, root: Path) -> list[Document]:
        folder = root / self.subdir
        official = folder / self.annotations
        if not official.is_file() and parquet_files(folder, self.hf_split):
            return read_nocaps_parquet(folder, self.hf_split)
        return read_coco_captions(
            official,
            task_dir=folder,
            with_domain=True,
            image_path=lambda name: posixpath.join(self.image_dir, name),
        )


@dataclass(frozen=True)
class Flickr30kData:
    """Flickr30K, one Karpathy split (test: 1000 images x 5 captions), from Karpathy's
    `flickr30k/dataset_flickr30k.json` or the COCO-style `flickr30k_karpathy_{split}.json`;
    images `flickr30k/flickr30k-images/{filename}`. Or the lmms-lab parquet (see above)."""

    split: str = "test"
    subdir: str = "flickr30k"
    karpathy: str = "dataset_flickr30k.json"
    image_dir: str = "flickr30k-images"

    @property
    def split_size(self) -> int | None:
        return {"train": 29000, "val": 1014, "test": 1000}.get(self.split)

    @property
    def coco_style(self) -> str:
        return f"flickr30k_karpathy_{self.split}.json"

    def _official(self, folder: Path) -> Path | None:
        return rec.first_existing([folder / self.karpathy, folder / self.coco_style])

    def _use_parquet(self, folder: Path) -> bool:
        return not (folder / self.image_dir).is_dir() and bool(parquet_files(folder, "test"))

    def expected(self, root: Path) -> list[Path]:
        folder = root / self.subdir
        if self._use_parquet(folder):
            return [folder / self.karpathy, *parquet_files(folder, "test")]
        return [self._official(folder) or folder / self.karpathy, folder / self.image_dir]

    def load(self, root: Path) -> list[Document]:
        folder = root / self.subdir
        if self._use_parquet(folder):
            karpathy = folder / self.karpathy
            if not karpathy.is_file():
                raise DataError(
                    karpathy,
                    "file not found: the lmms-lab flickr30k parquet holds "
                    "the whole corpus, and this file says which images are the "
                    f"Karpathy {self.split} split",
                )
            return read_flickr_parquet(folder, karpathy, self.split)
        path = self._official(folder) or folder / self.karpathy
        if path.name == self.karpathy:
            return read_karpathy(path, self.split, task_dir=folder, image_dir=self.image_dir)
        # The COCO-style copies name images by path; only the file name is meaningful here.
        return read_coco_captions(
            path,
            task_dir=folder,
            image_path=lambda name: posixpath.join(self.image_dir, posixpath.basename(name)),
            doc_id=lambda image_id, name: _stem(name),
        )
