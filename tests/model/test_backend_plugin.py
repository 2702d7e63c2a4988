"""Adding a backend is its module plus its table entry: a toy engine defined here, registered
with `backends.register`, gets a `run` flag with its help, receives its option typed, and has
the runner settings it cannot honour noted in the results, without an edit to the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from qwenvl_eval.model import backends
from qwenvl_eval.model.backends import Backend, Option
from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.model.presets import ResolvedModel
from tests.fakes import FakeRunner, run_cli, write_toy_data

SEEN: list[RunnerOptions] = []


# ---- the toy engine's module: a loader, a resolver, a family ----------------------------------
class ToyRunner(FakeRunner):
    def __init__(self, options: RunnerOptions) -> None:
        super().__init__(family=QWEN2_VL)
        self.options = options

    def notes(self, requests: Sequence) -> list[str]:
        return backends.setting_notes(self.options)


def load_toy(model: ResolvedModel, options: RunnerOptions) -> ToyRunner:
    SEEN.append(options)
    return ToyRunner(options)


def toy_model(spec: str, family: str | None = None) -> ResolvedModel:
    return ResolvedModel(spec, Path(spec), QWEN2_VL, None, None)


def toy_family(spec: str, family: str | None = None):
    return QWEN2_VL


TOY = Backend(
    "toy",
    f"{__name__}:load_toy",
    "pytest",
    options=(
        Option(
            "toy_temperature", float, 0.5, "how warm the toy engine runs.", fingerprint=True, min=0
        ),
        Option("toy_verbose", bool, help="the toy engine talks."),
    ),
    unhonoured={"batch_size": "the toy answers one item at a time"},
    resolver=f"{__name__}:toy_model",
    family_of=f"{__name__}:toy_family",
)


@pytest.fixture()
def toy_backend(monkeypatch):
    monkeypatch.setitem(backends.BACKENDS, "toy", TOY)  # restored after the test
    backends.register(TOY)
    SEEN.clear()
    yield TOY
    SEEN.clear()


def _run(capsys, tmp_path, *flags: str):
    root = write_toy_data(tmp_path / "data")
    argv = ["run", "--model", "toy-model", "--tasks", "toy", "--data-dir", str(root)]
    return run_cli([*argv, "--output-dir", str(tmp_path / "out"), *flags], capsys)


def test_the_toy_option_is_a_run_flag_with_its_help(toy_backend, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one help line per flag
    code, out, _ = run_cli(["run", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert (
        "--toy-temperature" in text and "toy: how warm the toy engine runs. (default 0.5)" in text
    )
    assert "--toy-verbose" in text and "toy: the toy engine talks." in text
    # Declared flags of the built-in backends stay where they were.
    for flag in ("--tensor-parallel-size", "--base-url", "--concurrency", "--enforce-eager"):
        assert flag in text


def test_the_option_reaches_the_engine_typed_and_enters_the_fingerprint(
    toy_backend, toy_task, capsys, tmp_path
):
    code, _, err = _run(capsys, tmp_path, "--backend", "toy", "--toy-temperature", "2")
    assert code == 0, err
    code, _, err = _run(capsys, tmp_path, "--backend", "toy", "--toy-verbose", "--batch-size", "3")
    assert code == 0, err
    warm, default = SEEN
    assert type(warm.backend_options) is TOY.options_type
    assert warm.backend_options.toy_temperature == 2.0
    assert isinstance(warm.backend_options.toy_temperature, float)  # typed: not "2", not 2
    assert warm.backend_options.toy_verbose is False
    assert default.backend_options.toy_temperature == 0.5 and default.backend_options.toy_verbose
    runs = sorted((tmp_path / "out").iterdir())
    assert len(runs) == 2  # another temperature is another run directory; verbosity is not
    by_config = {}
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        key = json.dumps(results["config"]["backend_options"])
        by_config[key] = results, json.loads((run / "run.json").read_text())
    warm_results, warm_print = by_config['{"toy_temperature": 2.0}']
    default_results, default_print = by_config['{"toy_verbose": true}']
    assert warm_print["backend"] == default_print["backend"] == "toy"
    assert warm_print["backend_toy_temperature"] == 2.0
    assert "backend_toy_temperature" not in default_print  # the default: as before it existed
    assert "backend_toy_verbose" not in default_print  # declared as not changing answers
    # The setting the toy cannot honour is said beside the results; the default is not.
    note = "--batch-size 3 is not used by --backend toy: the toy answers one item at a time"
    assert note in default_results["tasks"]["toy"]["notes"]
    assert not any("batch-size" in n for n in warm_results["tasks"]["toy"]["notes"])


def test_the_toy_flag_is_refused_with_another_backend(toy_backend, toy_task, capsys, tmp_path):
    from tests.test_cli import assert_one_line_error

    code, _, err = _run(capsys, tmp_path, "--toy-temperature", "2")
    assert_one_line_error(
        code, err, "--toy-temperature does not apply to --backend hf (it is for --backend toy)"
    )
    assert SEEN == []


def test_a_value_out_of_the_declared_range_is_refused(toy_backend, capsys, tmp_path):
    code, _, err = _run(capsys, tmp_path, "--backend", "toy", "--toy-temperature", "-1")
    assert code == 2 and "Traceback" not in err and "--toy-temperature" in err
    with pytest.raises(backends.UserError, match=r"^--toy-temperature -1.0: must be >= 0$"):
        RunnerOptions(backend="toy", backend_options={"toy_temperature": -1.0})
    with pytest.raises(backends.UserError, match=r"^--toy-temperature 'warm': expected float$"):
        RunnerOptions(backend="toy", backend_options={"toy_temperature": "warm"})
