"""The Qwen-VL tokenizer on the tiny checkpoint's qwen.tiktoken (151643 ranks, like the
published one): official special ids, digit splitting, `<img>` spans, ChatML, decoding."""

from __future__ import annotations

import pytest

from qwenvl_eval.errors import UserError
from qwenvl_eval.model.qwen_vl.tokenizer import QwenVLTokenizer

# PROTOCOL.md section 8 (the published tokenizer's ids).
OFFICIAL_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|extra_0|>": 151646,
    "<|extra_204|>": 151850,
    "<ref>": 151851,
    "</ref>": 151852,
    "<box>": 151853,
    "</box>": 151854,
    "<quad>": 151855,
    "</quad>": 151856,
    "<img>": 151857,
    "</img>": 151858,
    "<imgpad>": 151859,
}


def test_special_token_ids(tokenizer):
    for text, expected in OFFICIAL_IDS.items():
        if text != "<img>":  # a lone <img> is an unclosed span (an error, as in the original)
            assert tokenizer.encode(text) == [expected], text
    assert tokenizer.special["<img>"] == 151857
    assert tokenizer.eod_id == 151643
    assert (tokenizer.im_start_id, tokenizer.im_end_id) == (151644, 151645)
    assert (tokenizer.img_start_id, tokenizer.img_end_id, tokenizer.img_pad_id) == (
        151857,
        151858,
        151859,
    )
    assert tokenizer.n_vocab == 151860


def test_digits_are_split_one_by_one(tokenizer):
    ids = tokenizer.encode("2019")
    assert ids == [ord("2"), ord("0"), ord("1"), ord("9")]  # tiny ranks: byte b has rank b
    assert len(tokenizer.encode("in 2020 and 45.5")) >= 4 + 3
    assert tokenizer.decode(tokenizer.encode("in 2020 and 45.5")) == "in 2020 and 45.5"


def test_merges_are_used_and_roundtrip(tokenizer):
    text = "Describe the image in English: a photo of a dog."
    ids = tokenizer.encode(text)
    assert len(ids) < len(text.encode())  # learned merges apply
    assert tokenizer.decode(ids) == text


def test_image_span_is_258_ids_with_path_bytes(tokenizer):
    ids = tokenizer.encode("<img>/data/a.jpg</img>What is it? Answer:")
    assert ids[0] == 151857
    assert ids[257] == 151858
    path = list(b"/data/a.jpg")
    assert ids[1 : 1 + len(path)] == path
    assert ids[1 + len(path) : 257] == [151859] * (256 - len(path))
    assert tokenizer.image_offsets(ids) == [0]
    # Text after the span is tokenised as usual.
    assert ids[258:] == tokenizer.encode("What is it? Answer:")


def test_two_images_and_unicode_path(tokenizer):
    text = "<img>a/é.png</img> and <img>b.png</img>"
    ids = tokenizer.encode(text)
    offsets = tokenizer.image_offsets(ids)
    assert len(offsets) == 2
    assert ids[offsets[0] + 1 : offsets[0] + 1 + len("a/é.png".encode())] == list(
        "a/é.png".encode()
    )
    assert ids[offsets[1] + 257] == 151858
    assert len(ids) == 258 * 2 + len(tokenizer.encode(" and "))


def test_overlong_path_still_gives_256_slots(tokenizer):
    ids = tokenizer.encode("<img>" + "x" * 300 + "</img>")
    assert len(ids) == 258 and ids[-1] == 151858


def test_unclosed_image_tag_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="unclosed"):
        tokenizer.encode("<img>a.png What is it?")


def test_nfc_normalisation(tokenizer):
    assert tokenizer.encode("e\u0301") == tokenizer.encode("\u00e9")


def test_decode_skips_special_tokens(tokenizer):
    ids = tokenizer.encode("<ref>the dog</ref><box>(1,2),(3,4)</box><|endoftext|>")
    assert tokenizer.decode(ids) == "the dog(1,2),(3,4)"
    assert tokenizer.decode(ids, skip_special_tokens=False).endswith("</box><|endoftext|>")
    assert tokenizer.decode([151900]) == ""  # padded vocab rows beyond the tokenizer


def test_chatml_context(tokenizer):
    ids = tokenizer.chat_ids("Picture 1: <img>a.png</img>\nWhat is it?")
    enc = tokenizer.encode
    nl = enc("\n")
    head = [151644] + enc("system") + nl + enc("You are a helpful assistant.") + [151645] + nl
    assert ids[: len(head)] == head
    user = [151644] + enc("user") + nl
    assert ids[len(head) : len(head) + len(user)] == user
    assert ids[-(len(enc("assistant")) + len(nl) + 1) :] == [151644] + enc("assistant") + nl
    assert len(tokenizer.image_offsets(ids)) == 1
    # Inside a chat message only the image/box tags are special, not <|endoftext|>.
    assert 151643 not in tokenizer.chat_ids("say <|endoftext|>")
    assert 151643 in tokenizer.encode("say <|endoftext|>")
    custom = tokenizer.chat_ids("hi", system="Be brief.")
    assert enc("Be brief.") == custom[1 + len(enc("system")) + len(nl) :][: len(enc("Be brief."))]


def test_bad_tiktoken_file_is_a_user_error(tmp_path):
    bad = tmp_path / "qwen.tiktoken"
    bad.write_text("not-base64!! x\n")
    with pytest.raises(UserError, match="line 1"):
        QwenVLTokenizer(bad)
    with pytest.raises(UserError, match="not found"):
        QwenVLTokenizer(tmp_path / "missing.tiktoken")
