"""Shared ``u32`` fields are read and written whole, never torn between processes."""

from __future__ import annotations

import mmap
import os

import pytest

from mirage.xen.words import Words

WRITES = 300_000
STEP = 255  # every write carries into the next byte most of the time


def test_get_set_round_trip_and_mask() -> None:
    words = Words(memoryview(bytearray(10)))  # the odd tail is not addressable
    words.set(4, 0x1_2345_6789)
    assert words.get(4) == 0x2345_6789
    with pytest.raises(ValueError, match="aligned"):
        words.get(2)
    with pytest.raises(ValueError, match="aligned"):
        words.set(6, 1)
    with pytest.raises(IndexError):
        words.get(8)


def test_a_reader_in_another_process_never_sees_a_torn_index() -> None:
    # struct.pack_into("<I") writes byte by byte: with it, this reader saw the
    # index go backwards tens of thousands of times (a vchan failure in CI).
    memory = mmap.mmap(-1, mmap.PAGESIZE)
    view = memoryview(memory)
    words = Words(view)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        value = 0
        for _ in range(WRITES):
            value += STEP
            words.set(8, value)
        os._exit(0)
    last = backwards = 0
    try:
        while last != WRITES * STEP:
            seen = words.get(8)
            if seen < last:
                backwards += 1
            last = max(last, seen)
    finally:
        os.waitpid(pid, 0)
    del words, view
    memory.close()
    assert backwards == 0
