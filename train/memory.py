"""How much memory this process may use: available RAM, and the memory limit of every cgroup above it.

A limit is set on the cgroup the process runs in (systemd-run, a Slurm job, a container runtime without
a cgroup namespace) or on one of its ancestors, not on the top of `/sys/fs/cgroup`, which is all a
process in a sub-cgroup would see if it looked there. So the process's own cgroup is read from
`/proc/self/cgroup` and every level from it up to the root is checked (cgroup v1's memory controller
and cgroup v2); the least headroom wins. Usage counts the page cache, so the headroom is conservative.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class CgroupLevel:
    """One cgroup's memory files: its limit ("max" or a huge number: none) and its current usage."""

    limit: Path
    usage: Path

    def headroom(self) -> int | None:
        """Bytes left under this level's limit, or None when it has no limit (or no readable files)."""
        try:
            limit = self.limit.read_text().strip()
            if limit == "max":
                return None
            return int(limit) - int(self.usage.read_text().strip())
        except (OSError, ValueError):
            return None


def usable_memory(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT, meminfo: Path = MEMINFO) -> int:
    """Bytes this process may still use: the least of available RAM and every enclosing cgroup's headroom."""
    available = _meminfo_available(meminfo)
    for level in cgroup_levels(proc_cgroup, root):
        headroom = level.headroom()
        if headroom is not None:
            available = min(available, headroom)
    return max(available, 0)


def cgroup_levels(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> list[CgroupLevel]:
    """The memory files of this process's cgroup and of each ancestor up to the root, v1 and v2."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    levels = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and not controllers:  # cgroup v2 (unified); on a hybrid host it has no memory files
            base, limit, usage = root, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # cgroup v1's memory controller
            base, limit, usage = root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        for folder in _ancestors(base, path):
            levels.append(CgroupLevel(limit=folder / limit, usage=folder / usage))
    return levels


def _ancestors(base: Path, path: str) -> list[Path]:
    """`base/a/b`, `base/a`, `base` for the cgroup path `/a/b`."""
    parts = [part for part in path.strip().split("/") if part and part != ".."]
    return [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _meminfo_available(meminfo: Path) -> int:
    """MemAvailable (free memory plus the page cache the kernel can drop), else free pages."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
