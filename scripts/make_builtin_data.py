"""Regenerate the bundled mini datasets under qwenvl_eval/tasks/builtin/.

Runs `main(out_root)` of every module in scripts/builtin/ (one per family of tasks). The
output is deterministic: running it twice gives the same bytes.

    python scripts/make_builtin_data.py
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "qwenvl_eval" / "tasks" / "builtin"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    for module in sorted((ROOT / "scripts" / "builtin").glob("[!_]*.py")):
        mod = importlib.import_module(f"scripts.builtin.{module.stem}")
        mod.main(OUT)
        print(f"built {module.stem} -> {OUT}")


if __name__ == "__main__":
    main()
