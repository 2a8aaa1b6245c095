"""Atomic file writes: a reader (or a crash) never sees half an artifact."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get normal permissions
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    """Make a rename (or a new file) in `path` survive a power cut: its directory entry goes to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Strict JSON: a NaN or infinity anywhere is a ValueError naming its key, before anything is written."""
    from medtk.jsondoc import check_finite

    check_finite(data, Path(path).name)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_write_png(path: Path, rgb) -> Path:
    """Encode an RGB uint8 array as PNG and write it atomically; a one-line MedtkError on failure."""
    import cv2
    import numpy as np

    from medtk.errors import MedtkError

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise MedtkError(f"{path}: cannot encode the picture as PNG")
    try:
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as error:
        raise MedtkError(f"{path}: cannot write ({error.strerror or error})") from None
    return Path(path)
