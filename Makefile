# Quick start: `make demo` and `make test`. Each target builds its own .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.test: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[test,dev,examples]'
	touch $@

$(VENV)/.examples: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[examples]'
	touch $@

$(VENV)/.bench: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

demo: $(VENV)/.examples
	$(PY) examples/moons.py

test: $(VENV)/.test
	$(PY) -X dev -W error -m pytest -q
	$(VENV)/bin/ruff check tapegrad tests examples benchmarks
	$(VENV)/bin/mypy tapegrad

bench: $(VENV)/.bench
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
