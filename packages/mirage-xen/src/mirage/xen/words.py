"""Whole-word access to ``u32`` fields of memory shared with another domain or process.

``struct.pack_into``/``unpack_from`` with a ``<I`` format move the four bytes one at
a time, so a reader in another process can see half of an index update (a producer
index that briefly goes backwards by thousands). A ``memoryview`` cast to ``I``
reads and writes an aligned item with one 4-byte copy, which the compiler emits as
one load or store: the peer sees the old or the new value, never a mixture. Fields
are in the machine's byte order, which is what a C peer sharing the page uses (Xen
runs little-endian only).
"""

from __future__ import annotations

__all__ = ["Words"]

MASK = 0xFFFFFFFF


class Words:
    """The ``u32`` fields of ``memory`` at 4-byte aligned byte offsets."""

    __slots__ = ("_words",)

    def __init__(self, memory: memoryview) -> None:
        usable = len(memory) - len(memory) % 4
        self._words = memory[:usable].cast("B").cast("I")

    def get(self, offset: int) -> int:
        if offset & 3:
            raise ValueError(f"offset {offset} is not 4-byte aligned")
        return int(self._words[offset >> 2])

    def set(self, offset: int, value: int) -> None:
        if offset & 3:
            raise ValueError(f"offset {offset} is not 4-byte aligned")
        self._words[offset >> 2] = value & MASK
