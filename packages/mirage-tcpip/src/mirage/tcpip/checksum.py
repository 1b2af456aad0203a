"""The Internet checksum: the cffi accelerator if it was built, else pure Python.

``IMPLEMENTATION`` says which one is in use (``"cffi"`` or ``"python"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from . import _checksum_py

__all__ = ["IMPLEMENTATION", "checksum", "ones_sum", "pseudo_header"]

ones_sum: Callable[[bytes], int]
checksum: Callable[[bytes], int]

try:
    _checksum_cffi: Any = importlib.import_module("mirage.tcpip._checksum_cffi")
except ImportError:
    ones_sum = _checksum_py.ones_sum
    checksum = _checksum_py.checksum
    IMPLEMENTATION = "python"
else:
    _sum = _checksum_cffi.lib.mirage_ones_sum
    _from_buffer = _checksum_cffi.ffi.from_buffer

    def ones_sum(data: bytes) -> int:
        if type(data) is not bytes:
            data = _from_buffer(data)
        return int(_sum(data, len(data)))

    def checksum(data: bytes) -> int:
        if type(data) is not bytes:
            data = _from_buffer(data)
        return ~int(_sum(data, len(data))) & 0xFFFF

    IMPLEMENTATION = "cffi"


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """The pseudo-header that TCP, UDP (and ICMPv6) checksums cover: IPv4's
    (RFC 793) for 4-byte addresses, IPv6's (RFC 8200 8.1) for 16-byte ones."""
    if len(src) == 16:
        return src + dst + length.to_bytes(4, "big") + bytes((0, 0, 0, proto))
    return src + dst + bytes((0, proto)) + length.to_bytes(2, "big")
