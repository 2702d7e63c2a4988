"""The predictions store under hand-edited, torn, copied and unwritable files: every valid
answer is kept, every refused line is reported with its file and line number."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from qwenvl_eval.errors import StorageError, UserError, storage_error
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.types import ItemResult

FP = {"model_path": "/m", "seed": 1}


def item(i: int, error: str | None = None) -> ItemResult:
    return ItemResult(
        id=f"q{i}",
        request_hash="h",
        output=f"out {i}",
        answer=f"a{i}",
        score={"acc": 1.0},
        error=error,
    )


def store_with(tmp_path, n: int) -> PredictionStore:
    store = PredictionStore(tmp_path)
    store.check_fingerprint(FP, resume=True)
    for i in range(n):
        store.append("t", item(i))
    store.close()
    return store


def insert_line(path, at: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(at, text)
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    "bad, why",
    [
        ("garbage {{{\n", "not a JSON line"),
        ('["a", "list"]\n', "expected a JSON object, got list"),
        ('{"id": "q9", "prompt_hash": "h", "score": "1.0"}\n', "field 'score'"),
        ('{"id": "q9", "prompt_hash": 5}\n', "field 'prompt_hash'"),
        ("[" * 100_000 + "]" * 100_000 + "\n", "not a JSON line"),  # deeper than recursion
        ('{"id": ' + "9" * 5000 + "}\n", "not a JSON line"),  # over int's 4300 digits
    ],
)
def test_bad_line_in_the_middle_is_reported_and_every_valid_line_kept(tmp_path, caplog, bad, why):
    store = store_with(tmp_path, 5)
    path = store.predictions_path("t")
    insert_line(path, 2, bad)
    fresh = PredictionStore(tmp_path)
    fresh.check_fingerprint(FP, resume=True)
    loaded = fresh.load("t")
    assert list(loaded) == ["q0", "q1", "q2", "q3", "q4"]  # nothing after the bad line lost
    (problem,) = fresh.problems
    assert problem.startswith(f"{path}, line 3: ") and why in problem
    assert path.read_text().count("\n") == 6  # load never deletes: the file is untouched
    # finalize sets the bad line aside (with its line number), keeps every answer
    fresh.finalize("t", [loaded[f"q{i}"] for i in range(5)])
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == [
        f"q{i}" for i in range(5)
    ]
    (aside,) = [json.loads(x) for x in fresh.rejected_path("t").read_text().splitlines()]
    assert aside["line"] == 3 and aside["raw"] == bad.rstrip("\n") and why in aside["why"]


def test_strict_load_names_file_line_item_and_field(tmp_path):
    store = store_with(tmp_path, 3)
    path = store.predictions_path("t")
    insert_line(
        path,
        1,
        json.dumps({"id": "q7", "prompt_hash": "h", "run": store.run_id, "score": "high"}) + "\n",
    )
    with pytest.raises(UserError) as err:
        store.load("t", strict=True)
    assert str(err.value) == (
        f"{path}, line 2: item q7, field 'score': expected an object of numbers, got str"
    )


def test_only_a_torn_last_line_is_dropped(tmp_path):
    store = store_with(tmp_path, 3)
    path = store.predictions_path("t")
    with open(path, "a") as f:
        f.write('{"id": "q3", "prompt_ha')  # killed mid-write
    assert list(PredictionStore(tmp_path).load("t")) == ["q0", "q1", "q2"]
    assert path.read_text().count("\n") == 3 and path.read_text().endswith("}\n")


def test_complete_last_line_without_newline_is_kept_and_later_lines_follow_it(tmp_path):
    store = store_with(tmp_path, 2)
    path = store.predictions_path("t")
    path.write_text(path.read_text().rstrip("\n"))
    again = PredictionStore(tmp_path)
    again.check_fingerprint(FP, resume=True)
    assert list(again.load("t")) == ["q0", "q1"]
    again.append("t", item(2))
    again.close()
    assert list(PredictionStore(tmp_path).load("t")) == ["q0", "q1", "q2"]


def test_line_copied_from_another_run_is_refused_and_reported(tmp_path):
    other = store_with(tmp_path / "other", 1)
    store = PredictionStore(tmp_path / "mine")
    store.check_fingerprint(FP | {"seed": 2}, resume=True)
    store.append("t", item(1))
    store.close()
    path = store.predictions_path("t")
    with open(path, "a") as f:
        f.write(other.predictions_path("t").read_text())  # q0, made by another config
    loaded = store.load("t")
    assert list(loaded) == ["q1"]
    (problem,) = store.problems
    assert f"{path}, line 2: item q0, field 'run': written by another run" in problem
    assert other.run_id in problem and store.run_id in problem


def test_finalize_keeps_answers_outside_the_current_items(tmp_path):
    # --limit 12 then --limit 4: the 8 other answers stay in the file
    store_with(tmp_path, 12)
    again = PredictionStore(tmp_path)
    again.check_fingerprint(FP, resume=True)
    done = again.load("t")
    again.finalize("t", [done[f"q{i}"] for i in (3, 2, 1, 0)])
    ids = [json.loads(x)["id"] for x in again.predictions_path("t").read_text().splitlines()]
    assert ids == ["q3", "q2", "q1", "q0", *[f"q{i}" for i in range(4, 12)]]
    assert len(PredictionStore(tmp_path).load("t")) == 12


def test_stale_temp_files_are_cleaned_when_the_run_dir_is_locked(tmp_path):
    store = store_with(tmp_path, 1)
    stale = [".results.json.ab12cd_e", ".t.predictions.jsonl.x9y8z7w6", ".run.json.k2j3h4g5"]
    keep = ["t.predictions.jsonl", ".lockless", "notes.results.json.txt"]
    for name in stale + keep[1:]:
        (tmp_path / name).write_text("x")
    store.lock()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".lock", "run.json", "notes.results.json.txt", ".lockless", "t.predictions.jsonl"]
    )
    store.unlock()


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    first = PredictionStore(tmp_path)
    first.lock()
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from qwenvl_eval.results.store import PredictionStore
        from qwenvl_eval.errors import UserError
        try:
            PredictionStore(Path({str(tmp_path)!r})).lock()
        except UserError as e:
            print(e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == (
        f"{tmp_path}: another run (pid {os.getpid()}) is writing into this run directory; "
        "wait for it to finish or use another --output-dir"
    )
    first.unlock()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == ""  # free again


def test_disk_full_on_append_is_one_line_and_keeps_what_was_written(tmp_path):
    store = store_with(tmp_path, 2)
    path = store.predictions_path("t")
    kept = path.read_bytes()
    full = tmp_path / "full"
    full.mkdir()
    (full / "t.predictions.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    writer = PredictionStore(full)
    with pytest.raises(StorageError) as err:
        writer.append("t", item(3))
    assert str(err.value) == (
        f"{full / 't.predictions.jsonl'}: writing failed: the disk is full; "
        "answers written before this point are kept"
    )
    assert err.value.exit_code == 1
    assert path.read_bytes() == kept


def test_file_size_limit_on_finalize_keeps_the_old_file(tmp_path):
    store_with(tmp_path, 30)
    code = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from qwenvl_eval.results.store import PredictionStore
        from qwenvl_eval.errors import UserError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
        s = PredictionStore(Path({str(tmp_path)!r}))
        try:
            s.finalize("t", list(s.load("t").values()))
        except UserError as e:
            print(e, e.exit_code)
        """
    )
    before = (tmp_path / "t.predictions.jsonl").read_bytes()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == (
        f"{tmp_path / 't.predictions.jsonl'}: writing failed: the file is larger than allowed "
        "(file size limit); answers written before this point are kept 1"
    )
    assert (tmp_path / "t.predictions.jsonl").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".t.")] == []  # no temp


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.EROFS, "the file system is read-only"),
        (errno.ENOSPC, "the disk is full"),
        (errno.EFBIG, "the file is larger than allowed (file size limit)"),
    ],
)
def test_storage_errors_name_the_file_and_the_cause(code, words):
    exc = storage_error("/r/results.json", OSError(code, os.strerror(code)))
    assert str(exc) == (
        f"/r/results.json: writing failed: {words}; answers written before this point are kept"
    )


def write_dummy_checkpoint(folder) -> None:
    (folder / "config.json").write_text("{}")


def test_stale_tiny_build_folders_are_cleared_on_the_next_build(tmp_path, monkeypatch):
    from qwenvl_eval.model.presets import Preset, build_tiny

    monkeypatch.setenv("QWENVL_EVAL_CACHE", str(tmp_path))
    models = tmp_path / "models"
    (models / ".tiny-qwen2-vl-k1ll3d").mkdir(parents=True)  # a build killed by kill -9
    (models / ".tiny-qwen2-vl-k1ll3d" / "model.safetensors").write_bytes(b"\0" * 100)
    preset = Preset("tiny-x", "qwen2-vl", tiny=f"{__name__}:write_dummy_checkpoint")
    dest, revision = build_tiny(preset)
    assert dest == models / "tiny-x-v1" and revision == "tiny-v1"
    assert sorted(p.name for p in models.iterdir()) == [".build.lock", "tiny-x-v1"]


def test_answer_to_another_prompt_is_set_aside_when_replaced(tmp_path):
    store = store_with(tmp_path, 2)  # q0, q1 answered for prompt "h"
    newer = ItemResult(id="q1", request_hash="h2", output="new", answer="n", score={"acc": 0.0})
    failed_then_ok = [item(5, error="image could not be decoded"), item(5)]
    for it in (newer, *failed_then_ok):
        store.append("t", it)
    store.finalize("t", [store.load("t")[i] for i in ("q0", "q1", "q5")])
    rows = [json.loads(x) for x in store.predictions_path("t").read_text().splitlines()]
    assert [(r["id"], r["prompt_hash"], r.get("error")) for r in rows] == [
        ("q0", "h", None),
        ("q1", "h2", None),
        ("q5", "h", None),
    ]
    (aside,) = [json.loads(x) for x in store.rejected_path("t").read_text().splitlines()]
    assert aside["line"] == 2 and json.loads(aside["raw"])["output"] == "out 1"
    assert aside["why"] == "item q1: superseded by line 3 (another prompt or generation setting)"


def test_text_utf8_cannot_hold_is_stored_escaped_not_a_crash(tmp_path):
    store = PredictionStore(tmp_path)
    store.check_fingerprint(FP, resume=True)
    odd = ItemResult(id="q1", request_hash="h", output="a \udc80 b", answer=None, score={})
    store.append("t", odd)
    store.close()
    assert store.load("t")["q1"].output == "a \udc80 b"


FULL_THEN_READ_ONLY = """
import subprocess, sys
from pathlib import Path
from qwenvl_eval.errors import StorageError
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.types import ItemResult

root = Path(sys.argv[1])
store = PredictionStore(root / "run")
store.check_fingerprint({"model_path": "/m"}, resume=True)
written = 0
try:
    for i in range(10_000):
        store.append("t", ItemResult(f"q{i}", "h", "x" * 200, "a", {"acc": 1.0}))
        written += 1
    store.close()
except StorageError as e:
    print("FULL", written, e, e.exit_code)
store = PredictionStore(root / "run")
kept = store.load("t")
print("KEPT", len(kept), sorted(kept) == sorted(f"q{i}" for i in range(len(kept))))
subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
try:
    store.finalize("t", list(kept.values()))
except StorageError as e:
    print("RO", e, e.exit_code)
print("AFTER", len(PredictionStore(root / "run").load("t")))
"""


def test_real_full_disk_and_read_only_file_system(tmp_path):
    """A 64 KiB tmpfs in a private mount namespace (skipped where unshare is not allowed)."""
    import shutil

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "script.py"
    script.write_text(FULL_THEN_READ_ONLY)
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user and mount namespaces are not allowed here")
    cmd = f"mount -t tmpfs -o size=64k tmpfs {mnt} && {sys.executable} {script} {mnt}"
    out = subprocess.run(
        ["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=120
    )
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert set(lines) == {"FULL", "KEPT", "RO", "AFTER"}, out.stderr
    written, _ = lines["FULL"].split(" ", 1)
    path = mnt / "run" / "t.predictions.jsonl"
    assert lines["FULL"].endswith(
        f"{path}: writing failed: the disk is full; answers written before this point are kept 1"
    )
    kept, in_order = lines["KEPT"].split()
    assert int(kept) >= int(written) > 100 and in_order == "True"
    assert lines["RO"] == (
        f"{path}: writing failed: the file system is read-only; "
        "answers written before this point are kept 1"
    )
    assert lines["AFTER"] == kept  # nothing lost
