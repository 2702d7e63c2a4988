"""Fault runs of the real CLI on the tiny model and the bundled data: signals at chosen
points, a second concurrent run, a file size limit, an over-long question, broken model
folders. Each asserts the message, the exit code, and that nothing finished was lost."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import run_cli as invoke_cli

ARGS = ["run", "--model", "tiny-qwen2-vl", "--data-dir", "builtin", "--batch-size", "1"]
ENV = os.environ | {"COLUMNS": "200"}


def start(out: Path, *extra: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "qwenvl_eval", *ARGS, "--output-dir", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        **kw,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=600)
    return proc.returncode, " ".join(err.split())


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_for_lines(out: Path, name: str, n: int, proc: subprocess.Popen) -> list[dict]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(out.glob(f"*/{name}.predictions.jsonl"))
        if files:
            lines = files[0].read_text().splitlines()
            if len(lines) >= n:
                return [json.loads(x) for x in lines[:n]]
        time.sleep(0.02)
    raise AssertionError(f"the run ended before {n} answers of {name} were written")


def error_tail(err: str) -> str:
    return err[err.find("error: ") :]


@pytest.mark.parametrize(
    "sig, code, task, point",
    [
        # mid-task, while answers are being appended
        (signal.SIGINT, 130, "refcoco", "refcoco_val"),
        # between tasks: the first task finalized, the second under way
        (signal.SIGTERM, 143, "vqav2,refcoco", "refcoco_val"),
    ],
)
def test_signal_stops_keeps_answers_and_tells_how_to_resume(tmp_path, sig, code, task, point):
    out = tmp_path / "out"
    proc = start(out, "--tasks", task, "--limit", "24")
    before = wait_for_lines(out, point, 3, proc)
    proc.send_signal(signal.SIGSTOP)  # paused at this point (holding its lock) until SIGCONT
    if sig == signal.SIGTERM:
        # a second run into the same directory is refused while the first holds it
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "qwenvl_eval",
                *ARGS,
                "--output-dir",
                str(out),
                "--tasks",
                task,
                "--limit",
                "24",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=ENV,
        )
        (run_dir,) = out.iterdir()
        assert second.returncode == 2
        assert error_tail(" ".join(second.stderr.split())) == (
            f"error: {run_dir}: another run (pid {proc.pid}) is writing into this run "
            "directory; wait for it to finish or use another --output-dir"
        )
    proc.send_signal(sig)
    proc.send_signal(signal.SIGCONT)
    rc, err = finish(proc)
    (run_dir,) = out.iterdir()
    assert rc == code, err
    assert "Traceback" not in err
    name = signal.Signals(sig).name
    assert f"interrupted ({name}): the answers written so far are kept in {run_dir}; " in err
    assert f"to resume, run the same command again: qwenvl-eval {' '.join(ARGS[:])}" in err
    saved = rows(run_dir / f"{point}.predictions.jsonl")
    assert saved[:3] == before and all(r["prompt_hash"] for r in saved)
    assert not (run_dir / "results.json").exists()

    resumed = start(out, "--tasks", task, "--limit", "24")
    rc, err = finish(resumed)
    assert rc == 0, err
    results = json.loads((run_dir / "results.json").read_text())
    counts = results["tasks"][point]["counts"]
    assert counts["items"] == 24 and counts["errors"] == 0 and counts["resumed"] >= len(saved)
    final = {r["id"]: r for r in rows(run_dir / f"{point}.predictions.jsonl")}
    assert all(final[r["id"]] == r for r in saved)  # nothing written before the signal lost
    if "," in task:
        assert results["tasks"]["vqav2"]["counts"]["resumed"] == 24
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []


def test_sigkill_leaves_torn_line_and_temp_files_that_the_next_run_clears(tmp_path):
    out = tmp_path / "out"
    proc = start(out, "--tasks", "refcoco", "--limit", "16")
    before = wait_for_lines(out, "refcoco_val", 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    (run_dir,) = out.iterdir()
    path = run_dir / "refcoco_val.predictions.jsonl"
    with open(path, "a") as f:  # what a kill during a write or an atomic rename leaves
        f.write('{"id": "torn", "prompt_h')
    for name in (".results.json.a1b2c3d4", ".refcoco_val.predictions.jsonl.x1y2z3w4"):
        (run_dir / name).write_text("partial")
    rc, err = finish(start(out, "--tasks", "refcoco", "--limit", "16"))
    assert rc == 0, err
    final = {r["id"]: r for r in rows(path)}
    assert len(final) == 16 and all(final[r["id"]] == r for r in before)
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == [".lock"]


def test_file_size_limit_is_one_line_exit_1_and_the_rerun_finishes(tmp_path):
    import resource

    from qwenvl_eval.model.presets import resolve_model

    resolve_model("tiny-qwen2-vl")  # build the checkpoint outside the limit

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))

    out = tmp_path / "out"
    rc, err = finish(start(out, "--tasks", "refcoco", "--limit", "8", preexec_fn=limit))
    (run_dir,) = out.iterdir()
    path = run_dir / "refcoco_val.predictions.jsonl"
    assert rc == 1, err
    assert error_tail(err) == (
        f"error: {path}: writing failed: the file is larger than allowed (file size limit); "
        "answers written before this point are kept"
    )
    saved = rows_lenient(path)
    assert len(saved) >= 3
    rc, err = finish(start(out, "--tasks", "refcoco", "--limit", "8"))
    assert rc == 0, err
    final = {r["id"]: r for r in rows(path)}
    assert len(final) == 8 and all(final[r["id"]] == r for r in saved)


def rows_lenient(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # the line the limit cut
            out.append(json.loads(line))
    return out


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code, _, err = invoke_cli(argv, capsys)
    err = " ".join(err.split())
    assert "Traceback" not in err
    return code, err


def test_overlong_question_is_an_error_item_and_the_rest_are_scored(tmp_path, capsys):
    from qwenvl_eval.tasks.data.locate import resolve_data_root

    root = tmp_path / "data"
    shutil.copytree(resolve_data_root("builtin") / "vqav2", root / "vqav2")
    qpath = root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"
    data = json.loads(qpath.read_text())
    data["questions"][1]["question"] = "why " * 25_000  # 100,000 characters
    qpath.write_text(json.dumps(data))
    out = tmp_path / "out"
    argv = [
        "run",
        "--model",
        "tiny-qwen2-vl",
        "--tasks",
        "vqav2",
        "--data-dir",
        str(root),
        "--limit",
        "4",
        "--output-dir",
        str(out),
    ]
    code, err = run_cli(argv, capsys)
    assert code == 0, err
    (run_dir,) = out.iterdir()
    items = rows(run_dir / "vqav2.predictions.jsonl")
    assert len(items) == 4
    bad = [r for r in items if r.get("error")]
    assert [r["id"] for r in bad] == [str(data["questions"][1]["question_id"])]
    assert bad[0]["error"].startswith("prompt too long: ")
    assert bad[0]["error"].endswith(" new tokens is over the model's maximum length of 4096")
    assert all(r["output"] is not None for r in items if not r.get("error"))
    counts = json.loads((run_dir / "results.json").read_text())["tasks"]["vqav2"]["counts"]
    assert counts == {"items": 4, "errors": 1, "resumed": 0}


def _tiny_copy(tmp_path: Path, name: str) -> Path:
    from qwenvl_eval.model.presets import resolve_model

    dest = tmp_path / name
    shutil.copytree(resolve_model("tiny-qwen2-vl").path, dest)
    return dest


def _no_tokenizer(d: Path) -> None:
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (d / f).unlink()


def _wrong_hidden_size(d: Path) -> None:
    cfg = json.loads((d / "config.json").read_text())
    text = cfg.get("text_config", cfg)
    text["hidden_size"] *= 2
    (d / "config.json").write_text(json.dumps(cfg))


def _truncated_weights(d: Path) -> None:
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


@pytest.mark.parametrize(
    "break_it, message",
    [
        (
            _no_tokenizer,
            "no tokenizer in the model folder (expected tokenizer.json or "
            "vocab.json + merges.txt or tokenizer.model)",
        ),
        (_wrong_hidden_size, "cannot load the model (the weights do not match config.json: "),
        (_truncated_weights, "cannot load the model (SafetensorError: "),
    ],
)
def test_broken_model_folder_is_one_line_exit_2(tmp_path, capsys, break_it, message):
    model = _tiny_copy(tmp_path, "broken")
    break_it(model)
    code, err = run_cli(
        [
            "run",
            "--model",
            str(model),
            "--tasks",
            "vqav2",
            "--data-dir",
            "builtin",
            "--limit",
            "2",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert code == 2
    assert err.startswith(f"error: {model}: {message}"), err
    assert "LOAD REPORT" not in err and not (tmp_path / "out").exists()
