#!/usr/bin/env bash
# The real-engine check (tests/model/test_openai_real_server.py): `--backend openai` through
# `transformers serve` on 127.0.0.1 must give the saved outputs and scores of `--backend hf`.
# The engine lives in its own environment ($QWENVL_EVAL_SERVE_VENV, default .venv-serve),
# built here when missing: PyPI's torch 2.14.1 + torchvision 0.29.1 (a pair whose
# torchvision loads) + transformers[serving] in the project's transformers range.
# Run from the project's environment (the one with `pip install -e ".[test]"`).
set -euo pipefail
cd "$(dirname "$0")/.."
SERVE_VENV="${QWENVL_EVAL_SERVE_VENV:-.venv-serve}"
if [ ! -x "$SERVE_VENV/bin/transformers" ]; then
    TRANSFORMERS_SPEC=$(python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print(next(d for d in deps if d.startswith("transformers")).replace("transformers", "", 1))')
    python3 -m venv "$SERVE_VENV"
    "$SERVE_VENV/bin/pip" install torch==2.14.1 torchvision==0.29.1
    "$SERVE_VENV/bin/pip" install "transformers[serving]${TRANSFORMERS_SPEC}"
fi
QWENVL_EVAL_REAL_SERVER=1 QWENVL_EVAL_SERVE_VENV="$SERVE_VENV" \
    python -m pytest tests/model/test_openai_real_server.py -p no:randomly -v "$@"
