"""Atomic writes leave no temporary file and give the file the mode a plain open() would."""

from __future__ import annotations

import stat

from qwenvl_eval.results.atomic import write_json_atomic, write_text_atomic


def test_atomic_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    # Under the process's umask (022 here and in CI: 0644, where mkstemp alone gives 0600).
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = tmp_path / "results.md"
    write_text_atomic(target, "# run\n")
    write_json_atomic(tmp_path / "results.json", {"a": 1})
    want = stat.S_IMODE(plain.stat().st_mode)
    assert stat.S_IMODE(target.stat().st_mode) == want
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == want
    assert target.read_text() == "# run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "results.json", "results.md"]
