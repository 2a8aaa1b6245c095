"""The CPU this process runs on, as Linux describes it: what a run records beside its timings.

A time measured on one CPU says little about another: training speed and the right numeric choices
(bfloat16 pays only with AVX512-BF16 or AMX) depend on the vector extensions, the core count and the
clock. Read from /proc/cpuinfo and the process's CPU affinity; nothing is probed or benchmarked.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

# The extensions the numeric libraries (oneDNN, XNNPACK) choose kernels by, widest last.
WATCHED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name, which of `WATCHED_FLAGS` it has, its CPUs and its nominal clock."""

    model: str
    flags: tuple[str, ...]
    logical_cpus: int
    usable_cpus: int  # this process's affinity (a container's or taskset's limit)
    mhz: float | None  # /proc/cpuinfo's "cpu MHz" of the first CPU (a VM reports its nominal clock)
    machine: str

    @property
    def bfloat16(self) -> bool:
        """Whether the CPU computes in bfloat16 natively (AVX512-BF16 or AMX)."""
        return "avx512_bf16" in self.flags or "amx_tile" in self.flags

    def describe(self) -> str:
        clock = f", {self.mhz:.0f} MHz" if self.mhz else ""
        flags = " ".join(self.flags) or "none of " + "/".join(WATCHED_FLAGS)
        return f"{self.model} ({self.usable_cpus} of {self.logical_cpus} CPUs usable{clock}; {flags})"


def read_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """This machine's `CpuInfo`; outside Linux only what `platform` says."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    first = text.split("\n\n", 1)[0]
    fields = dict(_field(line) for line in first.splitlines() if ":" in line)
    present = set(re.findall(r"\w+", fields.get("flags", "")))
    logical = len(re.findall(r"^processor\s*:", text, re.MULTILINE)) or os.cpu_count() or 1
    try:
        mhz = float(fields["cpu MHz"]) if "cpu MHz" in fields else None
    except ValueError:
        mhz = None
    return CpuInfo(
        model=fields.get("model name") or platform.processor() or "unknown",
        flags=tuple(flag for flag in WATCHED_FLAGS if flag in present),
        logical_cpus=logical,
        usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical,
        mhz=mhz,
        machine=platform.machine(),
    )


def _field(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip(), value.strip()
