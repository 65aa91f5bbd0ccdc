# Two entry points; each sets up .venv first (pinned by requirements.lock) when needed.
#   make run    the default experiment: snakemake --cores 4 --resources gpu=1
#   make test   the test suite
# The set-up uses the first of python3.13, python3.12, python3.11, python3 that is one of the
# supported versions; `make PYTHON=/path/to/python ...` chooses another (it is checked too).
SUPPORTED := 3.11 3.12 3.13
VERSION_OK := import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" not in "$(SUPPORTED)".split())
PYTHON ?= $(firstword $(foreach candidate,python3.13 python3.12 python3.11 python3,\
	$(shell $(candidate) -c '$(VERSION_OK)' >/dev/null 2>&1 && echo $(candidate))))
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
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) -c '$(VERSION_OK)' 2>/dev/null; then \
		echo "error: rnn-cell-bench needs Python 3.11, 3.12 or 3.13: none of python3.13," \
			"python3.12, python3.11, python3 on the PATH is one (or PYTHON=$(PYTHON) is not);" \
			"install one, or run make PYTHON=/path/to/python3.12 ..." >&2; \
		exit 1; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==26.3
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	# Compile the fused engine's kernels once (25 to 30 s per cell) into numba's cache.
	$(BIN)/python -m rnn_cell_bench.fused
	touch $@
