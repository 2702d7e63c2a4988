from __future__ import annotations

import sys
import textwrap

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import UserError


def test_groups_expand_to_members_in_order(toy_task):
    assert registry.resolve(["toy-group"]) == ["toy"]
    assert registry.resolve(["toy", "toy-group"]) == ["toy"]  # no duplicates


def test_unknown_task_lists_close_matches(toy_task):
    with pytest.raises(UserError) as err:
        registry.resolve(["toyy"])
    msg = str(err.value)
    assert "unknown task 'toyy'" in msg and "toy" in msg.split("Did you mean:")[1]


def test_unknown_task_without_close_match():
    with pytest.raises(UserError, match="qwenvl-eval tasks"):
        registry.resolve(["zzzzzzzzzz"])


def test_registering_two_classes_under_one_name_fails(toy_task):
    class Other(toy_task):
        pass

    with pytest.raises(ValueError, match="registered twice"):
        registry.register_task("toy")(Other)


def test_entry_point_plugin_registers_a_task(tmp_path, monkeypatch):
    """A third-party package announces its tasks in the `qwenvl_eval.tasks` entry-point group."""
    pkg = tmp_path / "qe_plugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent("""
        from qwenvl_eval.registry import register_task
        from tests.fakes import ToyTask

        @register_task("plugin_toy", group=("plugin-group",))
        class PluginToy(ToyTask):
            pass
    """)
    )
    dist = tmp_path / "qe_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: qe-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[qwenvl_eval.tasks]\ndemo = qe_plugin_demo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        assert registry.resolve(["plugin-group"]) == ["plugin_toy"]
        assert registry.get_task("plugin_toy").name == "plugin_toy"
    finally:
        registry._TASKS.pop("plugin_toy", None)
        registry._GROUPS.pop("plugin-group", None)
        sys.modules.pop("qe_plugin_demo", None)


def test_broken_plugin_is_a_user_error(tmp_path, monkeypatch):
    dist = tmp_path / "qe_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: qe-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[qwenvl_eval.tasks]\nbroken = qe_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", False)
    with pytest.raises(UserError, match="'broken'.*failed to load"):
        registry.resolve(["anything"])
    monkeypatch.setattr(registry, "_loaded", True)
