# The two commands of the README. Both install into ./.venv from scratch.
PY ?= python3

.PHONY: demo test

demo:  ## install and run the demo (solve, certify, differentiate the examples)
	$(PY) -m venv .venv
	.venv/bin/pip install -q -e .
	.venv/bin/python -m workbench.demo

test:  ## install (plus Debian's chromium for the browser test) and run the whole test suite
	bash .ci/browser-deps.sh
	$(PY) -m venv .venv
	.venv/bin/pip install -q -e ".[test]"
	.venv/bin/python -m pytest
