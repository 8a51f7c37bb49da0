#!/usr/bin/env bash
# The GPU check: LoRA and full fine-tuning of tiny random-weight Llama and Mistral models, built from
# their configs, through selfprompt.train with the shipped chat templates, on one CUDA GPU in bf16 with
# gradient checkpointing and SDPA; save, reload, generate. Under 5 minutes; nothing is downloaded but,
# when the project is not installed, its own small dependencies. Result: bench/results/gpu-check.json.
#
#     bash scripts/gpu-check.sh                     # all four cases
#     bash scripts/gpu-check.sh --cases llama-lora --steps 20 --out /tmp/gpu-check.json
#
# It needs a CUDA build of torch in $PYTHON (default: .venv/bin/python if its torch sees a GPU, else python3).
# When a requirement of pyproject.toml is missing or too old there, it makes .venv-gpu-check with the system
# packages visible, so that CUDA torch is reused (pip keeps it: it satisfies torch>=2.4), and installs the
# project into it: from PyPI, or on an offline node from WHEELS=/folder/of/wheels (the venv module needs
# Debian's python3-venv).
# The same check runs on CPU in fp32: python scripts/gpu_check.py --device cpu (tests/test_gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cuda() { "$1" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; }
if [ -z "${PYTHON:-}" ]; then
  # make's .venv has the CPU wheel of torch (constraints.txt): then the node's own python3 is the one to use
  if [ -x .venv/bin/python ] && cuda .venv/bin/python; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, installed or not
if ! cuda "$PYTHON"; then
  echo "gpu-check: $PYTHON has no torch that sees a CUDA GPU; install a CUDA build of torch first (or set PYTHON)" >&2
  exit 2
fi
# The project's requirements (pyproject.toml), checked by version, not only by import: a node with an older
# transformers would fail later and less clearly.
missing=$("$PYTHON" - <<'PY'
import tomllib
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

needs = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
bad = []
for line in needs:
    req = Requirement(line)
    try:
        have = version(req.name)
    except PackageNotFoundError:
        bad.append(f"{req} (not installed)")
        continue
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        bad.append(f"{req} (have {have})")
print("; ".join(bad))
PY
)
if [ -n "$missing" ]; then
  echo "gpu-check: $PYTHON lacks: $missing" >&2
  # Offline nodes: WHEELS=/path/to/wheels (made elsewhere with `pip download`) installs from that folder only.
  [ -x .venv-gpu-check/bin/python ] || "$PYTHON" -m venv --system-site-packages .venv-gpu-check
  .venv-gpu-check/bin/python -m pip install -q ${WHEELS:+--no-index --find-links "$WHEELS"} -e .
  PYTHON=.venv-gpu-check/bin/python
fi
exec "$PYTHON" scripts/gpu_check.py --device cuda "$@"
