"""Threads that cannot end silently: an unexpected end is logged, and health sees the thread is not alive."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


def supervised_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread running `target`; if `target` raises, the error's type is logged at CRITICAL.

    Only the type: messages of errors raised while handling instances may quote their header values.
    `health.py` reports every node thread that is no longer alive while the node runs.
    """

    def run() -> None:
        try:
            target()
        except BaseException as error:
            log.critical("thread %s ended unexpectedly (%s); /healthz reports it", name, type(error).__name__)

    return threading.Thread(target=run, name=name, daemon=True)
