# Two commands do all the set-up from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Twisted caches what it finds in twisted/plugins/; building the cache now,
# as the installing user, spares every later start the rescan (and a
# read-only install the warning about not being able to write it).
PLUGIN_CACHE := from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))

.PHONY: run test lint install install-test clean

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

lint: install-test
	$(BIN)/ruff check .

test: install-test lint
	$(BIN)/python -m pytest
	$(BIN)/trial tests

clean:
	rm -rf $(VENV) _trial_temp .pytest_cache .ruff_cache .hypothesis dist build
