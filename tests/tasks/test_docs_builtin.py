"""The bundled mini sets of the captioning, document and ScienceQA tasks are what their
generator writes (deterministic, nothing stale or hand-edited)."""

from __future__ import annotations

from qwenvl_eval.tasks.data.locate import builtin_root
from scripts.builtin.docs_captions_sqa import BUILDERS, main


def _files(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_builtin_sets_match_a_fresh_build(tmp_path):
    main(tmp_path)
    for name in BUILDERS:
        fresh, bundled = _files(tmp_path / name), _files(builtin_root() / name)
        assert fresh.keys() == bundled.keys(), name
        assert fresh == bundled, name
    total = sum(len(b) for name in BUILDERS for b in _files(tmp_path / name).values())
    assert total < 1_000_000  # tiny images: the package stays small
