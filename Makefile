# The two commands of the README: `make demo` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The newest torch this project's machines hold on disk; override for another platform.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: setup data demo test lint format bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

data: $(STAMP)
	$(BIN)/auxbench datasets --fetch fashion-mnist

demo: data
	$(BIN)/auxbench compare --config config/config.yaml --out results

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: data lint
	$(BIN)/python -m pytest -q

bench: data
	$(BIN)/auxbench bench
