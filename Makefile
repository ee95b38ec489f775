# tegkit: every target creates what it needs (virtualenv, packages) itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests drive for real: a browser for the dashboard, a PostgreSQL server,
# an MQTT broker (mosquitto, with mosquitto_passwd) for `teg monitor --mqtt`.
SYSTEM_PACKAGES := chromium postgresql mosquitto

.PHONY: install sysdeps test lint bench run clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,peers]'
	touch $(STAMP)

install: $(STAMP)

sysdeps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -x /usr/sbin/mosquitto || missing="$$missing mosquitto"; \
	command -v jq >/dev/null || missing="$$missing jq"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

test: lint sysdeps
	$(BIN)/python -m pytest -q

# wrk is the HTTP load generator of the server benchmarks.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python -m bench

# The main job: a simulated gateway, the recorder and the dashboard, until Ctrl-C.
run: install
	$(BIN)/teg demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
