# The two commands of the README: `make demo` and `make test`.
# Each sets up its own virtual environment from the pinned constraints.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean bytecode

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Every process imports handover's modules: compiled once here, as an installed wheel has them.
# Where PYTHONDONTWRITEBYTECODE is set (the development machines), each process would otherwise
# compile what it imports, every time: 40 modules and 87 ms of each `handover seal`.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 handover flows tasks

demo: bytecode
	$(BIN)/handover demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: bytecode
	scripts/system-deps
	$(MAKE) lint
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder --durations=30

clean:
	rm -rf $(VENV) .handover
