# Quick start: `make demo` and `make test`. Each target builds its own .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test docs lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.test: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[test,dev,examples,docs]'
	touch $@

$(VENV)/.docs: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

$(VENV)/.examples: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[examples]'
	touch $@

$(VENV)/.bench: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

demo: $(VENV)/.examples
	$(PY) examples/moons.py
	$(PY) examples/digits.py

# pytest also builds the docs site (--strict) and runs every course notebook.
test: $(VENV)/.test
	$(PY) -X dev -W error -m pytest -q
	$(VENV)/bin/ruff check tapegrad tests examples benchmarks
	$(VENV)/bin/mypy tapegrad
	$(VENV)/bin/lint-imports

# The docs site into site/: the course notebooks are run as it builds.
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The differential oracle on many random programs (EXAMPLES=n to change how many); it prints
# how many ran. Failures are kept in .hypothesis and replayed first by later runs.
.PHONY: fuzz
fuzz: $(VENV)/.test
	ORACLE_EXAMPLES=$(or $(EXAMPLES),5000) $(PY) -m pytest -q tests/test_oracle.py \
		-k test_tapegrad_agrees_with_the_oracle --hypothesis-show-statistics

bench: $(VENV)/.bench
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) out site .pytest_cache .hypothesis
