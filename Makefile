# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE := docs/examples/usgan-example-plugin

.PHONY: venv demo test lint results clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(EXAMPLE)/pyproject.toml $(wildcard $(EXAMPLE)/src/*/*.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,plots,hdf5]'
	$(BIN)/python -m pip install -q -c constraints.txt --no-build-isolation ./$(EXAMPLE)
	touch $(STAMP)

demo: venv
	$(BIN)/usgan demo

# Two workers (pytest-xdist): many tests mostly wait on a `usgan` subprocess starting up, so
# two of them share two cores well (README: the measured times).
test: venv
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

lint: venv
	$(BIN)/ruff check .

# docs/results.md: the paper's Tables 1 and 2 on the shared real data (hours; running it again
# continues it). HUB=http://127.0.0.1:8765 also publishes the weights there (docs/results.md).
SHARED  ?= ../shared
RESULTS ?= runs/results
PRESET  ?= cpu
JOBS    ?= 2
PUSH    := $(if $(HUB),--push-org usgan --endpoint $(HUB),)
WEIGHTS ?= $(SHARED)/weights/inception-fid-2015-12-05-features-only.pth

results: venv
	$(BIN)/usgan reproduce --data $(SHARED)/data/busi-256 --name busi --classes benign,malignant \
	    --preset $(PRESET) --jobs $(JOBS) --out $(RESULTS)/busi --report docs/results.md \
	    --inception-weights $(WEIGHTS) $(PUSH)
	$(BIN)/usgan reproduce --data $(SHARED)/data/sfibai-liver-fibrosis-us/train --name sfibai \
	    --bins 1.0 --preset $(PRESET) --jobs $(JOBS) --out $(RESULTS)/sfibai \
	    --report docs/results.md --inception-weights $(WEIGHTS) $(PUSH)
