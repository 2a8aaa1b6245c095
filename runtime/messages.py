"""One-line error text from the exceptions libraries raise (pydicom, LiteRT, cryptography).

A `MedtkError` is printed as one line (docs/ARCHITECTURE.md), and a library's message may run to
many; this module imports nothing, so every runtime module can use it.
"""

from __future__ import annotations

__all__ = ["first_line"]


def first_line(error: BaseException) -> str:
    """An exception's message for a one-line error: its first line, or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
