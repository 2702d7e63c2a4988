"""Captioning data: COCO-style caption files, Karpathy split files, lmms-lab parquet folders.

Each document is one image with its reference captions: fields `references` (list[str]),
`domain` (NoCaps: in-domain / near-domain / out-domain; else None) and `file_name`.

Formats read
- COCO-style (NoCaps `nocaps_val_4500_captions.json`; the Qwen-VL eval_mm files
  `nocaps/nocaps_val.json` and `flickr30k/flickr30k_karpathy_test.json`, whose `image` paths
  are read relative to the data root (`data/` prefix dropped), then the task folder):
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

import dataclasses
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document, ImageRef
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell, parquet_files, read_parquet_files
from .locate import ImageCache, read_json, strip_data_prefix

NOCAPS_DOMAINS = ("in-domain", "near-domain", "out-domain")


def _top_list(data: Any, key: str, path: Path) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise DataError(path, f"expected a top-level {key!r} list", field=key)
    return value


def read_coco_captions(
    path: Path,
    *,
    images: ImageCache,
    image_path: Callable[[str], str],
    doc_id: Callable[[str, str], str] = lambda image_id, name: image_id,
    with_domain: bool | None = False,
) -> list[Document]:
    """A COCO-style caption file. `image_path(file_name)` gives the image's path for
    `images`; `doc_id(image_id, file_name)` the document id. `with_domain`: True requires
    the NoCaps domain, None reads it when present."""
    data = read_json(path)
    records = _top_list(data, "images", path)
    refs: dict[str, list[str]] = {}
    for n, raw in enumerate(_top_list(data, "annotations", path)):
        where = f"annotations[{n}]"
        ann = rec.record(raw, source=path, item=where)
        refs.setdefault(rec.ident(ann, "image_id", source=path, item=where), []).append(
            rec.text(ann, "caption", source=path, item=where)
        )
    docs: list[Document] = []
    for n, raw in enumerate(records):
        img = rec.record(raw, source=path, item=f"images[{n}]")
        image_id = rec.ident(img, "id", source=path, item=f"images[{n}]")
        key = "file_name" if "file_name" in img or "image" not in img else "image"
        name = rec.text(img, key, source=path, item=image_id)
        if image_id not in refs:
            raise DataError(
                path, "image has no reference caption", item=image_id, field="annotations"
            )
        domain = None
        if with_domain or (with_domain is None and img.get("domain") is not None):
            domain = rec.text(img, "domain", source=path, item=image_id)
            if domain not in NOCAPS_DOMAINS:
                raise DataError(
                    path,
                    f"unknown domain {domain!r} (expected one of {', '.join(NOCAPS_DOMAINS)})",
                    item=image_id,
                    field="domain",
                )
        image = images.get(image_path(name), source=path, item=image_id, field=key)
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


def read_karpathy(path: Path, split: str, *, images: ImageCache, image_dir: str) -> list[Document]:
    """Karpathy's split file; document id = the image file's stem (as in the COCO-style copy)."""
    docs = []
    for row in karpathy_split(path, split):
        name = rec.text(row, "filename", source=path, item=str(row.get("imgid", "?")))
        item = _stem(name)
        image = images.get(
            posixpath.join(image_dir, name), source=path, item=item, field="filename"
        )
        docs.append(_doc(item, image, _karpathy_refs(row, path, item), None, name))
    return docs


def nocaps_rows(rows: list[dict[str, Any]], folder: Path) -> list[Document]:
    docs = []
    for row in rows:
        item = rec.ident(row, "image_id", source=folder, item="?")
        refs = rec.texts(row, "annotations_captions", source=folder, item=item)
        domain = row.get("domain")
        if domain is not None and domain not in NOCAPS_DOMAINS:
            raise DataError(folder, f"unknown domain {domain!r}", item=item, field="domain")
        image = image_from_cell(row.get("image"), source=folder, item=item, field="image")
        name = row.get("image_file_name") or image.key
        docs.append(_doc(item, image, refs, domain, str(name)))
    return docs


def read_flickr_parquet(shards: list[Path], karpathy: Path, split: str) -> list[Document]:
    """The lmms-lab copy holds all 31,784 images: keep the Karpathy split's, in its order."""
    wanted = [
        rec.text(r, "filename", source=karpathy, item=str(r.get("imgid", "?")))
        for r in karpathy_split(karpathy, split)
    ]
    folder = shards[0].parent
    rows: dict[str, dict[str, Any]] = {}
    for row in read_parquet_files(shards):
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
        docs.append(_doc(item, dataclasses.replace(image, key=name), refs, None, name))
    return docs


def _doc(item: str, image: ImageRef, refs: list[str], domain: str | None, name: str) -> Document:
    return Document(
        id=item, images=(image,), fields={"references": refs, "domain": domain, "file_name": name}
    )


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]


@dataclass(frozen=True)
class NoCapsData(SplitSource):
    """NoCaps val: `nocaps/nocaps_val_4500_captions.json`, images `nocaps/images/{file_name}`;
    the Qwen-VL eval_mm `nocaps/nocaps_val.json`; or an lmms-lab/NoCaps copy at `nocaps/`."""

    subdir: str = "nocaps"
    split_size: int | None = 4500
    annotations: str = "nocaps_val_4500_captions.json"
    eval_mm: str = "nocaps_val.json"
    image_dir: str = "images"
    hf_split: str = "validation"
    hub_id: str = "lmms-lab/NoCaps"

    def formats(self, root: Path) -> list[Format]:
        folder = root / self.subdir
        official, converted = folder / self.annotations, folder / self.eval_mm

        def read_official() -> list[Document]:
            return read_coco_captions(
                official,
                images=ImageCache(folder, root=root),
                with_domain=True,
                image_path=lambda name: posixpath.join(self.image_dir, name),
            )

        def read_eval_mm() -> list[Document]:
            images = ImageCache(folder, root=root, bases=(root, folder, folder / self.image_dir))
            return read_coco_captions(
                converted, images=images, with_domain=None, image_path=strip_data_prefix
            )

        return [
            Format("official", "official", (official,), read_official),
            Format("eval_mm json", "eval_mm", (converted,), read_eval_mm),
            *hf_formats(folder, self.hf_split, nocaps_rows, hub_id=self.hub_id),
        ]


@dataclass(frozen=True)
class Flickr30kData(SplitSource):
    """Flickr30K, one Karpathy split (test: 1000 images x 5 captions), from Karpathy's
    `flickr30k/dataset_flickr30k.json` or the Qwen-VL eval_mm (COCO-style)
    `flickr30k_karpathy_{split}.json` (in `flickr30k/`, or `flickr/` as EVALUATION.md makes
    it); images `flickr30k/flickr30k-images/{filename}`. Or the lmms-lab parquet (above)."""

    split: str = "test"
    subdir: str = "flickr30k"
    karpathy: str = "dataset_flickr30k.json"
    image_dir: str = "flickr30k-images"
    eval_mm_dirs: tuple[str, ...] = ("flickr30k", "flickr")

    @property
    def split_size(self) -> int | None:
        return {"train": 29000, "val": 1014, "test": 1000}.get(self.split)

    @property
    def coco_style(self) -> str:
        return f"flickr30k_karpathy_{self.split}.json"

    def formats(self, root: Path) -> list[Format]:
        folder = root / self.subdir
        karpathy = folder / self.karpathy

        def read_karpathy_file() -> list[Document]:
            images = ImageCache(folder, root=root)
            return read_karpathy(karpathy, self.split, images=images, image_dir=self.image_dir)

        def read_converted(path: Path) -> list[Document]:
            # The converted files name images by path; only the file name is meaningful here.
            images = ImageCache(folder, root=root, bases=(folder, path.parent))
            return read_coco_captions(
                path,
                images=images,
                image_path=lambda name: posixpath.join(self.image_dir, posixpath.basename(name)),
                doc_id=lambda image_id, name: _stem(name),
            )

        out = [
            Format("karpathy", "official", (karpathy, folder / self.image_dir), read_karpathy_file)
        ]
        for d in self.eval_mm_dirs:
            path = root / d / self.coco_style
            out.append(Format("eval_mm json", "eval_mm", (path,), lambda p=path: read_converted(p)))
        shards = parquet_files(folder, "test")
        out.append(
            Format(
                "hf parquet + karpathy",
                "hf",
                (karpathy, *shards) if shards else (karpathy, folder / "data" / "test-*.parquet"),
                lambda: read_flickr_parquet(shards, karpathy, self.split),
                why=f"the lmms-lab parquet holds the whole corpus; {self.karpathy} says which "
                f"images are the Karpathy {self.split} split",
            )
        )
        return out
