"""The node's log policy: no DICOM header value reaches the log through a third-party library.

pydicom, pynetdicom and highdicom log messages that quote element values ("Invalid value for VR IS:
'Yamada^Taro'", data set dumps at DEBUG), and pydicom also raises each of its as a Python warning,
which Python prints to stderr. While a node runs:

- every log record of those loggers (and uvicorn's error logger, whose tracebacks quote exceptions) is
  made as its logger, its level and a fixed text, whichever handler later receives it: the policy sits
  in the record factory, so a handler a library adds for itself sees only the reduced record too;
- every Python warning not raised by medtk's own code is logged as its category and its package, with
  the same fixed text, instead of being printed.

`install()` when a node starts and `remove()` when it stops; nodes in one process share one
installation (the last to stop removes it). medtk's own messages name no patient data (they name
instances by a hash of the SOP Instance UID), so they pass unchanged.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

CONTAINED = ("pydicom", "pynetdicom", "highdicom", "uvicorn.error")
WITHHELD = "message withheld by medtk serve: third-party messages may quote DICOM header values"

log = logging.getLogger(__name__)
_lock = threading.Lock()
_installed = 0
_previous: dict[str, Any] = {}


def contained(logger_name: str) -> bool:
    return any(logger_name == name or logger_name.startswith(name + ".") for name in CONTAINED)


def install() -> None:
    """Reduce third-party records and warnings from now on (until the matching `remove`)."""
    global _installed
    with _lock:
        _installed += 1
        if _installed > 1:
            return
        _previous.update(factory=logging.getLogRecordFactory(), showwarning=warnings.showwarning)
        logging.setLogRecordFactory(_reduced_records(_previous["factory"]))
        warnings.showwarning = _show_warning


def remove() -> None:
    """Undo `install` once every node that installed it has stopped."""
    global _installed
    with _lock:
        if _installed == 0:
            return
        _installed -= 1
        if _installed > 0:
            return
        logging.setLogRecordFactory(_previous.pop("factory"))
        warnings.showwarning = _previous.pop("showwarning")


def _reduced_records(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(name: str, level: int, fn: str, lno: int, msg: Any, args: Any, exc_info: Any, func: str | None = None,
             sinfo: str | None = None, **kwargs: Any) -> logging.LogRecord:
        if contained(name):
            msg, args, exc_info, sinfo = WITHHELD, (), None, None
        return factory(name, level, fn, lno, msg, args, exc_info, func, sinfo, **kwargs)

    return make


@functools.lru_cache(maxsize=1)
def _own_folders() -> tuple[Path, ...]:
    """Where medtk's packages live (they map to separate folders: setuptools package-dir)."""
    from importlib.util import find_spec

    return tuple({Path(find_spec(name).origin).resolve().parent for name in ("medtk", "medtk.runtime", "medtk.serve")})


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """medtk's own warnings as Python shows them; anyone else's reduced to category and package."""
    path = Path(filename).resolve()
    shown = _previous.get("showwarning")
    if shown is not None and any(folder in path.parents for folder in _own_folders()):
        shown(message, category, filename, lineno, file, line)
        return
    package = next((part for part in reversed(path.parts[:-1]) if part.endswith("-packages")), None)
    origin = path.parts[path.parts.index(package) + 1] if package else path.stem
    log.warning("%s from %s: %s", category.__name__, origin, WITHHELD)
