"""The Qwen-VL tokenizer, from the checkpoint's `qwen.tiktoken`, without its remote code.

Behaviour reproduced from the original `tokenization_qwen.QWenTokenizer`:
- text is NFC-normalised, then BPE-encoded by tiktoken with Qwen-7B's split pattern (digits
  one by one); special-token text is recognised everywhere ("all") unless told otherwise;
- special tokens follow the BPE ranks: `<|endoftext|>` = len(ranks) = 151643, ...;
- `<img>PATH</img>` becomes 258 ids: `<img>`, the bytes of PATH as ids 0-255, `<imgpad>` up to
  256 slots, `</img>`. The model replaces the 256 slots by the image features, so the PATH
  bytes never reach it; a PATH over 256 bytes (an error in the original) is cut to fit;
- decoding with special tokens skipped drops every id >= `<|endoftext|>`.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

import tiktoken

from ...errors import UserError

PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
IMAGE_START, IMAGE_END, IMAGE_PAD = "<img>", "</img>", "<imgpad>"
# Tags the chat template lets through inside message text (the original's IMAGE_ST).
IMAGE_ST = (
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<quad>",
    "</quad>",
    IMAGE_START,
    IMAGE_END,
    IMAGE_PAD,
)
SPECIAL_TOKENS = (
    (ENDOFTEXT, IM_START, IM_END) + tuple(f"<|extra_{i}|>" for i in range(205)) + IMAGE_ST
)
IMG_SPAN = 256
SYSTEM_DEFAULT = "You are a helpful assistant."


def load_ranks(path: Path) -> dict[bytes, int]:
    """`qwen.tiktoken`: one `base64(token) rank` per line; ranks 0..n-1, each once."""
    try:
        contents = path.read_bytes()
    except FileNotFoundError:
        raise UserError(
            f"{path}: not found; a Qwen-VL checkpoint ships its qwen.tiktoken"
        ) from None
    except OSError as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(contents.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token_b64, rank_s = line.split()
            token, rank = base64.b64decode(token_b64, validate=True), int(rank_s)
        except (ValueError, binascii.Error):
            raise UserError(f"{path}, line {lineno}: expected `base64-token rank`") from None
        if token in ranks:
            raise UserError(f"{path}, line {lineno}: token listed twice")
        ranks[token] = rank
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise UserError(f"{path}: ranks must be 0..{len(ranks) - 1}, each exactly once")
    if len(ranks) < 256 or any(bytes([b]) not in ranks for b in range(256)):
        raise UserError(f"{path}: every single byte must be a token")
    return ranks


class QwenVLTokenizer:
    def __init__(self, path: Path) -> None:
        self.path = path
        ranks = load_ranks(path)
        self.special = {tok: i for i, tok in enumerate(SPECIAL_TOKENS, start=len(ranks))}
        self.enc = tiktoken.Encoding(
            "Qwen", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens=self.special
        )
        self.eod_id = self.special[ENDOFTEXT]
        self.im_start_id = self.special[IM_START]
        self.im_end_id = self.special[IM_END]
        self.img_start_id = self.special[IMAGE_START]
        self.img_end_id = self.special[IMAGE_END]
        self.img_pad_id = self.special[IMAGE_PAD]
        self.n_vocab = self.enc.n_vocab

    # ---- encoding ------------------------------------------------------------------------
    def encode(
        self, text: str, allowed_special: Literal["all"] | Collection[str] = "all"
    ) -> list[int]:
        allowed = "all" if allowed_special == "all" else set(allowed_special)
        ids = self.enc.encode(
            unicodedata.normalize("NFC", text), allowed_special=allowed, disallowed_special=()
        )
        return self._expand_images(ids)

    def _expand_images(self, ids: list[int]) -> list[int]:
        out: list[int] = []
        i = 0
        while True:
            try:
                start = ids.index(self.img_start_id, i)
            except ValueError:
                out.extend(ids[i:])
                return out
            try:
                end = ids.index(self.img_end_id, start)
            except ValueError:
                raise ValueError(f"unclosed {IMAGE_START} tag in the prompt") from None
            out.extend(ids[i:start])
            url = b"".join(self.enc.decode_single_token_bytes(t) for t in ids[start + 1 : end])
            slots = list(url[:IMG_SPAN])
            slots += [self.img_pad_id] * (IMG_SPAN - len(slots))
            out += [self.img_start_id, *slots, self.img_end_id]
            i = end + 1

    def image_offsets(self, ids: Sequence[int]) -> list[int]:
        """Index of each `<img>` tag (its 256 slots follow it)."""
        return [i for i, t in enumerate(ids) if t == self.img_start_id]

    # ---- decoding ------------------------------------------------------------------------
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        if skip_special_tokens:
            ids = [i for i in ids if i < self.eod_id]
        else:
            ids = [i for i in ids if i < self.n_vocab]
        return self.enc.decode(list(ids), errors="replace")

    # ---- prompts -------------------------------------------------------------------------
    def chat_ids(self, query: str, system: str | None = None) -> list[int]:
        """Qwen-VL-Chat's ChatML context for one user turn (its `make_context`): the pieces
        are encoded separately, as the original does, not as one string."""
        nl = self.encode("\n")

        def turn(role: str, content: str) -> list[int]:
            return (
                [self.im_start_id]
                + self.encode(role, IMAGE_ST)
                + nl
                + self.encode(content, IMAGE_ST)
                + [self.im_end_id]
            )

        return (
            turn("system", SYSTEM_DEFAULT if system is None else system)
            + nl
            + turn("user", query)
            + nl
            + [self.im_start_id]
            + self.encode("assistant")
            + nl
        )
