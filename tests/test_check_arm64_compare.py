"""benchmarks/check_arm64.py: what counts as arm64 agreeing with x86, and its clean-up of a failed userland (no emulation needed)."""

from __future__ import annotations

import copy
import os
import subprocess
import time
import importlib.util
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("check_arm64", REPO_ROOT / "benchmarks" / "check_arm64.py")
check = importlib.util.module_from_spec(spec)
sys.modules["check_arm64"] = check  # its dataclasses look their module up
spec.loader.exec_module(check)


def _probe(variant: str, p_normal: float, cam: np.ndarray, refused: bool = True, status: str = "signed"):
    prediction = {"image": "a.png", "label": "normal" if p_normal >= 0.5 else "pneumonia", "threshold": 0.5,
                  "probabilities": {"normal": p_normal, "pneumonia": 1 - p_normal}}
    cli = {"exit_code": 0, "runtime": {"machine": "aarch64"}, "predictions": [prediction]}
    model = {"variant": variant, "precision": "int8", "verification": status, "predictions": [prediction], "cli": cli}
    return {"models": {"m.tflite": model}, "tampered": {"refused": refused}}, {"m.tflite/0": cam}


CAM = np.outer(np.arange(8.0), np.ones(8)) / 7


def test_identical_outputs_agree():
    rows, integrity, failures = check.compare(_probe("int8", 0.9, CAM), _probe("int8", 0.9, CAM))
    assert failures == [] and rows[0]["max_abs_prob_diff"] == 0 and rows[0]["cam_correlation"] == pytest.approx(1)
    assert integrity["m.tflite"] == {"x86_64": "signed", "aarch64": "signed"}


@pytest.mark.parametrize(("variant", "p_arm", "agrees"), [
    ("float32", 0.9 + 1.9e-3, True), ("float32", 0.9 + 2.1e-3, False),  # float: 2e-3
    ("int8", 0.9 + 3.8e-3, True), ("int8", 0.9 + 4e-3, False),  # quantized: one 1/256 output step
    ("dynamic", 0.9 + 3.8e-3, True),  # float storage name, quantized activations: int8's tolerance
])
def test_probability_tolerance_is_per_precision(variant, p_arm, agrees):
    _, _, failures = check.compare(_probe(variant, 0.9, CAM), _probe(variant, p_arm, CAM))
    assert (failures == []) is agrees, failures


def test_a_label_flip_a_moved_cam_an_unverified_signature_or_an_accepted_tampering_fail():
    flipped = check.compare(_probe("int8", 0.501, CAM), _probe("int8", 0.499, CAM))[2]
    assert any("labels normal/pneumonia" in failure for failure in flipped)
    moved = check.compare(_probe("int8", 0.9, CAM), _probe("int8", 0.9, CAM.T))[2]
    assert any("CAM correlation" in failure for failure in moved)
    unsigned = check.compare(_probe("int8", 0.9, CAM), _probe("int8", 0.9, CAM, status="sealed"))[2]
    assert any("signature not verified" in failure for failure in unsigned)
    accepted = check.compare(_probe("int8", 0.9, CAM), _probe("int8", 0.9, CAM, refused=False))[2]
    assert accepted == ["aarch64: a model with one flipped byte was not refused"]


def test_cam_correlation_of_flat_maps():
    flat = np.zeros((4, 4))
    assert check.cam_correlation(flat, flat) == 1.0 and check.cam_correlation(flat, flat + 1) == 0.0
    assert check.cam_correlation(CAM, copy.deepcopy(CAM)) == pytest.approx(1.0)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root (CI runs as root)")
def test_a_userland_is_never_deleted_through_a_mount_left_in_it(tmp_path):
    """The userland has the host's /dev bound in; a debootstrap that timed out leaves its /proc mounted."""
    mounted = tmp_path / "userland" / "dev"
    mounted.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", mounted], check=True)
    (mounted / "host-file").write_text("must survive")
    try:
        with pytest.raises(check.CheckError, match="still mounted"):
            check._remove(tmp_path / "userland")
        assert (mounted / "host-file").read_text() == "must survive"
        check._unmount(tmp_path / "userland")
        assert check._mounts_under(tmp_path / "userland") == []
    finally:
        subprocess.run(["umount", "--lazy", mounted], check=False)
    check._remove(tmp_path / "userland")
    assert not (tmp_path / "userland").exists()


def test_a_step_that_times_out_is_killed_with_every_process_it_started(tmp_path):
    marker = tmp_path / "child-ran"
    with pytest.raises(check.CheckError, match="sleepy: timed out after 1 s"):
        check._run(["bash", "-c", f"(sleep 3; touch {marker}) & sleep 30"], 1, "sleepy")
    time.sleep(3)
    assert not marker.exists()  # the grandchild died with the step
