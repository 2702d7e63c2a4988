"""Batched greedy generation and option scoring on the tiny checkpoint (fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from qwenvl_eval.errors import UserError
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.families import QWEN_VL, QWEN_VL_CHAT
from qwenvl_eval.model.presets import ResolvedModel
from qwenvl_eval.model.qwen_vl.decoding import greedy_generate, score_continuations
from qwenvl_eval.model.qwen_vl.modeling import PromptInputs
from qwenvl_eval.model.qwen_vl.runner import QwenVLRunner
from qwenvl_eval.model.qwen_vl.vision import resize_image
from qwenvl_eval.types import (
    GenerateRequest,
    Generation,
    Image,
    ImageRef,
    ScoreRequest,
    Text,
)

GEN = Generation(max_new_tokens=8, min_new_tokens=2)
QUESTIONS = [
    "What is in the picture? Answer:",
    "Describe the image in English:",
    "How many people are there? Answer:",
    "Is there a tree? Answer:",
    "What color is the car? Answer:",
    "Where is the boat? Answer:",
]


def make_runner(resolved, batch_size, family=QWEN_VL):
    r = ResolvedModel(resolved.spec, resolved.path, family, resolved.revision, resolved.preset)
    return QwenVLRunner(r, RunnerOptions(device="cpu", dtype="fp32", batch_size=batch_size))


@pytest.fixture(scope="module")
def runners(tiny_resolved):
    return {bs: make_runner(tiny_resolved, bs) for bs in (1, 4)}


def run(runner, requests):
    out = {
        r.id: r
        for r in (
            runner.generate(requests)
            if isinstance(requests[0], GenerateRequest)
            else runner.score_options(requests)
        )
    }
    return [out[r.id] for r in requests]


def vqa_requests(images, questions=QUESTIONS, gen=GEN):
    return [
        GenerateRequest(f"q{i}", (Image(images[i % len(images)]), Text(q)), gen, style="raw")
        for i, q in enumerate(questions)
    ]


def test_batch_size_1_and_n_give_identical_outputs(runners, images):
    requests = vqa_requests(images)
    one = run(runners[1], requests)
    many = run(runners[4], requests)
    assert all(r.error is None for r in one + many)
    assert [r.text for r in one] == [r.text for r in many]
    assert runners[4].stats.batches < runners[1].stats.batches
    assert all(r.text for r in one)


def test_outputs_vary_with_the_image_and_the_text(runners, images):
    same_text = [
        GenerateRequest(f"i{i}", (Image(im), Text(QUESTIONS[0])), GEN, style="raw")
        for i, im in enumerate(images)
    ]
    by_image = [r.text for r in run(runners[4], same_text)]
    assert len(set(by_image)) == len(images), by_image
    same_image = vqa_requests(images[:1])
    by_text = [r.text for r in run(runners[4], same_image)]
    assert len(set(by_text)) >= len(QUESTIONS) - 1, by_text


def test_sixteen_shot_prompt_over_4000_tokens(runners, images, tokenizer):
    parts = []
    for i in range(16):
        parts += [Image(images[i % 4]), Text(f"{QUESTIONS[i % 6]} dog{i}")]
    parts += [Image(images[1]), Text(QUESTIONS[0])]
    long = GenerateRequest("long", tuple(parts), GEN, style="raw")
    short = vqa_requests(images)[:2]
    prepared = runners[4].prepare(long, 0)
    assert prepared.num_tokens > 4000  # NTK alpha 3 and log-n scaling are in play
    alone = run(runners[1], [long] + short)
    batched = run(runners[4], [long] + short)
    assert all(r.error is None and r.text for r in alone)
    assert [r.text for r in alone] == [r.text for r in batched]


def test_min_new_tokens_suppresses_stops(model, tokenizer, images):
    ids = tokenizer.encode(f"<img>{images[0].key}</img>What is it? Answer:")
    prompt = PromptInputs(ids, tokenizer.image_offsets(ids), [resize_image(images[0].open(), 56)])
    first = greedy_generate(model, [prompt], 1, 0, [set()], tokenizer.eod_id)[0]
    assert len(first) == 1
    stop = {first[0]}
    assert greedy_generate(model, [prompt], 5, 0, [stop], tokenizer.eod_id) == [[]]
    forced = greedy_generate(model, [prompt], 5, 2, [stop], tokenizer.eod_id)[0]
    assert len(forced) >= 2 and first[0] not in forced[:2]
    assert greedy_generate(model, [prompt], 0, 0, [stop], tokenizer.eod_id) == [[]]


def test_option_scores_share_the_prefix_exactly(model, tokenizer, images):
    prompts, options = [], []
    for i, q in enumerate(["Question: what? Answer:", "Context: N/A\nOptions: A. x\nAnswer:"]):
        ids = tokenizer.encode(f"<img>{images[i].key}</img>{q}")
        prompts.append(
            PromptInputs(ids, tokenizer.image_offsets(ids), [resize_image(images[i].open(), 56)])
        )
        options.append([tokenizer.encode(o) for o in (" A", " the red car")])
    got = score_continuations(model, prompts, options, tokenizer.eod_id)
    with torch.no_grad():
        for p, opts, scores in zip(prompts, options, got, strict=True):
            for o, tokens in zip(opts, scores, strict=True):
                assert len(tokens) == len(o)
                total = sum(tokens)
                expected = 0.0
                for j, tok in enumerate(o):
                    full = PromptInputs(p.ids + o[:j], p.image_offsets, p.pixels)
                    hidden, _ = model.prefill([full], tokenizer.eod_id, extra=0)
                    expected += torch.log_softmax(model.logits(hidden)[0], -1)[tok].item()
                assert total == pytest.approx(expected, abs=1e-4)
    # Alone and batched agree too.
    alone = score_continuations(model, prompts[1:], options[1:], tokenizer.eod_id)
    assert [sum(t) for t in alone[0]] == pytest.approx([sum(t) for t in got[1]], abs=1e-4)


def test_runner_scoring(runners, images):
    requests = [
        ScoreRequest(
            f"s{i}",
            (Image(images[i]), Text("Question: which? Answer:")),
            (" A", " B", " C"),
            style="raw",
        )
        for i in range(3)
    ]
    one = run(runners[1], requests)
    many = run(runners[4], requests)
    for a, b in zip(one, many, strict=True):
        assert a.error is None and len(a.options) == 3
        for x, y in zip(a.options, b.options, strict=True):
            assert x.num_tokens == 1
            assert x.mean_logprob == pytest.approx(x.sum_logprob)
            assert x.sum_logprob == pytest.approx(y.sum_logprob, abs=1e-4)
    assert len({a.options[0].sum_logprob for a in one}) == 3  # the image matters


def test_chat_style_prompt(tiny_resolved, images, tokenizer):
    runner = make_runner(tiny_resolved, 2, QWEN_VL_CHAT)
    req = GenerateRequest(
        "c", (Image(images[0]), Text("What is it?")), GEN, style="chat", system=None
    )
    prepared = runner.prepare(req, 0)
    expected = tokenizer.chat_ids(f"Picture 1: <img>{images[0].key}</img>\nWhat is it?")
    assert prepared.inputs["prompt"].ids == expected
    two = GenerateRequest(
        "c2",
        (Image(images[0]), Image(images[1]), Text("Same?")),
        GEN,
        style="chat",
        system="Be brief.",
    )
    ids = runner.prepare(two, 1).inputs["prompt"].ids
    assert ids == tokenizer.chat_ids(
        f"Picture 1: <img>{images[0].key}</img>\nPicture 2: <img>{images[1].key}</img>\nSame?",
        system="Be brief.",
    )
    out = run(runner, [req, two])
    assert all(r.error is None for r in out)
    assert runner.chat_stops == {151643, 151644, 151645}
    assert runner.raw_stops == {151643}


def test_bad_items_fail_alone(runners, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    requests = vqa_requests(images)[:2] + [
        GenerateRequest(
            "extra-tag", (Image(images[0]), Text("<img>x</img>Answer:")), GEN, style="raw"
        ),
        GenerateRequest(
            "bad-image", (Image(ImageRef(str(broken), path=broken)), Text("Hi")), GEN, style="raw"
        ),
    ]
    out = run(runners[4], requests)
    assert [r.error is None for r in out] == [True, True, False, False]
    assert "2 <img> span(s)" in out[2].error
    assert out[0].text == run(runners[1], requests[:1])[0].text


def test_stop_strings_and_greedy_only(runners, images):
    base = run(runners[4], vqa_requests(images)[:1])[0].text
    word = base.split()[-1]
    cut = run(runners[4], vqa_requests(images, gen=GEN.replace(stop=(word,)))[:1])[0].text
    assert cut == base[: base.index(word)].strip()
    with pytest.raises(UserError, match="greedily"):
        runners[4].generate(vqa_requests(images, gen=GEN.replace(num_beams=3)))
    with pytest.raises(UserError, match="repetition_penalty=1.05"):
        runners[4].generate(vqa_requests(images, gen=GEN.replace(repetition_penalty=1.05)))


def test_provenance(runners, tiny_resolved):
    prov = runners[1].provenance()
    assert prov["backend"] == "native-qwen-vl"
    assert prov["path"] == str(tiny_resolved.path)
    assert prov["revision"] == tiny_resolved.revision
    assert (prov["dtype"], prov["device"]) == ("float32", "cpu")
    assert prov["image_resize"] == "PIL bicubic 56x56"
    assert prov["image_conversion"].startswith("PIL convert('RGB') as the original Qwen-VL")


def test_image_decode_errors_name_the_file(runners, images, tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    bomb = tmp_path / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 12000, 12000, 8, 0, 0, 0, 0)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    cut = tmp_path / "cut.png"
    cut.write_bytes(images[1].path.read_bytes()[:200])
    reqs = vqa_requests(images)[:1] + [
        GenerateRequest(n, (Image(ImageRef(n, path=p)), Text("Hi")), GEN, style="raw")
        for n, p in (("bomb", bomb), ("cut", cut))
    ]
    out = run(runners[4], reqs)
    assert out[0].error is None
    assert "bomb.png: image is 12000x12000 = 144,000,000 pixels" in out[1].error
    assert "cut.png: truncated or corrupt image" in out[2].error
