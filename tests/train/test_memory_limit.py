"""The memory a process may use counts the limit of the cgroup it runs in and of every ancestor, not just
the top of /sys/fs/cgroup (the only file read before: a process under systemd-run or in a Slurm job saw
no limit, and `medtk train` chose the in-memory pipeline for data that could not fit)."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from medtk.train.memory import usable_memory

GiB = 2**30


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def meminfo(tmp_path) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal: {24 * GiB // 1024} kB\nMemAvailable: {20 * GiB // 1024} kB\n")
    return path


def test_the_tightest_v1_level_from_the_process_cgroup_up_wins(tmp_path, meminfo):
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc-cgroup"
    proc.write_text("9:name=systemd:/\n4:memory:/slurm/job_7/step_0\n0::/\n")
    write(root / "memory/memory.limit_in_bytes", "9223372036854771712")  # the top: no limit
    write(root / "memory/memory.usage_in_bytes", str(5 * GiB))
    write(root / "memory/slurm/job_7/memory.limit_in_bytes", str(4 * GiB))  # the job's limit
    write(root / "memory/slurm/job_7/memory.usage_in_bytes", str(3 * GiB))
    write(root / "memory/slurm/job_7/step_0/memory.limit_in_bytes", str(8 * GiB))
    write(root / "memory/slurm/job_7/step_0/memory.usage_in_bytes", str(2 * GiB))
    assert usable_memory(proc, root, meminfo) == 1 * GiB  # job_7: 4 - 3, less than the step's 8 - 2


def test_a_v2_limit_on_an_ancestor_counts_and_max_means_none(tmp_path, meminfo):
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/system.slice/medtk.scope\n")
    write(root / "system.slice/medtk.scope/memory.max", "max")
    write(root / "system.slice/medtk.scope/memory.current", str(GiB))
    write(root / "system.slice/memory.max", str(3 * GiB))
    write(root / "system.slice/memory.current", str(GiB))
    assert usable_memory(proc, root, meminfo) == 2 * GiB


def test_without_cgroup_limits_it_is_the_available_ram(tmp_path, meminfo):
    proc = tmp_path / "proc-cgroup"
    proc.write_text("4:memory:/gone\n0::/\n")  # a level without files (another namespace) is not a limit
    assert usable_memory(proc, tmp_path / "nothing", meminfo) == 20 * GiB
    assert usable_memory(tmp_path / "no-proc-file", tmp_path / "nothing", meminfo) == 20 * GiB


def _own_v1_memory_cgroup() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return folder if os.access(folder, os.W_OK) else None
    return None


def test_a_real_cgroup_limit_is_seen_from_inside(tmp_path):
    """A child process placed in a real cgroup v1 with a 1 GiB limit sees at most 1 GiB."""
    parent = _own_v1_memory_cgroup()
    if parent is None:
        pytest.skip("needs a writable cgroup v1 memory controller (root); the logic is tested on files above")
    cgroup = parent / f"medtk-test-{uuid.uuid4().hex[:8]}"
    cgroup.mkdir()
    try:
        (cgroup / "memory.limit_in_bytes").write_text(str(GiB))
        code = "from medtk.train.memory import usable_memory; print(usable_memory())"
        procs = cgroup / "cgroup.procs"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             preexec_fn=lambda: procs.write_text(str(os.getpid())))
        assert 0 < int(out.stdout) <= GiB
    finally:
        cgroup.rmdir()
