# The two commands the README promises: `make demo` and `make test`.
# Each builds its own virtual environment in .venv on first use, from the locked versions
# (requirements/lock.txt), so that a fresh machine installs what the suite passed with.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
# The newest releases that pyproject.toml allows, in a venv of their own (make test-latest).
LATEST := .venv-latest

.PHONY: demo test test-fast test-latest lock lint clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --constraint $(LOCK) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/tunesmith demo

test: $(STAMP)
	$(BIN)/ruff check src tests
	HF_HUB_OFFLINE=1 $(BIN)/pytest

# Everything but the tests that train the real bundled model (integration) and those that
# launch processes, compile or train many times (slow); the full suite runs them all.
test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -m "not integration and not slow" --durations=10

# The whole suite on the newest releases the declared ranges allow (torch aside), ignoring the lock; it
# leaves what it installed in $(LATEST)/freeze.txt. An upgrade is deliberate: if it passes,
# `make lock` makes those versions the locked ones.
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet torch==2.13.0
	# Everything else at its newest; torch stays the CPU build, since a newer torch from the index
	# is a CUDA build of several GB (an upgrade of torch is its own decision: edit both lines).
	echo "torch==2.13.0" > $(LATEST)/keep-torch.txt
	$(LATEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager --constraint $(LATEST)/keep-torch.txt -e ".[dev]"
	$(LATEST)/bin/pip freeze --exclude-editable > $(LATEST)/freeze.txt
	$(LATEST)/bin/ruff check src tests
	HF_HUB_OFFLINE=1 $(LATEST)/bin/pytest
	touch $(LATEST)/.passed

lock:
	@test -f $(LATEST)/.passed || { echo "make test-latest has not passed: nothing to lock"; exit 2; }
	sed -n '1,/^[a-zA-Z]/{/^#/p}' $(LOCK) > $(LOCK).new
	sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/' $(LATEST)/freeze.txt >> $(LOCK).new
	mv $(LOCK).new $(LOCK)
	@echo "Updated $(LOCK); raise the lower bounds in pyproject.toml to match, then make test."

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

clean:
	rm -rf $(VENV) $(LATEST) runs .pytest_cache .ruff_cache
