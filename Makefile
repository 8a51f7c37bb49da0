# The two commands the README opens with: `make demo` (main job on the embedded default model)
# and `make test` (the test suite). Both set up .venv first on a fresh machine.
.PHONY: setup demo ask test bench
PY := .venv/bin/python
# The local data mirror (layout of ../shared/data, with MANIFEST.json); override on the command line.
export SELFPROMPT_DATA_DIR ?= $(abspath ../shared/data)

setup:
	bash scripts/setup.sh

# The whole study on the embedded default: annotate -> train self-prompt + baseline -> eval -> judge -> report.
demo: setup
	.venv/bin/selfprompt run experiments/demo.yaml

ask: setup
	.venv/bin/selfprompt ask --condition icl-self-prompt "Why is the sky blue?"

test: setup
	$(PY) -m pytest

bench: setup
	SELFPROMPT_EXTRAS=llamacpp,serve,test,bench bash scripts/setup.sh
	for b in bench/*.py; do $(PY) $$b || exit 1; done
