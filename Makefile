# Two entry points on a fresh machine:  `make demo` (main job) and `make test` (test suite).
# Both build the project environment in .venv first (torch pinned by constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: env demo lint typecheck test benchmarks

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[alignn,matgl,chgnet,pretrain,test]"
	$(BIN)/crysgnn-dgl doctor --install-startup-hook
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/crysgnn-dgl demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/python -m mypy

test: $(STAMP)
	$(BIN)/python -m pytest tests
