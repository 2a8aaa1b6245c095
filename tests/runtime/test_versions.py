"""`runtime_versions`: the LiteRT the runtime runs on, as `medtk predict --json`, `medtk bench` and the report say it."""

import importlib.metadata
import platform
import subprocess
import sys

import numpy as np

from medtk.runtime.versions import distribution_version, runtime_versions


def test_names_the_installed_litert_and_numpy_and_the_cpu():
    versions = runtime_versions()
    assert versions.litert == importlib.metadata.version("ai-edge-litert") and versions.litert[0].isdigit()
    assert versions.numpy == np.__version__ and versions.machine == platform.machine()
    assert str(versions).startswith(f"ai-edge-litert {versions.litert} (numpy {versions.numpy}, Python ")
    assert versions.to_json() == {"name": "ai-edge-litert", "litert": versions.litert, "numpy": versions.numpy,
                                  "python": platform.python_version(), "machine": platform.machine()}


def test_a_missing_distribution_is_unknown_not_an_error():
    assert distribution_version("medtk-no-such-distribution") == "unknown"


def test_asking_imports_neither_litert_nor_numpy():
    code = ("import sys; from medtk.runtime.versions import runtime_versions; runtime_versions(); "
            "print([m for m in ('ai_edge_litert', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
