# The two commands of the README: `make demo` and `make test`.
# Each sets up its own virtual environment from the pinned constraints.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/handover demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP)
	scripts/system-deps
	$(MAKE) lint
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder --durations=30

clean:
	rm -rf $(VENV) .handover
