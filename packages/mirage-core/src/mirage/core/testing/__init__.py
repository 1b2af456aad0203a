"""The conformance kit: base test classes that implementations subclass.

Every implementation of a module type passes the same tests. A package subclasses
the class for its module type in its own tests and implements the ``make_*``
coroutine that connects a fresh device::

    from mirage.core.testing import KvRwTests
    from mirage.kv import MemoryKv


    class TestMemoryKv(KvRwTests):
        async def make_kv_rw(self, contents):
            return await MemoryKv.connect(contents=contents)

The classes are plain pytest classes (their names do not start with ``Test``, so
only subclasses are collected). Each test is a synchronous method that runs its
coroutine with :func:`asyncio.run` under ``timeout`` seconds, so no asyncio plugin
is needed; use :func:`async_test` for a subclass's own async tests. Property tests
use hypothesis. Both come with the ``testing`` extra of mirage-core.
"""

from __future__ import annotations

from ._block import BlockTests
from ._devices import ClockTests, ConsoleTests, RandomTests, SleepTests
from ._flow import FlowTests, read_exactly, read_to_eof
from ._kv import SAMPLE, KvRoTests, KvRwTests
from ._kv_model import KvModel, KvRwStateMachine, kv_rw_state_machine
from ._run import AsyncTests, async_test, disconnect, run
from ._stack import StackTests

__all__ = [
    "AsyncTests",
    "BlockTests",
    "ClockTests",
    "ConsoleTests",
    "FlowTests",
    "KvModel",
    "KvRoTests",
    "KvRwStateMachine",
    "KvRwTests",
    "RandomTests",
    "SAMPLE",
    "SleepTests",
    "StackTests",
    "async_test",
    "disconnect",
    "kv_rw_state_machine",
    "read_exactly",
    "read_to_eof",
    "run",
]
