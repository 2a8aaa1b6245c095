"""Exponential backoff shared by everything that waits for a peer to recover (a destination, the spool disk)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Waits of `initial`, doubling up to `maximum`; `reset` after a success starts again at `initial`."""

    initial: float
    maximum: float
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        self._next = self.initial

    def next(self) -> float:
        """The wait before the next attempt (and doubles the one after it)."""
        wait, self._next = self._next, min(self._next * 2, self.maximum)
        return wait

    def reset(self) -> None:
        self._next = self.initial
