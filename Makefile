# One-command setup: `make test` and `make demo` build .venv from the pinned requirement files
# when those change (a stamp keyed on their content), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REQS := requirements/dev.txt requirements/nodeps.txt requirements/constraints.txt
STAMP := $(VENV)/.stamp-$(shell cat $(REQS) pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
PYTEST_WORKERS ?= 2

.PHONY: all venv bytecode chromium test lint bench demo clean

all: test

$(STAMP): $(REQS) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.stamp-*
	@touch $@

venv: $(STAMP)

# attrib's compiled bytecode, as an installed package has it: the editable install leaves
# src/ uncompiled, and where PYTHONDONTWRITEBYTECODE is set (this project's CI) every new
# process (a DataLoader or Ray worker, a pytest worker) compiled attrib again, a second of
# CPU each; a stale .pyc is never used (Python checks the source's time stamp)
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q src >/dev/null

# the explorer's browser tests drive Debian's chromium (playwright never downloads a browser)
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "make: the explorer's browser tests need chromium: run 'apt-get install -y chromium' as root" >&2; exit 1; fi; }

test: $(STAMP) bytecode chromium
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP) bytecode
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

demo: $(STAMP) bytecode
	$(BIN)/python -m attrib.cli demo

clean:
	rm -rf $(VENV) build dist .pytest_cache out
