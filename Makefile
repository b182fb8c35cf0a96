# Two commands do all the set-up from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Twisted caches what it finds in twisted/plugins/; building the cache now,
# as the installing user, spares every later start the rescan (and a
# read-only install the warning about not being able to write it).
PLUGIN_CACHE := from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))

.PHONY: run test lint install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	$(BIN)/python -c "$(PLUGIN_CACHE)"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -c "$(PLUGIN_CACHE)"

run: install
	$(BIN)/twistd --nodaemon --pidfile= services

# ruff, and the import contracts in pyproject.toml: lower layers never import
# higher ones, service packages never import each other, no cycles.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: install-test lint
	$(BIN)/python -m pytest
	$(BIN)/trial tests

# The benchmark suite (bench/README.md): under five minutes on two cores.
bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python -c "$(PLUGIN_CACHE)"
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
	  else \
	    echo "wrk is missing and this is not root: run 'sudo apt-get install -y wrk'" \
	      "(until then the http benchmark is reported as failed)"; \
	  fi; }
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) _trial_temp .pytest_cache .ruff_cache .hypothesis dist build
