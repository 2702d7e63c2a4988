"""Pure helpers that turn a request into model inputs for the chat-style Qwen-VL families
(Qwen2-VL, Qwen2.5-VL, Qwen3-VL): prompt text, image-token expansion, batch padding, and the
bounded decoding of an image into the RGB pixels the model sees.

They do what the family's HF `*Processor.__call__` does (one `<|image_pad|>` per image becomes
grid_t*grid_h*grid_w / merge^2 copies) but per item, so that items can be prepared on worker
threads and batched later without re-tokenising.

Pixels (`decode_image`): the file is opened lazily, its size checked against a pixel budget
BEFORE any pixel is decoded (a decompression bomb is an error for that item, never a huge
allocation), then decoded in full (a truncated or corrupt file is an error naming the file),
then converted to RGB:
- `transparency="white"` (Qwen2/2.5/3-VL): transformers' `convert_to_rgb`, which the Qwen2-VL
  image processor applies: an image with an alpha band (RGBA, LA, PA) or a transparency key
  (P, L, RGB with `transparency`) is composited onto opaque white (`Image.alpha_composite`);
  anything else (L, 1, P, CMYK, YCbCr, ...) is PIL's `convert("RGB")`. qwen-vl-utils' `to_rgb`
  pastes RGBA onto white with the alpha as mask (the same pixels up to rounding) and drops the
  transparency of LA and P images; the harness follows the processor it runs.
- `transparency="drop"` (Qwen-VL v1): PIL's `convert("RGB")`, as the original `visual.py` does
  (transparent regions show their hidden colour).
- 16-bit and 32-bit integer greyscale (I;16, I;16B, I;16L, I;16N, I): scaled to 8 bits,
  `round(v * 255 / 65535)` (values of I clipped to 0..65535). This is the one deliberate
  difference from the processor: PIL's `convert` clips every value above 255, so the processor
  (and qwen-vl-utils) see an almost white image.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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


def prompt_text(
    family: Family, request: GenerateRequest | ScoreRequest, template: str, tokenizer
) -> str:
    """The prompt text a request renders to, whichever backend tokenises it: the chat
    template for chat requests; raw prompts carry no system turn, exactly what the task wrote."""
    if request.style == "chat":
        return chat_prompt(family, request, template, tokenizer)
    return raw_prompt(family, request.parts)


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


def answer_text(
    token_ids: Sequence[int],
    stop_ids: Sequence[int],
    stops: Sequence[str],
    decode: Callable[[list[int]], str],
    notes: list[str] | None = None,
) -> tuple[str, int]:
    """(text, new tokens) of one generated row, whichever backend generated it: up to the
    first stop id, decoded with special tokens as text, then `final_text`'s rule (which
    removes that text, as it does from a server's answer). What the rule
    removed is appended to `notes` when given."""
    row = list(token_ids)
    stop_set = set(stop_ids)
    n = next((i for i, t in enumerate(row) if t in stop_set), len(row))
    text, removed = final_text(decode(row[:n]), stops)
    if notes is not None:
        notes.extend(removed)
    return text, min(n + 1, len(row))


# The text of the Qwen tokenizers' special tokens (<|im_end|>, <|endoftext|>, <|box_start|>,
# <|vision_pad|>, ...): in-process decoding skips them; a server may leave them in `content`.
_SPECIAL_TEXT = re.compile(r"<\|[A-Za-z0-9_]+\|>")
# A turn ends at either (every Qwen2/2.5/3-VL checkpoint's eos ids: the in-process backends
# stop there); any other special token's text is removed.
END_OF_TURN = ("<|im_end|>", "<|endoftext|>")


def final_text(text: str, stops: Sequence[str]) -> tuple[str, list[str]]:
    """The one rule every backend applies to a generated answer, so that the same tokens give
    the same saved text whether they were decoded here or by a server:
    1. cut at the first end-of-turn token's text (a server that kept generating past it);
    2. remove any other special token's text (every backend decodes them as text, so a
       character whose bytes a special token splits decodes the same everywhere);
    3. drop a trailing U+FFFD: the last token(s) ended inside a multi-byte UTF-8 character,
       which vLLM holds back and a plain decode shows as a replacement character;
    4. cut at the first stop string, strip surrounding white space.
    Returns (text, notes saying what 1-3 removed)."""
    notes: list[str] = []
    cut = min((i for i in (text.find(t) for t in END_OF_TURN) if i != -1), default=-1)
    if cut != -1:
        notes.append(
            f"text from {text[cut:].split('|>', 1)[0]}|> on removed ({len(text) - cut} chars)"
        )
        text = text[:cut]
    text, n = _SPECIAL_TEXT.subn("", text)
    if n:
        notes.append(f"{n} special-token text(s) removed")
    kept = text.rstrip("\ufffd")
    if len(kept) != len(text):
        notes.append("an incomplete UTF-8 character at the end removed")
        text = kept
    return cut_at_stops(text, stops).strip(), notes


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """Cut generated text at the first stop string (which is not part of the answer)."""
    cut = len(text)
    for s in stops:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


def resized(image, processor) -> tuple[Any, list[int]]:
    """The image at the size the image processor gives it (PIL, same resample), and that
    size as [width, height]."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    factor = int(processor.patch_size) * int(processor.merge_size)
    w, h = image.size
    rh, rw = smart_resize(
        h,
        w,
        factor=factor,
        min_pixels=processor.size["shortest_edge"],
        max_pixels=processor.size["longest_edge"],
    )
    if (rw, rh) != (w, h):
        image = image.resize((rw, rh), resample=int(processor.resample))
    return image, [rw, rh]


# ---- image decoding ---------------------------------------------------------------------------
# PIL's own decompression-bomb threshold (it only warns below twice this): about 89.5 M pixels,
# 256 MiB as RGB. Larger images are refused before decoding.
MAX_DECODE_PIXELS = 89_478_485
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
IMAGE_CONVERSION = {
    "white": "transformers convert_to_rgb: transparency composited onto white; 16-bit scaled",
    "drop": "PIL convert('RGB') as the original Qwen-VL (alpha dropped); 16-bit scaled",
}


class ImageDecodeError(ValueError):
    """An image that cannot be used: the message names the file."""


def image_source(ref: ImageRef) -> str:
    return str(ref.path) if ref.path is not None else f"{ref.key} (embedded image bytes)"


def decode_image(
    ref: ImageRef,
    transparency: Literal["white", "drop"] = "white",
    max_pixels: int = MAX_DECODE_PIXELS,
):  # -> PIL.Image.Image (RGB)
    """The RGB image the model sees, decoded within a pixel budget (see the module notes)."""
    from PIL import Image as PILImage

    name = image_source(ref)
    try:
        src = ref.source()
    except (OSError, ValueError) as exc:  # a file gone, a dataset cell without bytes
        raise ImageDecodeError(
            f"{name}: cannot read the image ({type(exc).__name__}: {exc})"
        ) from None
    try:
        with warnings.catch_warnings():
            # PIL warns between its threshold and twice it; the budget below decides.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            im = PILImage.open(src)
    except PILImage.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"{name}: image too large to decode ({type(exc).__name__}: {exc})"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        raise ImageDecodeError(
            f"{name}: cannot read the image ({type(exc).__name__}: {exc})"
        ) from None
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise ImageDecodeError(
                f"{name}: image is {width}x{height} = {width * height:,} pixels, over the "
                f"decode budget of {max_pixels:,} (a decompression bomb?)"
            )
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageDecodeError(
                f"{name}: truncated or corrupt image ({type(exc).__name__}: {exc})"
            ) from None
        return to_rgb(im, transparency)


def to_rgb(im, transparency: Literal["white", "drop"] = "white"):
    """A decoded PIL image as RGB (see the module notes for each mode)."""
    from PIL import Image as PILImage

    if im.mode in _WIDE_GREY:
        im = _grey_to_8bit(im)
    if transparency == "drop":
        return im.convert("RGB")
    if "A" in im.getbands() or im.info.get("transparency") is not None:
        rgba = im.convert("RGBA")
        white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _grey_to_8bit(im):
    """I;16* / I -> L by round(v * 255 / 65535); a transparency key becomes an alpha band."""
    import numpy as np
    from PIL import Image as PILImage

    values = np.asarray(im)
    if im.mode == "I":  # int32: clip to the 16-bit range
        values = np.clip(values, 0, 65535)
    # uint32 holds 65535 * 255 + 32767; 4 bytes a pixel at most, within the decode budget
    grey = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    key = im.info.get("transparency")
    if isinstance(key, int):
        alpha = np.where(values == key, 0, 255).astype(np.uint8)
        return PILImage.fromarray(np.stack([grey, alpha], axis=-1), "LA")
    return PILImage.fromarray(grey, "L")
