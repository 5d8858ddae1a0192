# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE := docs/examples/usgan-example-plugin

.PHONY: venv demo test lint clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(EXAMPLE)/pyproject.toml $(wildcard $(EXAMPLE)/src/*/*.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,plots,hdf5]'
	$(BIN)/python -m pip install -q -c constraints.txt --no-build-isolation ./$(EXAMPLE)
	touch $(STAMP)

demo: venv
	$(BIN)/usgan demo

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
