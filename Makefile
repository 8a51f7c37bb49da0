# The two commands the README opens with: `make demo` (main job on the embedded default model)
# and `make test` (the test suite). Both set up .venv first on a fresh machine.
.PHONY: setup demo test bench
PY := .venv/bin/python

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/selfprompt ask --condition icl-self-prompt "Why is the sky blue?" "How do I reverse a list in Python?" "What should I check before buying a used car?"

test: setup
	$(PY) -m pytest

bench: setup
	SELFPROMPT_EXTRAS=llamacpp,serve,test,bench bash scripts/setup.sh
	for b in bench/*.py; do $(PY) $$b || exit 1; done
