"""CLI behaviour for user mistakes: one line naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qwenvl_eval import cli
from tests.fakes import run_cli


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    text = " ".join(err.split())  # rich may wrap long lines
    assert text.startswith("error:")
    for needle in needles:
        assert needle in text, (needle, text)


def test_unknown_task(capsys, toy_task):
    code, _, err = run_cli(["run", "--model", "tiny-qwen2-vl", "--tasks", "toyy"], capsys)
    assert_one_line_error(code, err, "unknown task 'toyy'", "toy")


@pytest.fixture()
def toy_root(tmp_path):
    from tests.fakes import write_toy_data

    return str(write_toy_data(tmp_path / "data"))


def test_unknown_model(capsys, toy_task, toy_root):
    code, _, err = run_cli(
        ["run", "--model", "tiny-qwen2vl", "--tasks", "toy", "--data-dir", toy_root], capsys
    )
    assert_one_line_error(code, err, "unknown model 'tiny-qwen2vl'", "tiny-qwen2-vl")


def test_model_folder_without_config(capsys, toy_task, tmp_path, toy_root):
    code, _, err = run_cli(
        ["run", "--model", str(tmp_path), "--tasks", "toy", "--data-dir", toy_root], capsys
    )
    assert_one_line_error(code, err, str(tmp_path / "config.json"), "not found")


def test_hub_model_not_in_local_cache(capsys, toy_task, tmp_path, monkeypatch, toy_root):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    code, _, err = run_cli(
        ["run", "--model", "qwen2-vl-2b", "--tasks", "toy", "--data-dir", toy_root], capsys
    )
    assert_one_line_error(code, err, "Qwen/Qwen2-VL-2B-Instruct", "local Hugging Face cache")


def test_missing_data_dir(capsys, toy_task, tmp_path):
    missing = tmp_path / "nope"
    code, _, err = run_cli(
        ["run", "--model", "tiny-qwen2-vl", "--tasks", "toy", "--data-dir", str(missing)], capsys
    )
    assert_one_line_error(code, err, str(missing), "data directory not found")


def test_no_data_dir_and_no_default_never_falls_back_to_builtin(
    capsys, toy_task, tmp_path, monkeypatch
):
    monkeypatch.setenv("QWENVL_EVAL_DATA", str(tmp_path / "absent"))
    code, _, err = run_cli(["run", "--model", "tiny-qwen2-vl", "--tasks", "toy"], capsys)
    assert_one_line_error(code, err, str(tmp_path / "absent"), "--data-dir builtin")


def test_unreadable_annotation_file(capsys, toy_task, tmp_path):
    from tests.fakes import write_toy_data

    root = write_toy_data(tmp_path / "data")
    (root / "toy" / "items.json").write_text("{not json")
    code, _, err = run_cli(
        ["run", "--model", "tiny-qwen2-vl", "--tasks", "toy", "--data-dir", str(root)], capsys
    )
    assert_one_line_error(code, err, "items.json", "unreadable JSON")


def test_bad_gen_kwargs(capsys, toy_task):
    code, _, err = run_cli(
        ["run", "--model", "tiny-qwen2-vl", "--tasks", "toy", "--gen-kwargs", "max_new_tokens"],
        capsys,
    )
    assert_one_line_error(code, err, "--gen-kwargs", "key=value")


def test_models_lists_presets(capsys, monkeypatch):
    wide_console(monkeypatch)
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0
    for name in ("tiny-qwen2-vl", "tiny-qwen2.5-vl", "tiny-qwen3-vl", "qwen2-vl-2b"):
        assert name in out


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["data", "check", "--help"]])
def test_module_entry_point_has_help(argv):
    proc = subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "Usage" in proc.stdout


def wide_console(monkeypatch) -> None:
    from rich.console import Console

    # A table wider than the terminal would wrap its cells across lines.
    monkeypatch.setattr(cli, "out", Console(width=250))


def test_tasks_lists_split_metrics_prompts_and_groups(capsys, monkeypatch):
    wide_console(monkeypatch)
    code, out, _ = run_cli(["tasks"], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if "│ refcoco_testA " in line)
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[0] == "refcoco_testA" and cells[1] == "testA"
    assert cells[2] == "acc@0.5, miou"
    assert set(cells[3].split(", ")) >= {"qwen-vl", "qwen2-vl", "qwen2.5-vl", "qwen3-vl"}
    assert "paper-table6" in cells[4]


def test_data_check_on_builtin(capsys, monkeypatch):
    wide_console(monkeypatch)
    code, out, _ = run_cli(["data", "check", "--tasks", "vqav2", "--data-dir", "builtin"], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if "│ vqav2 " in line)
    assert "partial" in row and "214354" in row
