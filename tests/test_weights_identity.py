"""A checkpoint folder rewritten in place is other weights: its content identity
(`model.weights_id`) enters the run's identity, so the same command into the same output
directory computes every answer again, says so in one line, and never reuses the old ones."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from qwenvl_eval import app
from qwenvl_eval.config import RunConfig
from qwenvl_eval.model import weights as W
from qwenvl_eval.model.presets import PRESETS, build_tiny
from qwenvl_eval.results.runs import load_run
from qwenvl_eval.results.store import PredictionStore


def _folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_same_content_same_id_and_any_byte_changes_it(tmp_path):
    cache = tmp_path / "cache.json"
    a = _folder(tmp_path / "a", {"model.safetensors": b"x" * 1000, "config.json": b"{}"})
    b = _folder(tmp_path / "b", {"model.safetensors": b"x" * 1000, "config.json": b"{}"})
    assert W.weights_id(a, cache) == W.weights_id(b, cache)
    (b / "model.safetensors").write_bytes(b"x" * 999 + b"y")
    assert W.weights_id(a, cache) != W.weights_id(b, cache)
    assert W.weights_id(tmp_path / "nothing", cache) is None


def test_hidden_files_and_subfolders_are_not_the_checkpoint(tmp_path):
    cache = tmp_path / "cache.json"
    folder = _folder(tmp_path, {"model.safetensors": b"w"})
    first = W.weights_id(folder, cache)
    (folder / ".cache").mkdir()
    (folder / ".cache" / "download.lock").write_bytes(b"1")
    (folder / "checkpoint-500").mkdir()
    (folder / "checkpoint-500" / "model.safetensors").write_bytes(b"old")
    assert W.weights_id(folder, cache) == first


def test_cached_hash_is_reused_until_the_file_changes(tmp_path, monkeypatch):
    cache = tmp_path / "cache.json"
    folder = _folder(tmp_path, {"model.safetensors": b"a" * 4096})
    hashed: list[str] = []
    real = W.file_sha256
    monkeypatch.setattr(W, "file_sha256", lambda p: hashed.append(p.name) or real(p))
    first = W.weights_id(folder, cache)
    assert hashed == ["model.safetensors"]
    assert W.weights_id(folder, cache) == first
    assert hashed == ["model.safetensors"]  # the second call only stat()ed the file
    # Same size, and the old mtime put back (cp -p / rsync -a do that): still seen.
    path = folder / "model.safetensors"
    st = path.stat()
    path.write_bytes(b"b" * 4096)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert W.weights_id(folder, cache) != first
    assert hashed == ["model.safetensors"] * 2


def test_a_damaged_cache_is_rebuilt(tmp_path):
    cache = tmp_path / "cache.json"
    folder = _folder(tmp_path, {"model.safetensors": b"a" * 10})
    expected = W.weights_id(folder, tmp_path / "other.json")
    junks = ("not json", "[]", '{"version": 1, "files": []}', '{"version": 1, "files": {"x": 1}}')
    for junk in junks:
        cache.write_text(junk)
        assert W.weights_id(folder, cache) == expected
    assert json.loads(cache.read_text())["version"] == 1


def test_a_cache_that_cannot_be_written_costs_time_not_correctness(tmp_path):
    folder = _folder(tmp_path, {"model.safetensors": b"a" * 10})
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    assert W.weights_id(folder, blocked / "cache.json") == W.weights_id(folder, tmp_path / "c.json")


# -- a real tiny checkpoint, evaluated, rewritten in place, evaluated again -------------------


@pytest.fixture()
def candidate(tmp_path: Path) -> Path:
    built, _ = build_tiny(PRESETS["tiny-qwen2-vl"])
    dest = tmp_path / "candidate"
    shutil.copytree(built, dest)
    return dest


def _perturb_in_place(folder: Path) -> None:
    """What a training job does: the same file name, new weights."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(path)
    name = next(k for k in sorted(tensors) if tensors[k].is_floating_point())
    tensors[name] = tensors[name] + 0.5
    save_file(tensors, path, metadata={"format": "pt"})


def _config(candidate: Path, out: Path) -> RunConfig:
    return RunConfig(
        model=str(candidate), tasks=["vqav2"], data_dir="builtin", limit=3, output_dir=out
    )


def _runs(path: Path) -> set[str]:
    return {json.loads(line)["run"] for line in path.read_text().splitlines()}


def test_rewritten_checkpoint_recomputes_every_answer_with_one_notice(candidate, tmp_path, caplog):
    config = _config(candidate, tmp_path / "out")
    first = app.run(config)
    preds = first.run_dir / "vqav2.predictions.jsonl"
    old_runs = _runs(preds)
    old_id = first.results["model"]["weights_id"]
    assert old_id == W.weights_id(candidate)

    _perturb_in_place(candidate)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = app.run(config)
    assert second.run_dir == first.run_dir  # the same command, the same directory
    counts = second.results["tasks"]["vqav2"]["counts"]
    assert counts["resumed"] == 0 and counts["items"] == 3
    notices = [r.getMessage() for r in caplog.records if "other weights" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert old_id[:12] in notices[0] and "computed again" in notices[0]
    assert not [r for r in caplog.records if "line " in r.getMessage()]  # no line-by-line noise
    new_id = second.results["model"]["weights_id"]
    assert new_id == W.weights_id(candidate) != old_id
    assert load_run(second.run_dir).results["model"]["weights_id"] == new_id  # schema-valid
    assert _runs(preds).isdisjoint(old_runs)  # no old answer kept as an answer
    side = first.run_dir / "vqav2.rejected.jsonl"
    aside = [json.loads(x) for x in side.read_text().splitlines()]
    assert len(aside) == 3 and all("other weights" in a["why"] for a in aside)

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = app.run(config)  # unchanged weights: everything is resumed
    assert third.results["tasks"]["vqav2"]["counts"]["resumed"] == 3
    assert not [r for r in caplog.records if "other weights" in r.getMessage()]


def test_a_task_not_run_since_the_weights_changed_is_recomputed_quietly_later(
    candidate, tmp_path, caplog
):
    config = _config(candidate, tmp_path / "out")
    config.tasks = ["vqav2", "okvqa"]
    first = app.run(config)
    _perturb_in_place(candidate)
    config.tasks = ["vqav2"]
    app.run(config)
    config.tasks = ["okvqa"]  # its file still holds the first weights' answers
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        later = app.run(config)
    assert later.results["tasks"]["okvqa"]["counts"]["resumed"] == 0
    assert not [r for r in caplog.records if "written by another run" in r.getMessage()]
    assert _runs(later.run_dir / "okvqa.predictions.jsonl") == _runs(
        first.run_dir / "vqav2.predictions.jsonl"
    )  # both files now hold answers of the rewritten weights only


def test_answers_from_before_weights_were_fingerprinted_are_not_reused(candidate, tmp_path, caplog):
    config = _config(candidate, tmp_path / "out")
    first = app.run(config)
    run_json = first.run_dir / "run.json"
    saved = json.loads(run_json.read_text())
    saved.pop("weights_id")  # as an older qwenvl-eval wrote it
    run_json.write_text(json.dumps(saved))
    store = PredictionStore(first.run_dir)
    rows = [json.loads(x) for x in store.predictions_path("vqav2").read_text().splitlines()]
    from qwenvl_eval.types import stable_hash

    for row in rows:
        row["run"] = stable_hash(saved)[:16]
    store.predictions_path("vqav2").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        again = app.run(config)
    assert again.results["tasks"]["vqav2"]["counts"]["resumed"] == 0
    assert any("without a fingerprint of the weights" in r.getMessage() for r in caplog.records)


def test_a_served_model_has_no_weights_id(tmp_path):
    assert app.checkpoint_id("openai", tmp_path) is None
    (tmp_path / "config.json").write_text("{}")
    assert app.checkpoint_id("hf", tmp_path) == W.weights_id(tmp_path)


def test_the_cli_says_it_in_one_line(candidate, tmp_path):
    """The notice as a user sees it: a real process, its stderr (pytest's log capture would
    otherwise take the warning before it reaches stderr)."""
    import subprocess
    import sys

    out = tmp_path / "out"
    app.run(_config(candidate, out))
    _perturb_in_place(candidate)
    argv = ["run", "--model", str(candidate), "--tasks", "vqav2", "--data-dir", "builtin"]
    argv += ["--limit", "3", "--output-dir", str(out)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *argv], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "other weights" in ln]
    assert len(lines) == 1 and "computed again" in lines[0] and "Traceback" not in proc.stderr
