# One-command setup: `make test` and `make demo` build .venv from the pinned requirement files
# when those change (a stamp keyed on their content), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REQS := requirements/dev.txt requirements/nodeps.txt requirements/constraints.txt
STAMP := $(VENV)/.stamp-$(shell cat $(REQS) pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
PYTEST_WORKERS ?= 2

.PHONY: all venv test lint bench demo clean

all: test

$(STAMP): $(REQS) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.stamp-*
	@touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

demo: $(STAMP)
	$(BIN)/python -m attrib.cli demo

clean:
	rm -rf $(VENV) build dist .pytest_cache out
