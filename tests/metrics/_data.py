"""Fixture loading for the metric tests (data under tests/fixtures/metrics, see SOURCE.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="captioning needs Java")


def load_coco_fakecap() -> tuple[dict[int, list[str]], dict[int, str]]:
    """References and fake-caption predictions of the 1000 coco-caption demo images."""
    data = json.loads((FIXTURES / "coco_captions_val2014_fakecap_1000.json").read_text("utf-8"))
    ids = data["image_ids"]
    refs = dict(zip(ids, data["references"], strict=True))
    preds = dict(zip(ids, data["predictions"], strict=True))
    return refs, preds
