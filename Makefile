# One virtual environment for everything; `make demo` and `make test` create it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-quick system-deps arm64-deps bench check-arm64 clean

install: $(STAMP)

# INSTALLER=uv installs the same requirements with uv (from PyPI, into the same venv): ~1 min instead of
# ~5 cold (CI uses it). uv does not read pip's configuration: keep pip where a private index or proxy is set there.
INSTALLER ?= pip

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifeq ($(INSTALLER),uv)
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[train,test]"
else
	$(PY) -m pip install --quiet -e ".[train,test]"
endif
	touch $(STAMP)

# The whole pipeline on the embedded synthetic data: train -> eval -> compress -> bench -> report.
demo: install
	$(VENV)/bin/medtk demo --out runs/demo --force

# Quick tier and the marked end-to-end checks; tests that need Chromium or sshd get them first.
test: install system-deps
	$(PY) -m pytest -q --durations=25

test-quick: install
	$(PY) -m pytest -q -m "not slow"

system-deps:
	bash .ci/system-deps

# qemu-user-static, debootstrap, binfmt-support: only `make check-arm64` and its reduced test (MEDTK_CHECK_ARM64=1, as in CI) need them.
arm64-deps:
	bash .ci/system-deps --arm64

# The runtime benchmarks (minutes). Training, compression and serve benchmarks take longer and are run
# one by one: each section of benchmarks/RESULTS.md gives its command.
bench: install
	$(PY) benchmarks/latency.py
	$(PY) benchmarks/runtime_overhead.py

# The runtime on aarch64 for real (root; minutes to tens of minutes under emulation): an emulated arm64 Debian
# userland installs this checkout's wheel from PyPI and must give x86's answers for a small PneumoniaMNIST
# run's float32, int8 and recommended variants (benchmarks/check_arm64.py; results in benchmarks/RESULTS.md;
# tests/compress/test_arm64.py is its reduced form). The run is made once, if missing; compress's exit 3
# (a gate) still leaves variants to compare.
MEDTK_DATA_DIR ?= $(abspath ..)/shared/data
ARM64_RUN ?= runs/arm64-check/run
ARM64_OUT ?= runs/arm64-check/out

check-arm64: install system-deps arm64-deps
	test -f $(ARM64_RUN)/compress.json || { \
	  $(VENV)/bin/medtk train --config benchmarks/arm64_run.toml --data $(MEDTK_DATA_DIR)/pneumoniamnist.npz --out $(ARM64_RUN) && \
	  { $(VENV)/bin/medtk compress $(ARM64_RUN) --int8 --prune-epochs 1 --qat-epochs 1 --calibration 50 || [ $$? -eq 3 ]; }; }
	rm -rf $(ARM64_OUT)
	$(PY) benchmarks/check_arm64.py --run $(ARM64_RUN) --npz $(MEDTK_DATA_DIR)/pneumoniamnist.npz --count 8 --out $(ARM64_OUT)

clean:
	rm -rf $(VENV) build *.egg-info
