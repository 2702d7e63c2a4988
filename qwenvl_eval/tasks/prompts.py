"""Prompt declarations. Pure: a prompt plus a document gives the request's parts.

Two styles exist because the paper's protocol differs from the chat families':
- `Raw`: the Qwen-VL paper's raw text, images inline as `<img>{image}</img>`, no chat template.
- `Chat`: one user turn for the chat-template families; images come first as content parts.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from ..errors import DataError
from ..types import Document, Image, ImageRef, Part, PromptStyle, Text, stable_hash

IMAGE_SLOT = "<img>{image}</img>"


def _format(template: str, fields: dict[str, Any], doc_id: str) -> str:
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing = sorted(n for n in names if n not in fields)
    if missing:
        raise DataError(
            "<prompt>", "the prompt needs a field the item lacks", item=doc_id, field=missing[0]
        )
    return template.format(**{n: fields[n] for n in names})


@dataclass(frozen=True)
class Raw:
    """The paper's raw prompt, e.g. `<img>{image}</img>{question} Answer:`."""

    template: str
    style: PromptStyle = "raw"
    system: str | None = None

    def parts(self, doc: Document, images: tuple[ImageRef, ...] | None = None) -> list[Part]:
        images = doc.images if images is None else images
        chunks = self.template.split(IMAGE_SLOT)
        if len(chunks) - 1 > len(images):
            raise DataError(
                "<prompt>",
                f"the prompt has {len(chunks) - 1} image slot(s) but "
                f"the item has {len(images)} image(s)",
                item=doc.id,
                field="image",
            )
        out: list[Part] = []
        for i, chunk in enumerate(chunks):
            if i > 0:
                out.append(Image(images[i - 1]))
            text = _format(chunk, doc.fields, doc.id)
            if text:
                out.append(Text(text))
        return out

    def hash(self) -> str:
        return stable_hash(["raw", self.template, self.system])


@dataclass(frozen=True)
class Chat:
    """A single user turn: the item's images, then the formatted text."""

    template: str
    system: str | None = None
    style: PromptStyle = "chat"

    def parts(self, doc: Document, images: tuple[ImageRef, ...] | None = None) -> list[Part]:
        images = doc.images if images is None else images
        return [Image(im) for im in images] + [Text(_format(self.template, doc.fields, doc.id))]

    def hash(self) -> str:
        return stable_hash(["chat", self.template, self.system])


Prompt = Raw | Chat


def render_raw(parts: tuple[Part, ...] | list[Part]) -> str:
    """The exact text the Qwen-VL tokenizer sees for a raw prompt: images as `<img>KEY</img>`."""
    return "".join(p.text if isinstance(p, Text) else f"<img>{p.image.key}</img>" for p in parts)
