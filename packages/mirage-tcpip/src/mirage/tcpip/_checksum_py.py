"""The Internet checksum (RFC 1071) in pure Python.

The 16-bit one's complement sum of a byte string equals the big-endian integer it
spells modulo 0xFFFF (because 2**16 = 1 modulo 0xFFFF), with 0xFFFF standing for a
non-zero multiple; ``int.from_bytes`` and one modulo run in C, so this is fast.
"""

from __future__ import annotations

__all__ = ["ones_sum", "checksum"]


def ones_sum(data: bytes) -> int:
    """The folded 16-bit one's complement sum of ``data`` (odd length: zero-padded)."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    if s == 0 and n:
        return 0xFFFF
    return s


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data``: the complement of its one's complement sum."""
    return ~ones_sum(data) & 0xFFFF
