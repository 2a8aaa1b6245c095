"""A killed `medtk compress` leaves nothing that looks final, and the next run cleans up after it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from medtk.compress.artifacts import PARTIAL_SUFFIX, Staging, remove_stale_staging
from medtk.run import Run


def _killed_staging(run_root: Path) -> Path:
    """A staging folder whose process was killed (SIGKILL) mid-export, as a killed compress leaves it."""
    script = textwrap.dedent(f"""
        import os, signal
        from medtk.compress.artifacts import Staging
        from medtk.run import Run
        staging = Staging(Run({str(run_root)!r}))
        staging.path("int8").write_bytes(b"TFL3" * 1000)
        print(staging.root, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    return Path(done.stdout.strip())


def test_a_killed_export_is_removed_by_the_next_one_and_never_looks_final(tmp_path):
    left = _killed_staging(tmp_path)
    assert left.is_dir() and left.name.startswith(".export-")
    assert [p.name for p in left.iterdir() if not p.name.startswith(".")] == ["int8.tflite" + PARTIAL_SUFFIX]
    assert not list(tmp_path.rglob("*.tflite"))  # nothing that looks like a finished model
    staging = Staging(Run(tmp_path))
    try:
        assert not left.exists()
        assert staging.path("float32").name == "float32.tflite.partial"
        assert remove_stale_staging(tmp_path) == []  # a live staging folder (its lock held) is left alone
        assert staging.root.is_dir()
    finally:
        staging.discard()
    assert not list(tmp_path.glob(".export-*"))


def test_an_old_unlocked_staging_folder_is_removed_a_fresh_one_kept(tmp_path):
    old, fresh = tmp_path / ".export-old", tmp_path / ".export-fresh"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "int8.tflite").write_bytes(b"x")
    os.utime(old, (0, 0))
    assert remove_stale_staging(tmp_path) == [old]
    assert fresh.is_dir()
