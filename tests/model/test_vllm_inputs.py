"""The vLLM backend's inputs, built WITHOUT vLLM: prompts, images, sampling settings and the
option-score definition, each checked against what the transformers backend does."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from qwenvl_eval.errors import UserError
from qwenvl_eval.model import preprocess as pp
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.preprocess import answer_text
from qwenvl_eval.model.presets import resolve_model
from qwenvl_eval.model.vllm import (
    InputBuilder,
    engine_kwargs,
    generation_notes,
    option_logprob_sum,
    prompt_input,
    resized,
    sampling_kwargs,
    score_kwargs,
)
from qwenvl_eval.types import GenerateRequest, Generation, Image, ImageRef, ScoreRequest, Text

from .conftest import FAMILY_PRESETS

FAMILIES = list(FAMILY_PRESETS)


def _img(image_dir: Path, i: int) -> Image:
    return Image(ImageRef(f"img{i}", image_dir / f"img{i}.png"))


# ---- sampling settings -----------------------------------------------------------------------
def test_greedy_settings_map_one_to_one():
    g = Generation(max_new_tokens=10, min_new_tokens=1, length_penalty=0.0, stop=("\n", "Q:"))
    assert sampling_kwargs(g, [151643, 151645], seed=5) == {
        "n": 1,
        "max_tokens": 10,
        "min_tokens": 1,
        "stop_token_ids": [151643, 151645],
        "stop": ["\n", "Q:"],
        "include_stop_str_in_output": False,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "skip_special_tokens": True,
        "temperature": 0.0,
    }


def test_repetition_penalty_is_passed_through():
    gen = Generation(max_new_tokens=5, repetition_penalty=1.05)
    assert sampling_kwargs(gen, [7], seed=0)["repetition_penalty"] == 1.05
    assert "repetition_penalty=1.05" in generation_notes(gen)[0]


def test_sampling_is_seeded():
    kw = sampling_kwargs(Generation(do_sample=True), [1], seed=42)
    assert (kw["temperature"], kw["seed"]) == (1.0, 42)


def test_beam_search_is_refused_with_the_way_out():
    with pytest.raises(UserError, match=r"num_beams=3 .* use --backend hf, or --gen-kwargs"):
        sampling_kwargs(Generation(num_beams=3), [1], seed=0)


def test_notes_say_how_settings_were_mapped():
    notes = generation_notes(Generation(max_new_tokens=30, min_new_tokens=8, length_penalty=0.0))
    assert notes[0].startswith("vllm: greedy (temperature 0); max_new_tokens -> max_tokens=30")
    assert "min_tokens=8" in notes[0]
    assert notes[1].startswith("vllm: length_penalty=0.0 not passed")
    assert len(generation_notes(Generation())) == 1


def test_score_requests_ask_for_prompt_logprobs_only():
    assert score_kwargs() == {
        "max_tokens": 1,
        "temperature": 0.0,
        "prompt_logprobs": 0,
        "detokenize": False,
    }


def test_prompt_input_is_a_tokens_prompt():
    assert prompt_input([1, 2, 3], []) == {"prompt_token_ids": [1, 2, 3]}
    assert prompt_input([1, 9], ["im"]) == {
        "prompt_token_ids": [1, 9],
        "multi_modal_data": {"image": ["im"]},
    }


def test_engine_flags_pass_through():
    opts = RunnerOptions(
        seed=3,
        backend="vllm",
        backend_options={
            "tensor_parallel_size": 8,
            "gpu_memory_utilization": 0.85,
            "max_model_len": 8192,
        },
    )
    kw = engine_kwargs(
        Path("/m/Qwen2-VL-72B"),
        opts,
        dtype="bfloat16",
        max_images=17,
        image_size={"shortest_edge": 3136, "longest_edge": 1003520},
    )
    assert kw == {
        "model": "/m/Qwen2-VL-72B",
        "tokenizer": "/m/Qwen2-VL-72B",
        "dtype": "bfloat16",
        "seed": 3,
        "trust_remote_code": False,
        "generation_config": "vllm",
        "limit_mm_per_prompt": {"image": 17, "video": 0},
        "mm_processor_kwargs": {"size": {"shortest_edge": 3136, "longest_edge": 1003520}},
        "tensor_parallel_size": 8,
        "gpu_memory_utilization": 0.85,
        "max_model_len": 8192,
    }
    plain = engine_kwargs(
        Path("/m"), RunnerOptions(backend="vllm"), dtype="float32", max_images=0, image_size={}
    )
    assert plain["tensor_parallel_size"] == 1 and plain["limit_mm_per_prompt"]["image"] == 1
    assert "max_model_len" not in plain and "gpu_memory_utilization" not in plain


# ---- answers ----------------------------------------------------------------------------------
def test_answer_text_cuts_like_the_transformers_backend():
    vocab = {1: "The", 2: " bus", 3: "\n", 4: "Q", 5: "<eos>", 6: " is"}

    def decode(ids):
        return "".join(vocab[i] for i in ids if i != 5)

    assert answer_text([1, 2, 6, 5, 1], [5], [], decode) == ("The bus is", 4)
    assert answer_text([1, 2, 3, 4], [5], ["\n"], decode) == ("The bus", 4)
    assert answer_text([6, 2], [5], [], decode) == ("is bus", 2)  # stripped, no stop: all


def test_option_sum_reads_the_last_tokens_entries():
    class Lp:
        def __init__(self, v):
            self.logprob = v

    plp = [None, {7: Lp(-9.0)}, {8: Lp(-1.5), 3: Lp(-0.1)}, {9: -0.25}]
    assert option_logprob_sum(plp, [8, 9]) == -1.75
    assert option_logprob_sum(plp, [9]) == -0.25
    with pytest.raises(ValueError, match="no prompt log-prob for option token 4"):
        option_logprob_sum(plp, [4])
    with pytest.raises(ValueError, match="cover 4 tokens, option has 4"):
        option_logprob_sum(plp, [7, 8, 9, 9])


# ---- against the transformers backend ------------------------------------------------------------
@pytest.fixture(scope="module")
def builders(model_cache) -> dict:
    opts = RunnerOptions(device="cpu")
    return {f: InputBuilder(resolve_model(p), opts) for f, p in FAMILY_PRESETS.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_pre_resized_images_give_the_same_pixels(family, builders, hf_runners, image_dir):
    """vLLM's processor must see an image it does not resize again: the processor's output
    for our pre-resized image equals its output for the original, bit for bit."""
    proc = builders[family].image_processor
    for i in range(6):
        ref = ImageRef(f"img{i}", image_dir / f"img{i}.png")
        original = ref.open()
        small, size = resized(original, proc)
        a = proc(images=[original], return_tensors="pt")
        b = proc(images=[small], return_tensors="pt")
        assert torch.equal(a["image_grid_thw"], b["image_grid_thw"])
        assert torch.equal(a["pixel_values"], b["pixel_values"]), (family, i)
        assert size == pp.input_size(a["image_grid_thw"][0].tolist(), proc.patch_size)
        assert small.size == tuple(size)


def _requests(image_dir: Path) -> list:
    g = Generation(max_new_tokens=5)
    return [
        GenerateRequest("a", (_img(image_dir, 0), Text("What is in the image?")), g),
        GenerateRequest(
            "b",
            (_img(image_dir, 1), Text("Compare"), _img(image_dir, 2), Text("these.")),
            g,
            system="You are a careful assistant.",
        ),
        GenerateRequest("c", (Text("Describe a park in English:"),), g, style="raw"),
        ScoreRequest("d", (_img(image_dir, 3), Text("Which one?")), (" A", " the cat")),
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_tokens_equal_the_transformers_backend(family, builders, hf_runners, image_dir):
    """The same token ids once vLLM expands each image placeholder by the image's token
    count, the same option ids, the same stop ids and the same input sizes."""
    b, hf = builders[family], hf_runners[family]
    assert b.stop_ids == hf.stop_ids
    for req in _requests(image_dir):
        ours = b.prepare(req)
        theirs = hf.prepare(req, 0)
        assert ours.error is None and theirs.error is None
        merge = hf.merge_size**2
        grids = theirs.inputs.grid.tolist() if theirs.inputs.grid is not None else []
        counts = [math.prod(g) // merge for g in grids]
        ids, _ = pp.expand_image_tokens(ours.prompt["prompt_token_ids"], hf.image_token_id, counts)
        assert ids == theirs.inputs.ids
        assert len(ours.prompt.get("multi_modal_data", {}).get("image", [])) == len(counts)
        assert ours.options == theirs.inputs.options
        assert ours.meta.get("input_sizes") == theirs.meta.get("input_sizes")


@pytest.mark.parametrize("family", FAMILIES)
def test_option_definition_equals_the_transformers_backend(family, builders, hf_runners, image_dir):
    """Prompt log-probs laid out as vLLM returns them (one entry per prompt token, the first
    None), computed by one plain forward over prompt + option, give through
    option_logprob_sum exactly the transformers backend's option scores."""
    from qwenvl_eval.types import OptionScore

    hf = hf_runners[family]
    req = ScoreRequest(
        "s", (_img(image_dir, 4), Text("Question: which one? Answer:")), (" A", " the cat", " 42")
    )
    (resp,) = list(hf.score_options([req]))
    x = hf.prepare(req, 0).inputs
    for opt, got in zip(x.options, resp.options, strict=True):
        ids = x.ids + opt
        with torch.no_grad():
            logits = hf.model(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                mm_token_type_ids=torch.tensor([x.types + [0] * len(opt)]),
                pixel_values=x.pixel_values,
                image_grid_thw=x.grid,
            ).logits[0]
        lp = torch.log_softmax(logits.float(), dim=-1)
        prompt_logprobs = [None] + [{ids[t]: lp[t - 1, ids[t]].item()} for t in range(1, len(ids))]
        mine = OptionScore.from_sum(option_logprob_sum(prompt_logprobs, opt), len(opt))
        assert mine.num_tokens == got.num_tokens
        assert math.isclose(mine.sum_logprob, got.sum_logprob, rel_tol=1e-5, abs_tol=1e-5)
        assert math.isclose(mine.mean_logprob, got.mean_logprob, rel_tol=1e-5, abs_tol=1e-5)


def test_an_unreadable_image_is_an_item_error(builders, image_dir):
    req = GenerateRequest(
        "x", (Image(ImageRef("broken", image_dir / "broken.png")), Text("?")), Generation()
    )
    item = builders["qwen2-vl"].prepare(req)
    assert item.prompt is None and item.error.startswith("ImageDecodeError")
    # The file is named, and so is the decoder's own complaint.
    assert str(image_dir / "broken.png") in item.error and "UnidentifiedImageError" in item.error


def test_qwen_vl_v1_is_refused_with_the_alternative():
    from qwenvl_eval.model.families import QWEN_VL
    from qwenvl_eval.model.presets import ResolvedModel
    from qwenvl_eval.model.vllm import VLLMRunner

    model = ResolvedModel("qwen-vl", Path("/nowhere"), QWEN_VL, None, None)
    with pytest.raises(UserError, match=r"--backend vllm serves .* use --backend hf for it"):
        VLLMRunner(model, RunnerOptions(backend="vllm"))


def test_cpu_head_size_and_kv_cache_failures_are_one_line_naming_the_fix():
    import json

    from qwenvl_eval.errors import UserError
    from qwenvl_eval.model.presets import resolve_model
    from qwenvl_eval.model.vllm import check_cpu_head_size, engine_start_error, text_head_size

    small = resolve_model("tiny-qwen2-vl").path
    config = json.loads((small / "config.json").read_text())
    assert text_head_size(config) == 16
    with pytest.raises(UserError, match="head size 16 is not one vLLM's CPU attention") as err:
        check_cpu_head_size(small, config)
    assert "tiny-qwen2-vl-hs32" in str(err.value)
    for preset in ("tiny-qwen2-vl-hs32", "tiny-qwen2.5-vl-hs32", "tiny-qwen3-vl-hs32"):
        path = resolve_model(preset).path
        config = json.loads((path / "config.json").read_text())
        assert text_head_size(config) == 32
        check_cpu_head_size(path, config)  # accepted

    died = RuntimeError("Engine core initialization failed. See root cause above.")
    died.__cause__ = ValueError("Available memory on node 0 (1.0/2.0 GiB) is less than desired")
    line = engine_start_error(died, "cpu", 0.9)
    assert "\n" not in line and "less than desired" in line
    assert "--gpu-memory-utilization" in line and "VLLM_CPU_KVCACHE_SPACE" in line
    assert "VLLM_CPU_KVCACHE_SPACE" not in engine_start_error(died, "cuda", None)
