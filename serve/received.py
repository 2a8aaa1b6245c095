"""C-STORE data sets received into files as they arrive, never whole in memory.

With `STORE_RECV_CHUNKED_DATASET` pynetdicom writes each data set fragment to a temporary file (in the
system's temporary folder, `$TMPDIR`) and gives the handler its path; it removes the file after the
handler returns. Before, the data set sat in memory, then again decoded and again encoded for the spool
(about 3x its size per association). What is left here:

- `readable_file`: the file the header checks and the spool read; a deflated data set is inflated in
  bounded steps first (inflate.py), since pydicom would inflate it whole;
- `read_header`: the data set with its large values (pixels, private blobs) left on disk;
- `discard_unfinished`: pynetdicom leaves the temporary file of a message that never completed (the
  connection closed mid-data-set) in `$TMPDIR` for good; a peer that aborts its transfers over and over
  would fill the disk.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from medtk.serve.inflate import inflate_file

log = logging.getLogger(__name__)

DEFER_BYTES = 4096  # values longer than this stay on disk until read


def receive_into_files() -> None:
    """Process-wide pynetdicom setting: the node is the only C-STORE receiver in its process."""
    from pynetdicom import _config

    _config.STORE_RECV_CHUNKED_DATASET = True


def readable_file(received: Path, transfer_syntax: str, scratch: Path, limit: int) -> Path:
    """`received`, or for a Deflated data set a new file in `scratch` holding it inflated (the caller
    removes it); raises `InflatesTooLarge` past `limit` bytes."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    if transfer_syntax != DeflatedExplicitVRLittleEndian:
        return received
    handle, name = tempfile.mkstemp(dir=scratch, prefix=".inflated-", suffix=".dcm")
    os.close(handle)
    inflated = Path(name)
    try:
        inflate_file(received, inflated, limit)
    except BaseException:
        inflated.unlink(missing_ok=True)
        raise
    return inflated


def read_header(path: Path) -> Any:
    """The data set in `path` with values over `DEFER_BYTES` read only if asked for."""
    import pydicom

    return pydicom.dcmread(path, defer_size=DEFER_BYTES)


def discard_unfinished(event: Any) -> None:
    """pynetdicom `EVT_CONN_CLOSE` handler: remove the temporary file of a data set still arriving."""
    message = getattr(event.assoc.dimse, "message", None)
    unfinished = getattr(message, "_data_set_file", None)
    if unfinished is None:
        return
    unfinished.close()
    Path(unfinished.name).unlink(missing_ok=True)
    log.info("removed a data set that did not arrive whole")
