#!/usr/bin/env bash
# The GPU check: LoRA and full fine-tuning of tiny random-weight Llama and Mistral models, built from
# their configs, through selfprompt.train with the shipped chat templates, on one CUDA GPU in bf16 with
# gradient checkpointing and SDPA; save, reload, generate. Under 5 minutes; nothing is downloaded but,
# when the project is not installed, its own small dependencies. Result: bench/results/gpu-check.json.
#
#     bash scripts/gpu-check.sh                     # all four cases
#     bash scripts/gpu-check.sh --cases llama-lora --steps 20 --out /tmp/gpu-check.json
#
# It needs a CUDA build of torch in $PYTHON (default: .venv/bin/python if present, else python3). When the
# project's dependencies are missing there, it makes .venv-gpu-check with the system packages visible, so
# that CUDA torch is reused (pip keeps it: it satisfies torch>=2.4), and installs the project into it.
# The same check runs on CPU in fp32: python scripts/gpu_check.py --device cpu (tests/test_gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, installed or not
if ! "$PYTHON" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "gpu-check: $PYTHON has no torch that sees a CUDA GPU; install a CUDA build of torch first" >&2
  exit 2
fi
if ! "$PYTHON" -c "import transformers, trl, peft, accelerate, datasets, pydantic, rich, yaml, matplotlib" 2>/dev/null; then
  [ -x .venv-gpu-check/bin/python ] || "$PYTHON" -m venv --system-site-packages .venv-gpu-check
  .venv-gpu-check/bin/python -m pip install -q -e .
  PYTHON=.venv-gpu-check/bin/python
fi
exec "$PYTHON" scripts/gpu_check.py --device cuda "$@"
