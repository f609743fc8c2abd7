# Pitchcraft — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test lint format services bench clean-venv

install: $(STAMP)

# No torch: the embedding model runs on ONNX Runtime (torch is only in the `bench` extra).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(VENV)/bin/pitchcraft migrate
	$(VENV)/bin/pitchcraft serve --host $(HOST) --port $(PORT)

# Two workers: many tests wait on servers, browsers and subprocesses rather than the CPU.
# Each test file stays on one worker (module-scoped servers and corpora are built once).
PYTEST_PARALLEL ?= -n 2 --dist loadfile
# The slowest tests at the end of each run: the CI budget is 30 minutes.
PYTEST_ARGS ?= --durations=15

test: install services
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

services:
	scripts/ensure-services.sh

clean-venv:
	rm -rf $(VENV)
