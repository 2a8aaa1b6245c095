"""Progress of long work: library code reports here, the CLI decides what the terminal shows.

Library modules log through `logging.getLogger(__name__)` (all under the `medtk` logger) and wrap
long loops in `track(...)` or `counter(...)`; they never print. Used as a library, medtk stays
silent unless the application configures logging. The CLI calls `configure`: INFO lines on stderr
(`-q` only warnings, `-v` debug too), and live bars instead of step lines when stderr is a terminal.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
LOGGER = "medtk"
log = logging.getLogger(LOGGER)
INTERVAL_S = 10.0  # without bars: a progress line at most this often (short work says only "done")
_bars = {"enabled": False}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the call (tests and CliRunner swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"medtk: warning: {text}" if record.levelno >= logging.WARNING else text


def configure(verbosity: int = 0) -> None:
    """-1 quiet (warnings only), 0 normal (progress lines), 1 verbose (debug). Idempotent."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    root = logging.getLogger(LOGGER)
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    _bars["enabled"] = verbosity >= 0 and sys.stderr.isatty()


def showing_progress() -> bool:
    return log.isEnabledFor(logging.INFO)


def keras_verbosity() -> int:
    """`verbose=` for Keras fit: silent when quiet, a bar on a terminal, else one line per epoch."""
    if not showing_progress():
        return 0
    return 1 if _bars["enabled"] else 2


def track(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Iterate `items`, showing progress as a bar (terminal) or a few log lines."""
    if _bars["enabled"] and showing_progress():
        from rich.console import Console
        from rich.progress import track as rich_track

        yield from rich_track(items, total=total, description=description, console=Console(stderr=True), transient=True)
        log.info("%s: %s done", description, total if total is not None else "all")
        return
    done, shown = 0, time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        if time.monotonic() - shown >= INTERVAL_S:
            shown = time.monotonic()
            log.info("%s: %d/%s", description, done, total if total is not None else "?")
    log.info("%s: %d/%s done", description, done, total if total is not None else done)


@contextmanager
def counter(description: str, total: int | None, unit: str = "") -> Iterator[Callable[[int], None]]:
    """A progress counter for work measured in units (bytes downloaded, ...): yields `advance(n)`."""
    if _bars["enabled"] and showing_progress():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda amount: bar.advance(task, amount)
        log.info("%s: done", description)
        return
    state = {"done": 0, "shown": time.monotonic()}

    def advance(amount: int) -> None:
        state["done"] += amount
        if time.monotonic() - state["shown"] >= INTERVAL_S:
            state["shown"] = time.monotonic()
            share = f" ({state['done'] * 100 // total}%)" if total else ""
            log.info("%s: %d%s%s", description, state["done"], unit, share)

    yield advance
    log.info("%s: %d%s done", description, state["done"], unit)
