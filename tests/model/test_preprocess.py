"""Pure input helpers of the chat-family backends."""

from __future__ import annotations

import pytest

from qwenvl_eval.model import preprocess as pp
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.types import Image, ImageRef, Text


def test_expand_image_tokens_per_image():
    ids, types = pp.expand_image_tokens([5, 9, 6, 1, 5, 9, 6], image_token_id=9, counts=[3, 2])
    assert ids == [5, 9, 9, 9, 6, 1, 5, 9, 9, 6]
    assert types == [0, 1, 1, 1, 0, 0, 0, 1, 1, 0]


def test_expand_image_tokens_count_mismatch():
    with pytest.raises(ValueError, match="1 image placeholder"):
        pp.expand_image_tokens([9], 9, [4, 4])


def test_left_pad_keeps_last_tokens_aligned():
    p = pp.left_pad([[1, 2, 3], [4]], [[0, 1, 0], [0]], pad_id=0)
    assert p.ids == [[1, 2, 3], [0, 0, 4]]
    assert p.mask == [[1, 1, 1], [0, 0, 1]]
    assert p.types == [[0, 1, 0], [0, 0, 0]]


def test_right_pad():
    ids, mask = pp.right_pad([[7], [8, 9]], pad_id=0)
    assert ids == [[7, 0], [8, 9]] and mask == [[1, 0], [1, 1]]


def test_raw_prompt_and_input_size(tmp_path):
    img = Image(ImageRef("k", tmp_path / "x.png"))
    assert pp.raw_prompt(QWEN2_VL, (img, Text("Q?"))) == (
        "<|vision_start|><|image_pad|><|vision_end|>Q?"
    )
    assert pp.input_size([1, 6, 10], 14) == [140, 84]


def test_cut_at_stops():
    assert pp.cut_at_stops("yes\nQuestion: no", ("\n", "Question")) == "yes"
    assert pp.cut_at_stops("yes", ()) == "yes"


def test_final_text_is_one_rule_for_decoded_and_served_text():
    # A server's content keeps the special tokens' text: cut at the end of the turn, the
    # others removed, exactly what the in-process decode (skip_special_tokens) gives.
    served = "<|box_start|>(1,2),(3,4)<|box_end|> yes<|im_end|>\n<|endoftext|>"
    text, notes = pp.final_text(served, ())
    assert text == "(1,2),(3,4) yes"
    assert notes == [
        "text from <|im_end|> on removed (24 chars)",
        "2 special-token text(s) removed",
    ]
    # A token cut inside a multi-byte character: dropped, as vLLM's detokenizer does.
    assert pp.final_text("caf\ufffd", ()) == (
        "caf",
        ["an incomplete UTF-8 character at the end removed"],
    )
    assert pp.final_text("\ufffd a", ()) == ("\ufffd a", [])  # not at the end: kept
    assert pp.final_text("yes\nno\ufffd", ("\n",)) == (
        "yes",
        ["an incomplete UTF-8 character at the end removed"],
    )
    assert pp.final_text(" plain ", ()) == ("plain", [])


def test_answer_text_drops_a_trailing_incomplete_character_and_notes_it():
    decode = {1: "ca", 2: "f", 3: "\ufffd", 9: ""}.get

    def dec(ids):
        return "".join(decode(i) for i in ids)

    notes: list[str] = []
    assert pp.answer_text([1, 2, 3], [9], (), dec, notes) == ("caf", 3)
    assert notes == ["an incomplete UTF-8 character at the end removed"]
