"""The transformers backend on tiny random-weight checkpoints of each chat family (CPU, fp32):
outputs and option log-likelihoods must not depend on batching."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from qwenvl_eval.types import (
    GenerateRequest,
    Generation,
    Image,
    ImageRef,
    ScoreRequest,
    Text,
)

from .conftest import FAMILY_PRESETS, set_batching

FAMILIES = list(FAMILY_PRESETS)
QUESTIONS = [
    "What is in the image?",
    "How many people are in the picture? Answer the question using a single word or phrase.",
    "What color is the bus?",
    "Is there a dog in the photo?",
    "Read the text in the image. What does the sign say? Give the total amount due.",
    "Where is the man?",
]


def _img(image_dir: Path, i: int) -> Image:
    return Image(ImageRef(f"img{i}", image_dir / f"img{i}.png"))


def _generate_requests(image_dir: Path) -> list[GenerateRequest]:
    """Mixed image sizes, prompt lengths, styles and three generation-settings groups."""
    settings = [
        Generation(max_new_tokens=6),
        Generation(max_new_tokens=4, min_new_tokens=3),
        Generation(max_new_tokens=9, min_new_tokens=1),
    ]
    reqs = []
    for i in range(12):
        parts = (_img(image_dir, i % 6), Text(QUESTIONS[(i * 5) % 6]))
        if i == 7:  # two images in one prompt
            parts = (_img(image_dir, 1), Text("Compare"), _img(image_dir, 2), Text("these."))
        if i == 9:  # text only
            parts = (Text("Describe a park in English:"),)
        style = "raw" if i % 4 == 3 else "chat"
        system = "You are a careful assistant." if i == 5 else None
        reqs.append(GenerateRequest(f"q{i}", parts, settings[i % 3], style=style, system=system))
    return reqs


def _by_id(responses):
    out = {}
    for r in responses:
        assert r.id not in out
        out[r.id] = r
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_outputs_do_not_depend_on_batching(family, hf_runners, image_dir):
    runner = hf_runners[family]
    reqs = _generate_requests(image_dir)
    set_batching(runner, 1, output_token_ids=True)
    single = _by_id(runner.generate(reqs))
    set_batching(runner, 5, max_batch_tokens=400, output_token_ids=True)
    batched = _by_id(runner.generate(reqs))
    assert set(single) == set(batched) == {r.id for r in reqs}
    for r in reqs:
        a, b = single[r.id], batched[r.id]
        assert a.error is None and b.error is None, (a.error, b.error)
        assert a.meta["output_token_ids"] == b.meta["output_token_ids"], r.id
        assert a.text == b.text
        # min/max new tokens hold (the list ends with the stop token when one was produced)
        n_new = len(a.meta["output_token_ids"])
        assert n_new <= r.generation.max_new_tokens
        assert n_new >= min(r.generation.min_new_tokens + 1, r.generation.max_new_tokens)
    # A random model that answered the same to everything would hide batching bugs.
    assert len({single[r.id].text for r in reqs}) >= 6


@pytest.mark.parametrize("family", FAMILIES)
def test_outputs_vary_with_image_and_with_question(family, hf_runners, image_dir):
    runner = hf_runners[family]
    set_batching(runner, 6)
    g = Generation(max_new_tokens=5)
    by_image = [
        GenerateRequest(f"i{i}", (_img(image_dir, i), Text(QUESTIONS[0])), g) for i in range(6)
    ]
    by_question = [
        GenerateRequest(f"t{i}", (_img(image_dir, 4), Text(q)), g) for i, q in enumerate(QUESTIONS)
    ]
    assert len({r.text for r in runner.generate(by_image)}) >= 4
    assert len({r.text for r in runner.generate(by_question)}) >= 4


def _direct_option_logprobs(runner, request: ScoreRequest) -> list[float]:
    """Reference: one plain forward over prompt + option (no cache, no batching), log_softmax,
    sum of the option tokens' log-probabilities."""
    prep = runner.prepare(request, 0)
    x = prep.inputs
    sums = []
    for opt in x.options:
        ids = torch.tensor([x.ids + opt])
        kwargs = {"mm_token_type_ids": torch.tensor([x.types + [0] * len(opt)])}
        if x.pixel_values is not None:
            kwargs.update(pixel_values=x.pixel_values, image_grid_thw=x.grid)
        with torch.no_grad():
            mask = torch.ones_like(ids)
            logits = runner.model(input_ids=ids, attention_mask=mask, **kwargs).logits
        lp = torch.log_softmax(logits[0].float(), dim=-1)
        n = len(x.ids)
        sums.append(sum(lp[n - 1 + j, t].item() for j, t in enumerate(opt)))
    return sums


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_option_scores_match_direct_computation_at_any_batch_size(family, hf_runners, image_dir):
    runner = hf_runners[family]
    options = [" A", " the cat", " an elephant sitting on a red sofa", " B", " 42"]
    reqs = [
        ScoreRequest(
            f"s{i}",
            (_img(image_dir, i), Text("Question: which one? " * (1 + i % 3) + "Answer:")),
            tuple(options[: 2 + i % 3]),
            style="raw" if i == 4 else "chat",
        )
        for i in range(6)
    ]
    set_batching(runner, 1)
    single = _by_id(runner.score_options(reqs))
    set_batching(runner, 4, max_batch_tokens=600)
    batched = _by_id(runner.score_options(reqs))
    for r in reqs:
        a, b = single[r.id], batched[r.id]
        assert a.error is None and b.error is None
        assert len(a.options) == len(r.options)
        direct = _direct_option_logprobs(runner, r)
        for k, (sa, sb, sd) in enumerate(zip(a.options, b.options, direct, strict=True)):
            assert _close(sa.sum_logprob, sb.sum_logprob), (r.id, k, sa, sb)
            assert _close(sa.sum_logprob, sd), (r.id, k, sa.sum_logprob, sd)
            assert sa.num_tokens == len(runner.tokenizer(r.options[k])["input_ids"])
            assert _close(sa.mean_logprob, sa.sum_logprob / sa.num_tokens)
    # Multi-token options were exercised (the cached continuation path).
    assert any(s.num_tokens > 2 for r in single.values() for s in r.options)


def test_stop_strings_cut_the_answer(hf_runners, image_dir):
    from qwenvl_eval.model.preprocess import cut_at_stops

    runner = hf_runners["qwen2-vl"]
    set_batching(runner, 6)
    free, stopped = Generation(max_new_tokens=12), Generation(max_new_tokens=12, stop=("e", "a"))

    def reqs(g):
        return [GenerateRequest(f"x{i}", (_img(image_dir, i), Text("Q?")), g) for i in range(6)]

    a = _by_id(runner.generate(reqs(free)))
    b = _by_id(runner.generate(reqs(stopped)))
    assert any(("e" in r.text or "a" in r.text) for r in a.values())  # the stops do occur
    for k in a:
        assert b[k].text == cut_at_stops(a[k].text, ("e", "a")).strip()


def test_unreadable_image_is_an_error_and_the_rest_succeed(hf_runners, image_dir):
    runner = hf_runners["qwen2-vl"]
    set_batching(runner, 4)
    g = Generation(max_new_tokens=3)
    reqs = [GenerateRequest(f"ok{i}", (_img(image_dir, i), Text("What?")), g) for i in range(3)]
    bad = ImageRef("broken", image_dir / "broken.png")
    reqs.insert(1, GenerateRequest("bad", (Image(bad), Text("What?")), g))
    missing = ImageRef("missing", image_dir / "does-not-exist.png")
    reqs.append(GenerateRequest("missing", (Image(missing), Text("What?")), g))
    out = _by_id(runner.generate(reqs))
    assert out["bad"].error and "UnidentifiedImageError" in out["bad"].error
    assert out["missing"].error and "does-not-exist.png" in out["missing"].error
    for i in range(3):
        assert out[f"ok{i}"].error is None and out[f"ok{i}"].text is not None


def _smart_resize(h: int, w: int, factor: int, min_pixels: int, max_pixels: int):
    """Qwen2-VL's resize rule, restated from qwen_vl_utils.smart_resize (official repo)."""
    h_bar = max(factor, round(h / factor) * factor)
    w_bar = max(factor, round(w / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        h_bar = math.floor(h / beta / factor) * factor
        w_bar = math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = math.ceil(h * beta / factor) * factor
        w_bar = math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


@pytest.mark.parametrize("family,patch", [("qwen2.5-vl", 14), ("qwen3-vl", 16)])
def test_input_sizes_meta_is_the_resized_model_input(family, patch, hf_runners, image_dir):
    from .conftest import IMAGE_SIZES

    runner = hf_runners[family]
    set_batching(runner, 3)
    g = Generation(max_new_tokens=2)
    reqs = [GenerateRequest(f"m{i}", (_img(image_dir, i), Text("Where?")), g) for i in range(6)]
    reqs.append(GenerateRequest("two", (_img(image_dir, 1), Text("and"), _img(image_dir, 3)), g))
    out = _by_id(runner.generate(reqs))
    size = runner.image_processor.size
    factor = patch * 2
    for i, (w, h) in enumerate(IMAGE_SIZES):
        rh, rw = _smart_resize(h, w, factor, size["shortest_edge"], size["longest_edge"])
        assert out[f"m{i}"].meta["input_sizes"] == [[rw, rh]]
    # The 640x480 image was shrunk to the pixel budget, the 40x40 one enlarged.
    assert out["m3"].meta["input_sizes"][0][0] < 640
    assert out["m0"].meta["input_sizes"][0][0] > 40
    assert len(out["two"].meta["input_sizes"]) == 2


def test_prompt_styles(hf_runners, image_dir):
    runner = hf_runners["qwen2-vl"]
    parts = (_img(image_dir, 0), Text("What is it? Answer:"))
    chat = runner.prepare(GenerateRequest("c", parts, Generation()), 0)
    raw = runner.prepare(GenerateRequest("r", parts, Generation(), style="raw"), 0)
    tok = runner.tokenizer
    n_img = chat.inputs.types.count(1)
    assert n_img == raw.inputs.types.count(1) > 0

    # Collapse the expanded image tokens back to one placeholder to read the prompt.
    def text(p):
        ids, out = p.inputs.ids, []
        for k, t in enumerate(ids):
            if not (t == runner.image_token_id and k and ids[k - 1] == t):
                out.append(t)
        return tok.decode(out)

    assert text(raw) == "<|vision_start|><|image_pad|><|vision_end|>What is it? Answer:"
    assert text(chat) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>What is it? Answer:<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert chat.num_tokens == len(chat.inputs.ids)


def test_checkpoint_generation_config_is_not_used(hf_runners):
    runner = hf_runners["qwen3-vl"]
    gc = runner.model.generation_config
    assert not gc.do_sample and gc.repetition_penalty in (None, 1.0)
    assert runner.tokenizer.convert_tokens_to_ids("<|im_end|>") in runner.stop_ids


def test_provenance(hf_runners):
    prov = hf_runners["qwen2.5-vl"].provenance()
    assert prov["backend"] == "hf-transformers"
    assert prov["family"] == "qwen2.5-vl"
    assert prov["dtype"] == "float32" and prov["device"] == "cpu"
    assert prov["attn_implementation"] == "sdpa"
    assert prov["revision"].startswith("tiny-v")
    assert {"transformers", "torch", "model_path", "model_class"} <= set(prov)


def test_pixel_limits_reach_the_image_processor(hf_runners, image_dir):
    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.hf import HFRunner

    base = hf_runners["qwen2-vl"]
    budget = 28 * 28 * 6
    runner = HFRunner(base.resolved, RunnerOptions(device="cpu", max_pixels=budget, min_pixels=784))
    req = GenerateRequest("big", (_img(image_dir, 3), Text("What?")), Generation(max_new_tokens=1))
    (w, h) = next(iter(runner.generate([req]))).meta["input_sizes"][0]
    (w0, h0) = next(iter(base.generate([req]))).meta["input_sizes"][0]
    assert w * h <= budget < w0 * h0
    assert runner.provenance()["max_pixels"] == budget
