"""Errors the store raises on purpose, so callers can tell them from database failures."""

from __future__ import annotations


class StoreClosedError(RuntimeError):
    """The store was closed: no read or write is accepted any more."""

    def __init__(self, what: str = "use") -> None:
        super().__init__(f"the store is closed: cannot {what} after close()")
