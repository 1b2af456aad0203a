"""A byte ring with free-running ``u32`` indices in shared memory (console rings).

The producer owns ``prod``, the consumer owns ``cons``; both are ``u32`` at fixed
offsets, read and written whole (:mod:`mirage.xen.words`), and the data area is a
power of two long. An index that claims more bytes than the ring holds raises
:class:`~mirage.xen.ring.RingError`.
"""

from __future__ import annotations

from .ring import RingError
from .words import MASK, Words

__all__ = ["ByteRing"]


class ByteRing:
    def __init__(self, memory: memoryview, data: int, size: int, cons: int, prod: int) -> None:
        if size & (size - 1):
            raise ValueError("ring size must be a power of two")
        self.memory = memory
        self.words = Words(memory)
        self.buffer = memory[data : data + size]
        self.size, self.cons_at, self.prod_at = size, cons, prod

    def _get(self, off: int) -> int:
        return self.words.get(off)

    def used(self) -> int:
        used = (self._get(self.prod_at) - self._get(self.cons_at)) & MASK
        if used > self.size:
            raise RingError(f"byte ring claims {used} bytes of {self.size}")
        return used

    def space(self) -> int:
        return self.size - self.used()

    def read(self, limit: int) -> bytes:
        n = min(limit, self.used())
        cons = self._get(self.cons_at)
        pos = cons & (self.size - 1)
        first = min(n, self.size - pos)
        data = bytes(self.buffer[pos : pos + first]) + bytes(self.buffer[: n - first])
        self.words.set(self.cons_at, cons + n)
        return data

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = min(len(data), self.space())
        prod = self._get(self.prod_at)
        pos = prod & (self.size - 1)
        first = min(n, self.size - pos)
        self.buffer[pos : pos + first] = data[:first]
        self.buffer[: n - first] = data[first:n]
        self.words.set(self.prod_at, prod + n)
        return n
