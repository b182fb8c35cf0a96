# Two commands do all the set-up from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Test processes for pytest (-n) and trial (-j): one a core. Much of the
# suite waits on real sockets and twistd subprocesses, so the runs scale
# with cores.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Twisted caches what it finds in twisted/plugins/; building the cache now,
# as the installing user, spares every later start the rescan (and a
# read-only install the warning about not being able to write it).
PLUGIN_CACHE := from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))

# Python writes the bytecode of what it imports, even where the environment
# says not to (PYTHONDONTWRITEBYTECODE, set on some machines): the suite
# starts a few hundred twistd and client processes, and without the cache
# each compiles this package from source again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-pytest test-trial lint fuzz install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The installs are editable, so a source change needs none: pip runs again
# only when pyproject.toml (the dependencies) is newer than the stamp of the
# last install. The test extra holds the base install, so it stamps both.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	$(BIN)/python -c "$(PLUGIN_CACHE)"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -c "$(PLUGIN_CACHE)"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(PIP) -e '.[bench]'
	$(BIN)/python -c "$(PLUGIN_CACHE)"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/twistd --nodaemon --pidfile= services

# ruff, and the import contracts in pyproject.toml: lower layers never import
# higher ones, service packages never import each other, no cycles.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Every fuzz harness in fuzz/ for a bounded time (fuzz/run.py).
FUZZ_SECONDS ?= 60
fuzz: install-test
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

# Lint, a short fuzz run of every harness and the same suite under both
# runners, each runner spread over $(JOBS) processes, all at the same time:
# much of the suite waits on sockets and subprocesses, and the other runs'
# CPU fills those waits. A harness's coverage levels off within its first
# 3 s (about 3000 inputs); make fuzz is the long run. Each sub-make's output
# is printed whole when it ends (--output-sync), and make fails if any of
# them failed (-k lets the others finish first). What keeps the suite fast
# is in tests/README.md.
FUZZ_HARNESSES := $(notdir $(basename $(wildcard fuzz/fuzz_*.py)))
SUBMAKE := $(MAKE) --no-print-directory --output-sync=target -k
test: install-test
	$(SUBMAKE) -j lint $(addprefix test-fuzz-,$(FUZZ_HARNESSES)) test-pytest test-trial

test-fuzz-%: install-test
	$(BIN)/python fuzz/run.py --seconds 3 $*

# --dist loadscope: a class's tests run in one process, so those that share
# a twistd (tests/support/shared.py) start it once.
test-pytest: install-test
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope

test-trial: install-test
	$(BIN)/trial -j $(JOBS) tests

# The benchmark suite (bench/README.md): under six minutes on two cores.
bench: $(VENV)/.installed-bench
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
