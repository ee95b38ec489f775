# tegkit: every target creates what it needs (virtualenv, packages) itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint bench run clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,peers]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m bench

run: install
	$(BIN)/teg endpoints

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
