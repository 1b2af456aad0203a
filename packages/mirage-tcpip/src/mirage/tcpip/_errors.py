"""Errors of the stack: malformed input (remote) and misuse (local)."""

from __future__ import annotations

__all__ = ["DecodeError"]


class DecodeError(ValueError):
    """A frame, packet or segment that cannot be decoded; ``layer`` names where.

    The stack drops such input and counts it; it never escapes a driver.
    """

    def __init__(self, layer: str, reason: str) -> None:
        super().__init__(f"{layer}: {reason}")
        self.layer = layer
        self.reason = reason
