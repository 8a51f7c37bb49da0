# The two commands the README opens with: `make demo` (main job on the embedded default model)
# and `make test` (the test suite). Both set up .venv first on a fresh machine.
.PHONY: setup demo ask test lint bench
PY := .venv/bin/python
# The local data mirror (layout of ../shared/data, with MANIFEST.json); override on the command line.
export SELFPROMPT_DATA_DIR ?= $(abspath ../shared/data)

setup:
	bash scripts/setup.sh

# The main job: the whole study on the embedded default, from one experiment file (annotate LIMA
# with role prompts -> train self-prompt and baseline -> eval -> answers -> pairwise judge -> report).
# 15 minutes on 2 cores without native bf16 (fp32 training; after setup); a rerun skips what is done, a killed run resumes.
demo: setup
	.venv/bin/selfprompt run experiments/demo.yaml

# One minute: the untuned default model writes its own expert role prompt, then answers.
ask: setup
	.venv/bin/selfprompt ask --condition icl-self-prompt "Why is the sky blue?" "How do I reverse a list in Python?" "What should I check before buying a used car?"

test: setup
	$(PY) -m pytest

# Lint and format check (settings in pyproject.toml); `.venv/bin/ruff format .` formats in place.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench: setup
	SELFPROMPT_EXTRAS=llamacpp,serve,test,bench bash scripts/setup.sh
	for b in bench/*.py; do $(PY) $$b || exit 1; done
