import platform

import pytest

from medtk.devices import detect_device, load_profile


@pytest.mark.parametrize(
    "board, profile",
    [
        ("NVIDIA Jetson Orin Nano Developer Kit", "jetson-orin-nano"),
        ("NVIDIA Jetson AGX Orin Developer Kit", "jetson-agx-orin"),
        ("NVIDIA Jetson Xavier NX Developer Kit", "jetson-xavier-nx"),
        ("NVIDIA Jetson Nano Developer Kit", "jetson-nano"),
        ("Raspberry Pi 5 Model B Rev 1.0", "raspberry-pi-5"),
        ("Raspberry Pi 4 Model B Rev 1.4", "raspberry-pi-4"),
        ("Freescale i.MX8MQ Phanbell", "coral-dev-board"),
    ],
)
def test_board_model_string_selects_the_profile(tmp_path, board, profile):
    model = tmp_path / "proc" / "device-tree" / "model"
    model.parent.mkdir(parents=True)
    model.write_bytes(board.encode() + b"\x00")  # the kernel NUL-terminates it
    detection = detect_device(str(tmp_path))
    assert detection.profile == profile
    assert board in detection.evidence
    load_profile(detection.profile)


def test_tegra_release_file_means_a_jetson(tmp_path):
    release = tmp_path / "etc" / "nv_tegra_release"
    release.parent.mkdir(parents=True)
    release.write_text("# R36 (release), REVISION: 4.3\n")
    assert detect_device(str(tmp_path)).profile == "jetson-orin-nano"


def test_unknown_board_has_no_profile(tmp_path):
    model = tmp_path / "proc" / "device-tree" / "model"
    model.parent.mkdir(parents=True)
    model.write_text("Pine64 RockPro64")
    detection = detect_device(str(tmp_path))
    assert detection.profile is None and "no matching profile" in detection.evidence


def test_this_host(tmp_path):
    expected = "x86-host" if platform.machine().lower() in ("x86_64", "amd64") else None
    assert detect_device(str(tmp_path)).profile == expected
