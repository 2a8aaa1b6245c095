# One virtual environment for everything; `make demo` and `make test` create it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-quick system-deps bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[train,test]"
	touch $(STAMP)

# The whole pipeline on the embedded synthetic data: train -> eval -> compress -> bench -> report.
demo: install
	$(VENV)/bin/medtk demo --out runs/demo --force

# Quick tier and the marked end-to-end checks; tests that need Chromium or sshd get them first.
test: install system-deps
	$(PY) -m pytest -q

test-quick: install
	$(PY) -m pytest -q -m "not slow"

system-deps:
	bash .ci/system-deps

# The runtime benchmarks (minutes). Training, compression and serve benchmarks take longer and are run
# one by one: each section of benchmarks/RESULTS.md gives its command.
bench: install
	$(PY) benchmarks/latency.py
	$(PY) benchmarks/runtime_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
