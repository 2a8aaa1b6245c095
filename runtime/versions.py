"""Which LiteRT (and numpy) the runtime runs on: the one answer `medtk predict --json`, `medtk bench` and the
report give.

A device resolves its own wheels (pip on an arm64 Debian chose ai-edge-litert 2.3.0 for manylinux_2_27_aarch64
and its own numpy), so an output compared across machines must say which interpreter produced it. Read
from the installed distributions' metadata: nothing here imports LiteRT or numpy.
"""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import asdict, dataclass

LITERT_DISTRIBUTION = "ai-edge-litert"


@dataclass(frozen=True)
class RuntimeVersions:
    """The interpreter's distribution and version, with the numpy, Python and CPU architecture beside it."""

    litert: str
    numpy: str
    python: str
    machine: str

    def __str__(self) -> str:
        return f"{LITERT_DISTRIBUTION} {self.litert} (numpy {self.numpy}, Python {self.python}, {self.machine})"

    def to_json(self) -> dict[str, str]:
        return {"name": LITERT_DISTRIBUTION, **asdict(self)}


def distribution_version(name: str) -> str:
    """The installed version of distribution `name`, or "unknown" (a source checkout without metadata)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def runtime_versions() -> RuntimeVersions:
    """What this process's runtime runs on."""
    return RuntimeVersions(
        litert=distribution_version(LITERT_DISTRIBUTION),
        numpy=distribution_version("numpy"),
        python=platform.python_version(),
        machine=platform.machine(),
    )
