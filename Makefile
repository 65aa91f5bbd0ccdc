# Two entry points; each sets up .venv first (pinned by requirements.lock) when needed.
#   make run    the default experiment: snakemake --cores 4 --resources gpu=1
#   make test   the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SNAKEMAKE_ARGS ?=

.PHONY: run test setup
run: setup
	$(BIN)/snakemake --cores 4 --resources gpu=1 $(SNAKEMAKE_ARGS)

test: setup
	$(BIN)/pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==26.3
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@
