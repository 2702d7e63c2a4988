"""The demo checkpoints: the tiny Qwen2-VL of `tiny-qwen2-vl` trained on synthetic items
(scripts/train_demo_model.py), shipped in demo_weights/ so the quick start shows real answers.

A preset's `tiny` builder copies the shipped folder into the model cache, as the random-weight
builders write theirs; `version` names the shipped weights, so retrained ones get a new folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

WEIGHTS = Path(__file__).parent / "demo_weights"


def _installer(name: str):
    def install(dest: Path) -> None:
        src = WEIGHTS / name
        for path in sorted(src.iterdir()):
            shutil.copy2(path, Path(dest) / path.name)

    install.version = "demo1"  # type: ignore[attr-defined]
    install.__name__ = f"install_{name.replace('-', '_')}"
    return install


install_qwen2_vl = _installer("qwen2-vl")
install_qwen2_vl_weak = _installer("qwen2-vl-weak")
