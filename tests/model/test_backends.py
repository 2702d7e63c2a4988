"""The backend table and its plumbing: selection, flag checks, fingerprint, provenance."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import transformers

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig, output_affecting
from qwenvl_eval.errors import UserError
from qwenvl_eval.model import backends
from qwenvl_eval.model.backends import BACKENDS, Backend
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.loader import load_runner
from qwenvl_eval.model.presets import resolve_model
from tests.fakes import FakeRunner, write_toy_data


def test_table_names_each_engine_once():
    assert list(BACKENDS)[:2] == ["hf", "vllm"]
    assert BACKENDS["vllm"].option_names == (
        "tensor_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "enforce_eager",
    )


def test_unknown_backend_is_a_user_error():
    with pytest.raises(UserError, match=r"unknown backend 'tgi' \(known: hf, vllm"):
        backends.get_backend("tgi")


def test_a_vllm_flag_given_to_hf_is_refused():
    with pytest.raises(
        UserError,
        match=r"^--tensor-parallel-size does not apply to --backend hf "
        r"\(it is for --backend vllm\)",
    ):
        backends.make_options("hf", {"tensor_parallel_size": 2})
    assert backends.make_options("vllm", {"tensor_parallel_size": 2}).tensor_parallel_size == 2
    assert backends.make_options("hf", {"random_weights": True}).random_weights is True
    with pytest.raises(UserError, match=r"^--tensor-parallel-size does not apply"):
        RunnerOptions(backend_options={"tensor_parallel_size": 2})
    with pytest.raises(UserError, match=r"^--no-such-thing: not an option of --backend vllm"):
        backends.make_options("vllm", {"no_such_thing": 1})


def test_default_backend_keeps_old_fingerprints_and_others_differ():
    config = RunConfig(model="m", tasks=["t"])
    hf = output_affecting(config, None, "/m", "float32", "cpu")
    assert "backend" not in hf  # run directories from before backends existed still resume
    config.runner = replace(config.runner, backend="vllm", backend_options=None)
    vl = output_affecting(config, None, "/m", "float32", "cpu")
    assert vl == hf | {"backend": "vllm"}


def test_missing_engine_library_names_the_install_command(monkeypatch):
    monkeypatch.setitem(
        BACKENDS, "ghost", Backend("ghost", "ghost_engine_not_installed:Runner", "ghost")
    )
    model = resolve_model("tiny-qwen2-vl")
    with pytest.raises(UserError, match=r"pip install 'qwenvl-eval\[ghost\]'"):
        load_runner(model, RunnerOptions(device="cpu", backend="ghost"))


def test_provenance_records_backend_and_library_version():
    assert backends.provenance("hf") == {
        "backend_name": "hf",
        "backend_package": "transformers",
        "backend_version": transformers.__version__,
    }


def test_default_loader_serves_each_family_by_its_implementation():
    opts = RunnerOptions(device="cpu", dtype="fp32")
    runner = load_runner(resolve_model("tiny-qwen2-vl"), opts)
    assert type(runner).__name__ == "HFRunner"
    runner.close()


@pytest.fixture()
def toy_run(tmp_path, monkeypatch, toy_task):
    model_dir = tmp_path / "My-Qwen2-VL"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    seen: list[str] = []

    def fake_loader(model, options):
        seen.append(options.backend)
        return FakeRunner(family=model.family)

    monkeypatch.setattr(app, "load_runner", fake_loader)
    config = RunConfig(
        model=str(model_dir),
        tasks=["toy"],
        data_dir=str(write_toy_data(tmp_path / "data")),
        output_dir=tmp_path / "out",
    )
    return config, seen


def test_each_backend_gets_its_own_run_directory_and_is_recorded(toy_run):
    config, seen = toy_run
    hf = app.run(config)
    config.runner = RunnerOptions(backend="vllm", backend_options={"tensor_parallel_size": 2})
    vl = app.run(config)
    assert seen == ["hf", "vllm"]
    assert hf.run_dir != vl.run_dir
    assert json.loads((vl.run_dir / "run.json").read_text())["backend"] == "vllm"
    model = vl.results["model"]
    assert model["backend_name"] == "vllm" and model["backend_package"] == "vllm"
    assert vl.results["config"]["backend_options"] == {"tensor_parallel_size": 2}
    # Prompts do not depend on the backend: the same items carry the same prompt hashes.
    rows = [
        [
            json.loads(x)["prompt_hash"]
            for x in (d / "toy.predictions.jsonl").read_text().splitlines()
        ]
        for d in (hf.run_dir, vl.run_dir)
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 6


def test_run_refuses_a_flag_of_another_backend_before_loading(toy_run):
    config, seen = toy_run
    with pytest.raises(UserError, match="--gpu-memory-utilization does not apply"):
        config.runner = RunnerOptions(backend_options={"gpu_memory_utilization": 0.5})
    assert seen == []


def _cli(argv, capsys):
    from tests.fakes import run_cli

    return run_cli(argv, capsys)


def test_cli_backend_flags_reach_the_config(capsys, toy_task, tmp_path):
    code, _, err = _cli(
        ["run", "--model", "tiny-qwen2-vl", "--tasks", "toy", "--data-dir", "builtin"]
        + ["--tensor-parallel-size", "2"],
        capsys,
    )
    assert code == 2 and "Traceback" not in err
    text = " ".join(err.split())
    assert text.startswith("error: --tensor-parallel-size does not apply to --backend hf")


def test_cli_unknown_backend(capsys, toy_task):
    code, _, err = _cli(
        ["run", "--model", "tiny-qwen2-vl", "--tasks", "toy", "--backend", "tgi"], capsys
    )
    assert code == 2 and "unknown backend 'tgi'" in " ".join(err.split())


def test_vllm_backend_without_vllm_says_how_to_install(capsys, tmp_path):
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    code, _, err = _cli(
        ["run", "--model", "tiny-qwen2-vl", "--tasks", "vqav2", "--data-dir", "builtin"]
        + ["--limit", "1", "--output-dir", str(tmp_path)]
        + ["--backend", "vllm", "--max-model-len", "4096"],
        capsys,
    )
    text = " ".join(err.split())
    assert code == 2 and "install vLLM for this machine first" in text, text
    # Never the command that would replace a CPU or source build of vLLM.
    assert "qwenvl-eval[vllm]" not in text


def test_settings_an_engine_cannot_honour_are_noted_when_set():
    assert backends.setting_notes(RunnerOptions(backend="vllm")) == []  # defaults: nothing said
    assert backends.setting_notes(RunnerOptions(batch_size=16)) == []  # hf honours it
    notes = backends.setting_notes(RunnerOptions(backend="vllm", batch_size=16))
    assert notes == [
        "--batch-size 16 is not used by --backend vllm: the engine schedules its own batches"
    ]
    opts = RunnerOptions(
        backend="openai", max_batch_tokens=4096, backend_options={"base_url": "http://h/v1"}
    )
    (note,) = backends.setting_notes(opts)
    assert note.startswith("--max-batch-tokens 4096 is not used by --backend openai")


def test_engines_get_typed_options_with_declared_defaults():
    vllm = RunnerOptions(backend="vllm", backend_options={"enforce_eager": True}).backend_options
    assert (vllm.tensor_parallel_size, vllm.enforce_eager, vllm.max_model_len) == (1, True, None)
    api = RunnerOptions(
        backend="openai", backend_options={"base_url": "http://h:8/v1/", "request_timeout": 5}
    ).backend_options
    assert api.base_url == "http://h:8/v1"  # normalised as the flag always was
    assert api.request_timeout == 5.0 and isinstance(api.request_timeout, float)
    assert (api.concurrency, api.max_retries, api.api_key_env) == (8, 5, "OPENAI_API_KEY")
    hf = RunnerOptions().backend_options
    assert (hf.random_weights, hf.output_token_ids) == (False, False)
    with pytest.raises(TypeError, match="expected VllmOptions"):
        RunnerOptions(backend="vllm", backend_options=hf)


def test_openai_fingerprint_is_what_it_was_for_the_same_flags():
    # Before options were typed, the fingerprint held the flags given (base_url always,
    # api_model and api_min_tokens when set); the defaults must not add keys to it.
    opts = RunnerOptions(backend="openai", backend_options={"base_url": "http://h/v1"})
    assert backends.fingerprint("openai", opts.backend_options) == {
        "backend": "openai",
        "backend_base_url": "http://h/v1",
    }
    opts = RunnerOptions(
        backend="openai",
        backend_options={"base_url": "http://h/v1", "api_model": "m", "api_min_tokens": True},
    )
    assert backends.fingerprint("openai", opts.backend_options) == {
        "backend": "openai",
        "backend_base_url": "http://h/v1",
        "backend_api_model": "m",
        "backend_api_min_tokens": True,
    }


def test_results_config_stays_flat_with_the_runner_settings():
    config = RunConfig(
        model="m", tasks=["t"], runner=RunnerOptions(batch_size=3, seed=9, backend="vllm")
    )
    d = config.to_json()
    assert d["batch_size"] == 3 and d["seed"] == 9 and d["backend"] == "vllm"
    assert d["backend_options"] == {} and "runner" not in d
    assert set(d) == {
        "model", "tasks", "data_dir", "data_layout", "limit", "item_set", "batch_size",
        "max_batch_tokens", "seed", "output_dir", "device", "dtype", "min_pixels", "max_pixels",
        "family", "gen_kwargs", "compile", "trust_remote_code", "resume", "preprocess_workers",
        "max_failures", "backend", "backend_options",
    }  # fmt: skip


def test_data_layout_is_checked_with_the_other_flags():
    with pytest.raises(UserError, match="--data-layout: expected one of auto, official"):
        RunConfig(model="m", tasks=["t"], data_layout="lmms").validate()
