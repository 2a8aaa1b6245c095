"""The base install on aarch64 gives x86's answers: benchmarks/check_arm64.py in its reduced form (slow).

One model, one image: the int8 variant `medtk compress` exported from the session's small trained ResNet50
run (tests/compress/conftest.py, built once for the compress tests anyway) and one real PneumoniaMNIST image.
A fresh arm64 Debian userland under qemu-user-static (debootstrap, no cache; in CI built by .ci/run in the
background while the first tests run), `pip install medtk-*.whl` from PyPI inside it, the library and
`medtk predict --json` on both machines, the signature verified, a tampered copy refused, and
`medtk bench --host` over SSH into the userland. The full check (float32, int8 and recommended variants of a
compressed run, several images) is `make check-arm64`; its output is in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
TIMEOUT_S = 30 * 60  # ~5 min on an idle 2-core runner, 25+ on this shared one; a hung emulator is not waited for forever


@pytest.fixture(scope="module")
def reduced_check(tmp_path_factory, pneumonia_npz, request):
    # Opt-in: it needs root and qemu-user-static/debootstrap (.ci/run sets it and installs them for CI).
    if os.environ.get("MEDTK_CHECK_ARM64") != "1":
        pytest.skip("the emulated arm64 check runs with MEDTK_CHECK_ARM64=1 (root); `make check-arm64` is the full one")
    if os.geteuid() != 0:
        pytest.fail("debootstrap, chroot and binfmt_misc need root")
    run, _ = request.getfixturevalue("compressed")  # only once we know the check will run
    int8_model = run / "export" / "int8.tflite"
    assert int8_model.is_file(), f"{run}: compress exported no int8 variant"
    out = tmp_path_factory.mktemp("arm64") / "check"
    done = subprocess.run(
        [sys.executable, REPO_ROOT / "benchmarks" / "check_arm64.py", "--out", out, "--model", int8_model,
         "--npz", pneumonia_npz, "--count", "1", "--bench-runs", "2", "--timeout", str(TIMEOUT_S // 2),
         *_userland_built_meanwhile()],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    summary_path = out / "summary.json"
    assert summary_path.is_file(), f"no summary: exit {done.returncode}: {done.stderr[-2000:]}"
    return done, json.loads(summary_path.read_text())


def _userland_built_meanwhile() -> list[str]:
    """`--userland DIR` when .ci/run had `check_arm64.py --userland-only --out BUILD` make it in the background
    (MEDTK_ARM64_USERLAND_BUILD=BUILD), once that build finished and succeeded; else nothing (built here)."""
    build = os.environ.get("MEDTK_ARM64_USERLAND_BUILD")
    if not build:
        return []
    summary = Path(build) / "summary.json"
    deadline = time.monotonic() + TIMEOUT_S // 2
    while not summary.is_file():
        if time.monotonic() > deadline:
            pytest.fail(f"{build}: the background userland build wrote no summary.json in {TIMEOUT_S // 2} s")
        time.sleep(5)
    built = json.loads(summary.read_text())
    assert built["ok"], f"the background arm64 userland build failed: {built['failures']}"
    return ["--userland", str(Path(build) / "userland")]


def test_the_userland_agrees_with_x86(reduced_check):
    done, summary = reduced_check
    assert done.returncode == 0 and summary["ok"], done.stdout[-3000:] + done.stderr[-2000:]
    assert summary["failures"] == []
    (row,) = summary["comparisons"]
    assert row["label_x86_64"] == row["label_aarch64"] and row["precision"] == "int8"
    assert row["max_abs_prob_diff"] <= 1 / 256 and row["cam_correlation"] >= 0.999
    assert summary["userland"]["emulated_cpu"] == "neoverse-n1"  # not qemu's "max": see check_arm64.DEFAULT_CPU


def test_the_device_install_is_litert_on_aarch64_without_tensorflow(reduced_check):
    _, summary = reduced_check
    assert summary["userland"]["machine"] == "aarch64"
    assert summary["install"]["tensorflow_modules"] == []
    packages = summary["install"]["packages"]
    assert "tensorflow" not in packages and packages["medtk"] == importlib.metadata.version("medtk")
    assert summary["runtime"]["aarch64"]["machine"] == "aarch64"
    assert summary["runtime"]["aarch64"]["litert"] == packages["ai-edge-litert"]  # what the runtime says = what pip chose
    assert summary["install"]["installed_bytes"] > 10_000_000


def test_signature_verified_and_tampering_refused_on_both(reduced_check):
    _, summary = reduced_check
    (verified,) = [value for key, value in summary["integrity"].items() if not key.startswith("tampered")]
    assert verified == {"x86_64": "signed", "aarch64": "signed"}
    assert summary["integrity"]["tampered_refused_aarch64"] and summary["integrity"]["tampered_refused_x86_64"]


def test_remote_bench_over_ssh_ran_in_the_userland(reduced_check):
    _, summary = reduced_check
    bench = summary["bench"]
    assert bench["machine"] == "aarch64" and bench["where"]["mode"] == "remote"
    assert bench["backend"].startswith(f"ai-edge-litert {summary['runtime']['aarch64']['litert']} ")
    assert "emulation" in bench["note"]
