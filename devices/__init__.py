"""Device profiles (TOML, shipped with the package) and detection of the device medtk runs on."""

from medtk.devices.detect import Detection, detect_device
from medtk.devices.registry import (
    CpuSpec,
    Profile,
    Reference,
    Resolved,
    list_profiles,
    load_profile,
    resolve_profile,
)

__all__ = [
    "CpuSpec",
    "Detection",
    "Profile",
    "Reference",
    "Resolved",
    "detect_device",
    "list_profiles",
    "load_profile",
    "resolve_profile",
]
