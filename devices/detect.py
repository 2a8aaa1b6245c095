"""Which device profile is this machine? Read the board identity Linux exposes, no probing."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

# (substring of the board model string, profile): first match wins, so specific before generic.
_BOARD_PATTERNS = (
    ("orin nano", "jetson-orin-nano"),
    ("agx orin", "jetson-agx-orin"),
    ("xavier nx", "jetson-xavier-nx"),
    ("jetson nano", "jetson-nano"),
    ("nvidia jetson", "jetson-orin-nano"),
    ("raspberry pi 5", "raspberry-pi-5"),
    ("raspberry pi 4", "raspberry-pi-4"),
    ("coral", "coral-dev-board"),
    ("phanbell", "coral-dev-board"),
)
_MODEL_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
_TEGRA_RELEASE = "/etc/nv_tegra_release"


@dataclass(frozen=True)
class Detection:
    profile: str | None  # None: an ARM board medtk has no profile for
    evidence: str  # what was read, e.g. "/proc/device-tree/model: NVIDIA Jetson Orin Nano ..."


def detect_device(root: str = "/") -> Detection:
    """Match the board model string (device tree) or the Tegra release file; x86-64 -> x86-host."""
    base = Path(root)
    for name in _MODEL_FILES:
        board = _read(base / name.lstrip("/"))
        if board:
            lowered = board.lower()
            for pattern, profile in _BOARD_PATTERNS:
                if pattern in lowered:
                    return Detection(profile, f"{name}: {board}")
            return Detection(None, f"{name}: {board} (no matching profile)")
    tegra = _read(base / _TEGRA_RELEASE.lstrip("/"))
    if tegra:
        return Detection("jetson-orin-nano", f"{_TEGRA_RELEASE}: {tegra.splitlines()[0]}")
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return Detection("x86-host", f"platform.machine() = {platform.machine()}")
    return Detection(None, f"platform.machine() = {platform.machine()} (no matching profile)")


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return ""
