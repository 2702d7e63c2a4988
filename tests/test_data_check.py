from __future__ import annotations

import shutil

import pytest

from qwenvl_eval import registry
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.data.locate import builtin_root


@pytest.mark.parametrize("name", registry.task_names())
def test_every_task_has_a_builtin_mini_set(name):
    (row,) = check_tasks([name], "builtin")
    assert row.status in ("ok", "partial"), row.detail
    assert row.items is not None and row.items >= 32


def test_missing_files_are_named_with_their_exact_path(tmp_path):
    shutil.copytree(builtin_root() / "vqav2", tmp_path / "vqav2")
    task = registry.get_task("vqav2")
    expected = task.dataset.expected(tmp_path)
    victim = next(p for p in expected if p.is_file())
    victim.unlink()
    (row,) = check_tasks(["vqav2"], str(tmp_path))
    assert row.status == "missing"
    assert str(victim) in row.detail


def test_fewshot_check_names_the_missing_train_split(tmp_path):
    shutil.copytree(builtin_root() / "okvqa", tmp_path / "okvqa")
    train_q = tmp_path / "okvqa" / "OpenEnded_mscoco_train2014_questions.json"
    train_q.unlink()
    (zero_shot,) = check_tasks(["okvqa"], str(tmp_path))
    (four_shot,) = check_tasks(["okvqa_4shot"], str(tmp_path))
    assert zero_shot.status == "partial"  # the mini set: 32 of the 5046 val questions
    assert four_shot.status == "missing" and str(train_q) in four_shot.detail
