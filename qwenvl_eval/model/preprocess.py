"""Pure helpers that turn a request into model inputs for the chat-style Qwen-VL families
(Qwen2-VL, Qwen2.5-VL, Qwen3-VL): prompt text, image-token expansion, batch padding.

They do what the family's HF `*Processor.__call__` does (one `<|image_pad|>` per image becomes
grid_t*grid_h*grid_w / merge^2 copies) but per item, so that items can be prepared on worker
threads and batched later without re-tokenising.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..types import GenerateRequest, Image, ImageRef, Part, ScoreRequest, Text
from .families import Family


def images_of(parts: Sequence[Part]) -> list[ImageRef]:
    return [p.image for p in parts if isinstance(p, Image)]


def raw_prompt(family: Family, parts: Sequence[Part]) -> str:
    """The text parts concatenated, each image written as the family's vision placeholder."""
    out = []
    for p in parts:
        if isinstance(p, Image):
            out.append(family.image_placeholder.replace("{key}", p.image.key))
        elif isinstance(p, Text):
            out.append(p.text)
        else:  # pragma: no cover
            raise TypeError(f"unknown prompt part {type(p).__name__}")
    return "".join(out)


def chat_prompt(
    family: Family, request: GenerateRequest | ScoreRequest, template: str, tokenizer
) -> str:
    messages = family.chat_messages(request.parts, request.system)
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True
    )


def expand_image_tokens(
    ids: Sequence[int], image_token_id: int, counts: Sequence[int]
) -> tuple[list[int], list[int]]:
    """Replace the k-th image placeholder token by counts[k] copies. Returns (ids, token types)
    where the type is 1 for image tokens and 0 for text (transformers' mm_token_type_ids)."""
    n_placeholders = sum(1 for t in ids if t == image_token_id)
    if n_placeholders != len(counts):
        raise ValueError(
            f"prompt has {n_placeholders} image placeholder(s) for {len(counts)} image(s)"
        )
    out: list[int] = []
    types: list[int] = []
    k = 0
    for t in ids:
        if t == image_token_id:
            out.extend([t] * counts[k])
            types.extend([1] * counts[k])
            k += 1
        else:
            out.append(t)
            types.append(0)
    return out, types


@dataclass(frozen=True)
class Padded:
    ids: list[list[int]]
    mask: list[list[int]]
    types: list[list[int]]


def left_pad(seqs: Sequence[Sequence[int]], types: Sequence[Sequence[int]], pad_id: int) -> Padded:
    """Left padding keeps every prompt's last token in the last column, so generation
    continues all rows from the same position."""
    width = max(len(s) for s in seqs)
    ids, mask, tt = [], [], []
    for s, t in zip(seqs, types, strict=True):
        n = width - len(s)
        ids.append([pad_id] * n + list(s))
        mask.append([0] * n + [1] * len(s))
        tt.append([0] * n + list(t))
    return Padded(ids, mask, tt)


def right_pad(
    seqs: Sequence[Sequence[int]], pad_id: int
) -> tuple[list[list[int]], list[list[int]]]:
    width = max(len(s) for s in seqs)
    ids = [list(s) + [pad_id] * (width - len(s)) for s in seqs]
    mask = [[1] * len(s) + [0] * (width - len(s)) for s in seqs]
    return ids, mask


def input_size(grid_thw: Sequence[int], patch_size: int) -> list[int]:
    """[width, height] in pixels of the resized image the model saw (Qwen2.5-VL boxes are in
    these coordinates)."""
    _, gh, gw = (int(x) for x in grid_thw)
    return [gw * patch_size, gh * patch_size]


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """Cut generated text at the first stop string (which is not part of the answer)."""
    cut = len(text)
    for s in stops:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]
