"""The OpenAI-compatible backend's request building, without a server: the messages a server
renders equal the in-process prompt, images travel as their own bytes, greedy settings map
exactly, and what cannot be mapped or answered is said before any request."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from qwenvl_eval.errors import UserError
from qwenvl_eval.model import preprocess as pp
from qwenvl_eval.model.families import QWEN2_5_VL, QWEN2_VL, QWEN3_VL, QWEN_VL
from qwenvl_eval.model.openai_api import (
    EndpointOptions,
    chat_messages,
    endpoint_model,
    image_data_url,
    local_input_size,
    sampling_params,
)
from qwenvl_eval.types import GenerateRequest, Generation, Image, ImageRef, Text


def _request(image_dir: Path, system: str | None = None) -> GenerateRequest:
    parts = (
        Image(ImageRef("a", path=image_dir / "img1.png")),
        Text("What is in the first image?"),
        Image(ImageRef("b", path=image_dir / "img2.png")),
        Text("Answer in one word."),
    )
    return GenerateRequest("q1", parts, Generation(max_new_tokens=7), system=system)


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"])
@pytest.mark.parametrize("system", [None, "You are a careful grader."])
def test_server_renders_the_in_process_prompt(hf_runners, image_dir, family, system):
    """A server applies the checkpoint's chat template to the OpenAI messages (image_url
    parts included); that text must equal what the transformers backend renders."""
    runner = hf_runners[family]
    request = _request(image_dir, system)
    in_process = pp.chat_prompt(runner.family, request, runner.template, runner.tokenizer)
    messages = chat_messages(runner.family, request, ["data:image/png;base64,AAAA"] * 2)
    served = runner.tokenizer.apply_chat_template(
        messages, chat_template=runner.template, tokenize=False, add_generation_prompt=True
    )
    assert served == in_process
    assert served.count("<|image_pad|>") == 2


def test_messages_keep_image_order_and_urls(image_dir):
    request = _request(image_dir, "sys")
    messages = chat_messages(QWEN2_VL, request, ["u1", "u2"])
    assert messages == [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "u1"}},
                {"type": "text", "text": "What is in the first image?"},
                {"type": "image_url", "image_url": {"url": "u2"}},
                {"type": "text", "text": "Answer in one word."},
            ],
        },
    ]
    with pytest.raises(ValueError, match="more images"):
        chat_messages(QWEN2_VL, request, ["u1", "u2", "u3"])


def test_data_url_carries_the_file_bytes_unchanged(image_dir, tmp_path):
    from PIL import Image as PILImage

    png = (image_dir / "img0.png").read_bytes()
    url = image_data_url(ImageRef("x", path=image_dir / "img0.png"))
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png

    buf = io.BytesIO()
    PILImage.new("RGB", (9, 5), (200, 10, 30)).save(buf, format="JPEG", quality=90)
    url = image_data_url(ImageRef("y", data=buf.getvalue()))
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == buf.getvalue()

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(Exception, match="cannot identify"):
        image_data_url(ImageRef("z", path=bad))


def test_greedy_settings_map_exactly():
    gen = Generation(max_new_tokens=10, min_new_tokens=1, stop=("\n", "###"))
    params, extra, notes = sampling_params(gen, seed=1234)
    assert params == {
        "max_tokens": 10,
        "temperature": 0.0,
        "seed": 1234,
        "n": 1,
        "stop": ["\n", "###"],
    }
    assert extra == {}
    assert len(notes) == 1 and notes[0].startswith("min_new_tokens=1 not applied")

    params, extra, notes = sampling_params(gen, seed=5, send_min_tokens=True)
    assert extra == {"min_tokens": 1} and notes == []
    assert "stop" in params and params["seed"] == 5

    params, extra, notes = sampling_params(Generation(max_new_tokens=3), seed=0)
    assert params == {"max_tokens": 3, "temperature": 0.0, "seed": 0, "n": 1}
    assert extra == {} and notes == []


def test_beam_search_is_noted_not_silently_dropped():
    gen = Generation(max_new_tokens=30, min_new_tokens=8, num_beams=3, length_penalty=0.0)
    _, extra, notes = sampling_params(gen, seed=0, send_min_tokens=True)
    assert extra == {"min_tokens": 8}
    assert notes == [
        "num_beams=3 (length_penalty=0.0) not applied: the chat completions API has no beam "
        "search; decoding was greedy"
    ]
    # Sampling asked for explicitly: the server's default temperature, seeded.
    params, _, _ = sampling_params(Generation(do_sample=True), seed=9)
    assert params["temperature"] == 1.0 and params["seed"] == 9


def test_repetition_penalty_is_sent_as_a_vendor_extension_or_noted():
    gen = Generation(max_new_tokens=5, repetition_penalty=1.05)
    _, extra, notes = sampling_params(gen, seed=0, send_min_tokens=True)
    assert extra == {"repetition_penalty": 1.05} and notes == []
    _, extra, notes = sampling_params(gen, seed=0)
    assert extra == {}
    assert notes == [
        "repetition_penalty=1.05 not applied: the chat completions API has none (pass "
        "--api-min-tokens to a vLLM or SGLang server)"
    ]


def test_qwen2_5_vl_input_size_is_the_processors(image_dir):
    """Qwen2.5-VL boxes are in the resized image's pixels: the size computed locally must be
    the one the processor produces (same pixel limits)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    limits = {"min_pixels": 3136, "max_pixels": 50176}
    proc = Qwen2VLImageProcessorPil(**limits)
    for name in ("img0.png", "img1.png", "img2.png", "img3.png", "img5.png"):
        ref = ImageRef(name, path=image_dir / name)
        grid = proc(images=[ref.open()], return_tensors="pt")["image_grid_thw"][0].tolist()
        expected = pp.input_size(grid, 14)
        assert local_input_size(QWEN2_5_VL, ref, **limits) == expected
    ref = ImageRef("i", path=image_dir / "img3.png")
    assert local_input_size(QWEN2_VL, ref, None, None) is None  # boxes in /1000 there
    assert local_input_size(QWEN3_VL, ref, None, None) is None


def test_endpoint_options_are_checked():
    ok = EndpointOptions("http://127.0.0.1:8000/v1", "m")
    assert ok.concurrency == 8 and ok.max_retries == 5
    for kwargs, flag in [
        ({"base_url": "127.0.0.1:8000"}, "--base-url"),
        ({"api_model": ""}, "--api-model"),
        ({"concurrency": 0}, "--concurrency"),
        ({"request_timeout": 0}, "--request-timeout"),
        ({"max_retries": -1}, "--max-retries"),
    ]:
        args = {"base_url": "http://h:1/v1", "api_model": "m", **kwargs}
        with pytest.raises(UserError, match=flag):
            EndpointOptions(**args)


def test_family_of_a_served_model_needs_no_local_files():
    assert endpoint_model("Qwen/Qwen2.5-VL-72B-Instruct").family is QWEN2_5_VL
    assert endpoint_model("qwen2-vl-7b-instruct-awq").family is QWEN2_VL
    assert endpoint_model("org/qwen2_5_vl_finetune").family is QWEN2_5_VL
    assert endpoint_model("Qwen/Qwen3-VL-235B-A22B-Instruct").family is QWEN3_VL
    assert endpoint_model("qwen2-vl-7b").preset == "qwen2-vl-7b"  # a preset: nothing built
    assert endpoint_model("my-finetune", family="qwen2.5-vl").family is QWEN2_5_VL
    with pytest.raises(UserError, match="--family"):
        endpoint_model("my-finetune")


def test_raw_prompt_families_are_refused_up_front():
    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.openai_api import OpenAIRunner
    from qwenvl_eval.model.presets import ResolvedModel

    model = ResolvedModel("qwen-vl", Path("qwen-vl"), QWEN_VL, None, "qwen-vl")
    endpoint = EndpointOptions("http://127.0.0.1:9/v1", "qwen-vl")
    with pytest.raises(UserError, match="raw prompts"):
        OpenAIRunner(model, RunnerOptions(), endpoint)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_mistakes_are_one_line(capsys):
    from tests.test_cli import assert_one_line_error, run_cli

    base = ["run", "--model", "tiny-qwen2-vl", "--tasks", "vqav2", "--data-dir", "builtin"]
    code, _, err = run_cli([*base, "--backend", "openai"], capsys)
    assert_one_line_error(code, err, "--backend openai needs --base-url")
    code, _, err = run_cli([*base, "--backend", "tgi"], capsys)
    assert_one_line_error(code, err, "unknown backend 'tgi'", "hf, vllm, openai")
    code, _, err = run_cli([*base, "--backend", "openai", "--base-url", "localhost:8000"], capsys)
    assert_one_line_error(code, err, "--base-url: expected http(s)://")


def test_unreachable_server_fails_before_any_item(capsys, tmp_path, monkeypatch):
    from tests.test_cli import assert_one_line_error, run_cli

    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-printed")
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    argv = ["run", "--model", "tiny-qwen2-vl", "--tasks", "vqav2", "--data-dir", "builtin"]
    argv += ["--backend", "openai", "--base-url", url, "--max-retries", "0"]
    code, out, err = run_cli([*argv, "--output-dir", str(tmp_path)], capsys)
    assert_one_line_error(code, err, f"{url}: cannot list the served models", "APIConnectionError")
    assert "sk-never-printed" not in out + err
    assert not list(tmp_path.iterdir())  # nothing written


def test_option_log_prob_from_prompt_log_probs():
    from qwenvl_eval.model.openai_api import option_logprob

    def tok(i: int, text: str, lp: float) -> dict:
        return {str(i): {"logprob": lp, "rank": 1, "decoded_token": text}}

    entries = [None, tok(1, "<|im_start|>", -1.0), tok(2, "assistant", -0.5), tok(3, "\n", -0.25)]
    assert option_logprob([*entries, tok(4, " B", -2.0)], " B") == (-2.0, 1)
    assert option_logprob([*entries, tok(5, " Mont", -1.5), tok(6, "real", -0.5)], " Montreal") == (
        -2.0,
        2,
    )
    with pytest.raises(ValueError, match="do not spell the option ' A'"):
        option_logprob([*entries, tok(4, " B", -2.0)], " A")
    # More than the prompt's own token per entry (prompt_logprobs > 0): refused, not guessed.
    two = {
        "7": {"logprob": -1.0, "decoded_token": " A"},
        "8": {"logprob": -3.0, "decoded_token": "x"},
    }
    with pytest.raises(ValueError):
        option_logprob([*entries, two], " A")


def test_a_served_hub_id_needs_no_local_cache_to_prepare_requests(monkeypatch, tmp_path):
    # The run prepares every task's requests before the model is resolved: for a served model
    # the family comes from its name, not from a local HF cache lookup that would fail.
    from qwenvl_eval.model import backends

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-home" / "hub"))
    spec = "Qwen/Qwen2.5-VL-72B-Instruct"
    assert backends.family("openai", spec, None) is QWEN2_5_VL
    with pytest.raises(UserError, match="local"):
        backends.family("hf", spec, None)


def test_a_missing_client_library_names_the_install_command(monkeypatch):
    import sys

    from qwenvl_eval.model import backends
    from qwenvl_eval.model.base import RunnerOptions

    monkeypatch.setitem(sys.modules, "openai", None)  # import openai -> ImportError
    model = backends.resolve("openai", "tiny-qwen2-vl", None)
    options = RunnerOptions(backend="openai", backend_options={"base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(UserError, match=r"pip install 'qwenvl-eval\[openai\]'"):
        backends.load("openai", model, options)


def test_images_are_sent_as_lossless_png_at_the_processors_size(image_dir):
    """The PNG decodes to exactly the pixels the in-process backends feed the model, at a size
    the processor keeps (so a server's own resize is the identity); a served name with no
    local checkpoint gets the family's published processor settings."""
    import numpy as np
    from PIL import Image as PILImage
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    from qwenvl_eval.model.base import RunnerOptions
    from qwenvl_eval.model.openai_api import endpoint_model, image_processor_for, png_data_url

    opts = RunnerOptions(device="cpu")
    proc, source = image_processor_for(endpoint_model("tiny-qwen2-vl"), opts)
    assert source.endswith("tiny-qwen2-vl-v1")
    ref = ImageRef("i", path=image_dir / "img1.png")
    image, (w, h) = pp.resized(pp.decode_image(ref), proc)
    url = png_data_url(image)
    assert url.startswith("data:image/png;base64,")
    sent = PILImage.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (w, h) and np.array_equal(np.asarray(sent), np.asarray(image))
    factor = proc.patch_size * proc.merge_size
    assert smart_resize(h, w, factor, proc.size["shortest_edge"], proc.size["longest_edge"]) == (
        h,
        w,
    )
    _, source = image_processor_for(endpoint_model("Qwen/Qwen3-VL-8B-Instruct"), opts)
    assert source == "qwen3-vl defaults"
