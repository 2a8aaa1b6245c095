"""`DecodedStage`: the source check's pixels kept at model size, so a raw source is decoded once.

`load_dataset` decodes every file of a folder or CSV source to find the unreadable ones before it splits
(the split depends on which files are usable). Without a stage, `medtk prepare` (and `medtk train`, which
prepares a folder or CSV source into its run folder) then decode each file again at model size. With one,
the check brings each image it decoded to model size at its own channel count (`prepare_input`, the
device's preprocessing) and appends it to an unnamed temporary file (O_TMPFILE: it disappears with the
process, even after kill -9); the shard writer reads it back by item id. Only the id -> offset table stays
in memory.

Exact by construction: a kept image is what `prepare_input` makes of the decoded file. A grey image kept
at one channel serves three (replication commutes with resizing); a colour image asked for at one
channel is decoded again (grey conversion before resizing is not the same pixels as after). A full disk
turns the stage off (logged) and everything is decoded as before; it never turns a file into a "bad" one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from medtk.errors import ImageDecodeError

log = logging.getLogger(__name__)


class DecodedStage:
    """Model-size pixels by item id, written by `keep` (from the check's threads), read by `pixels`."""

    def __init__(self, near: Path, input_size: int) -> None:
        self.folder = _existing_ancestor(Path(near))
        self.input_size = input_size
        self._file = tempfile.TemporaryFile(dir=self.folder)
        self._lock = threading.Lock()
        self._end = 0
        self._where: dict[str, tuple[int, int]] = {}  # item id -> (byte offset, channels kept)
        self._off = False

    def keep(self, item: str, image: np.ndarray) -> None:
        """Stage `item`'s decoded `image` at model size (a no-op once the stage is off)."""
        from medtk.runtime.imaging import prepare_input

        if self._off:
            return
        channels = 1 if image.ndim == 2 or image.shape[2] == 1 else 3
        try:
            data = prepare_input(image, self.input_size, channels).tobytes()
        except ImageDecodeError:
            return  # decoded again by its reader, which records why it fails
        with self._lock:
            offset, self._end = self._end, self._end + len(data)
        try:
            written = os.pwrite(self._file.fileno(), data, offset)
            if written != len(data):
                raise OSError(f"short write ({written} of {len(data)} bytes)")
        except OSError as error:
            self._turn_off(error)
            return
        with self._lock:
            self._where[item] = (offset, channels)

    def pixels(self, item: str, size: int, channels: int) -> np.ndarray | None:
        """`item` as `prepare_input` would make it at `size` and `channels` (read-only), or None: decode it again."""
        where = None if self._off or size != self.input_size else self._where.get(item)
        if where is None:
            return None
        offset, kept = where
        if kept > channels:
            return None
        count = size * size * kept
        data = os.pread(self._file.fileno(), count, offset)
        if len(data) != count:
            raise OSError(f"decoded-image stage: short read of {item} ({len(data)} of {count} bytes)")
        pixels = np.frombuffer(data, dtype=np.uint8).reshape(size, size, kept)
        return np.repeat(pixels, channels, axis=2) if kept < channels else pixels

    def close(self) -> None:
        self._where.clear()
        self._file.close()

    def __enter__(self) -> "DecodedStage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _turn_off(self, error: OSError) -> None:
        with self._lock:
            if self._off:
                return
            self._off = True
            self._where.clear()
        log.warning("no room to keep decoded images in %s (%s); each is decoded again when read", self.folder,
                    error.strerror or error)
        try:
            self._file.truncate(0)
        except OSError:
            pass


def _existing_ancestor(path: Path) -> Path:
    """The folder the output will be in, or the nearest one that exists (nothing is created here)."""
    path = path.absolute()
    while not path.is_dir():
        path = path.parent
    return path
