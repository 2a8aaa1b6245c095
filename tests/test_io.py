import os
import stat

import pytest

from medtk.io import atomic_write_bytes, atomic_write_json


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert target.read_text().strip().endswith("}") and '"a": 2' in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_umask()


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
