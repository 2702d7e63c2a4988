"""Shared test setup: tiny checkpoints are built once per session into a temporary cache."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # One torch thread per test process: `pytest -n 2` on 2 cores would otherwise run four
    # threads on two cores and slow every test down.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tiny models and the default data dir go to a per-session folder, never ~/.cache.
    if "QWENVL_EVAL_CACHE" not in os.environ:
        os.environ["QWENVL_EVAL_CACHE"] = str(tmp_path_factory.mktemp("qwenvl_cache"))
    os.environ.pop("QWENVL_EVAL_DATA", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # HF parquet copies are converted to Arrow in the datasets cache: keep it per session.
    os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf_datasets")))


@pytest.fixture()
def toy_task():
    """Registers the toy task under the name `toy` for one test."""
    from qwenvl_eval import registry
    from tests.fakes import ToyTask

    registry._load_all()
    registry.register_task("toy", group=("toy-group",))(ToyTask)
    yield ToyTask
    registry._TASKS.pop("toy", None)
    registry._GROUPS.pop("toy-group", None)
