"""The conformance kit itself: reference devices pass it, broken ones fail it.

Each reference device here is the smallest thing that meets its contract; each broken
one gets a single thing wrong, and the test that should notice is called directly and
must raise ``AssertionError``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import Phase, settings

from mirage.core.testing import (
    BlockTests,
    ClockTests,
    ConsoleTests,
    FlowTests,
    KvModel,
    KvRwTests,
    RandomTests,
    SleepTests,
    StackTests,
)
from mirage.core.types import (
    BlockError,
    BlockInfo,
    BlockOutOfRange,
    BlockReadOnly,
    Flow,
    FlowClosed,
    KvDictionaryExpected,
    KvKind,
    KvNotFound,
    KvValueExpected,
    TcpHandler,
    UdpCallback,
    kv_key,
)

pytest_plugins = ("pytester",)

FAILURE = (AssertionError, pytest.fail.Exception)
"""What a failing kit test raises: an assertion, or ``pytest.raises`` not satisfied."""

QUIET = settings(
    KvRwTests.state_machine_settings,
    database=None,
    derandomize=True,
    report_multiple_bugs=False,
    phases=(Phase.generate,),
)
"""For stores meant to fail: the same examples every run, not shrunk, not saved."""

# ---------------------------------------------------------------------------------
# Key-value stores


class DictKv:
    """A read-write store over :class:`KvModel`."""

    def __init__(self, contents: Mapping[str, bytes]) -> None:
        self.model = KvModel()
        self.mtimes: dict[str, float] = {}
        for key, value in contents.items():
            self.model.set(kv_key(key), value)
            self.mtimes[kv_key(key)] = time.time()

    @classmethod
    async def connect(cls, contents: Mapping[str, bytes]) -> DictKv:
        return cls(contents)

    async def disconnect(self) -> None:
        pass

    def _value(self, key: str) -> bytes:
        kind = self.model.kind(key)
        if kind is None:
            raise KvNotFound(key)
        if kind is KvKind.DICTIONARY:
            raise KvValueExpected(key)
        return self.model.values[key]

    async def exists(self, key: str) -> KvKind | None:
        return self.model.kind(kv_key(key))

    async def get(self, key: str) -> bytes:
        return self._value(kv_key(key))

    async def get_partial(self, key: str, offset: int, length: int) -> bytes:
        return self._value(kv_key(key))[offset : offset + length]

    async def list(self, key: str) -> list[tuple[str, KvKind]]:
        key = kv_key(key)
        kind = self.model.kind(key)
        if kind is None:
            raise KvNotFound(key)
        if kind is KvKind.VALUE:
            raise KvDictionaryExpected(key)
        return self.model.children(key)

    async def last_modified(self, key: str) -> float:
        key = kv_key(key)
        if self.model.kind(key) is None:
            raise KvNotFound(key)
        return self.mtimes.get(key, 0.0)

    async def digest(self, key: str) -> bytes:
        key = kv_key(key)
        if self.model.kind(key) is KvKind.DICTIONARY:
            return hashlib.sha256(repr(await self.list(key)).encode()).digest()
        return hashlib.sha256(self._value(key)).digest()

    async def size(self, key: str) -> int:
        return len(self._value(kv_key(key)))

    async def set(self, key: str, data: bytes) -> None:
        key = kv_key(key)
        error = self.model.write_error(key)
        if error is not None:
            raise error(key)
        self.model.set(key, data)
        self.mtimes[key] = time.time()

    async def set_partial(self, key: str, offset: int, data: bytes) -> None:
        key = kv_key(key)
        error = self.model.write_error(key)
        if error is not None:
            raise error(key)
        self.model.set_partial(key, offset, data)
        self.mtimes[key] = time.time()

    async def remove(self, key: str) -> None:
        key = kv_key(key)
        if self.model.kind(key) is None:
            raise KvNotFound(key)
        self.model.remove(key)

    async def rename(self, source: str, dest: str) -> None:
        source, dest = kv_key(source), kv_key(dest)
        error = self.model.rename_error(source, dest)
        if error is not None:
            raise error(dest)
        self.model.rename(source, dest)


class TestDictKv(KvRwTests):
    async def make_kv_rw(self, contents: Mapping[str, bytes]) -> DictKv:
        return await DictKv.connect(contents)


class UnsortedKv(DictKv):
    async def list(self, key: str) -> list[tuple[str, KvKind]]:
        return list(reversed(await super().list(key)))


class OffsetlessKv(DictKv):
    async def get_partial(self, key: str, offset: int, length: int) -> bytes:
        return self._value(kv_key(key))[:length]


class CopyingKv(DictKv):
    """Its rename of a value copies and keeps the source."""

    async def rename(self, source: str, dest: str) -> None:
        source, dest = kv_key(source), kv_key(dest)
        if self.model.kind(source) is KvKind.VALUE and self.model.write_error(dest) is None:
            self.model.set(dest, self.model.values[source])
            return
        await super().rename(source, dest)


class ShallowRemoveKv(DictKv):
    """Its remove of a dictionary forgets the dictionary but not what is below it."""

    async def remove(self, key: str) -> None:
        key = kv_key(key)
        if self.model.kind(key) is KvKind.DICTIONARY and key:
            self.model.dicts.discard(key)
            return
        await super().remove(key)


def broken_kv_tests(store: type[DictKv]) -> KvRwTests:
    class Broken(KvRwTests):
        state_machine_settings = QUIET

        async def make_kv_rw(self, contents: Mapping[str, bytes]) -> DictKv:
            return await store.connect(contents)

    return Broken()


@pytest.mark.parametrize(
    ("store", "test"),
    [
        (UnsortedKv, "test_list_root"),
        (UnsortedKv, "test_list_sorted"),
        (OffsetlessKv, "test_get_partial"),
        (CopyingKv, "test_rename_value"),
        (CopyingKv, "test_state_machine"),
        (ShallowRemoveKv, "test_remove_dictionary"),
        (ShallowRemoveKv, "test_state_machine"),
    ],
)
def test_broken_kv_fails(store: type[DictKv], test: str) -> None:
    with pytest.raises(FAILURE):
        getattr(broken_kv_tests(store), test)()


def test_broken_kv_passes_what_it_does_not_break() -> None:
    broken_kv_tests(UnsortedKv).test_get_partial()
    broken_kv_tests(OffsetlessKv).test_list_root()


# ---------------------------------------------------------------------------------
# Block devices


class BytesBlock:
    def __init__(self, sectors: int, sector_size: int, read_write: bool) -> None:
        self.data = bytearray(sectors * sector_size)
        self.sector_size = sector_size
        self.sectors = sectors
        self.read_write = read_write

    async def disconnect(self) -> None:
        pass

    async def info(self) -> BlockInfo:
        return BlockInfo(self.read_write, self.sector_size, self.sectors)

    def _check(self, sector: int, count: int) -> None:
        if sector < 0 or count < 0 or sector + count > self.sectors:
            raise BlockOutOfRange(f"sectors {sector}+{count} of {self.sectors}")

    async def read(self, sector: int, count: int) -> bytes:
        self._check(sector, count)
        ss = self.sector_size
        return bytes(self.data[sector * ss : (sector + count) * ss])

    async def write(self, sector: int, data: bytes) -> None:
        if not self.read_write:
            raise BlockReadOnly("read-only")
        count, rest = divmod(len(data), self.sector_size)
        if rest:
            raise BlockError("not a whole number of sectors")
        self._check(sector, count)
        self.data[sector * self.sector_size : sector * self.sector_size + len(data)] = data


class TestBytesBlock(BlockTests):
    async def make_block(
        self, sectors: int, sector_size: int, read_write: bool = True
    ) -> BytesBlock:
        return BytesBlock(sectors, sector_size, read_write)


class TestBytesBlock4k(TestBytesBlock):
    sector_size = 4096


class ClippingBlock(BytesBlock):
    """Writes what fits and drops the rest, instead of refusing."""

    async def write(self, sector: int, data: bytes) -> None:
        end = min(len(data), (self.sectors - sector) * self.sector_size)
        if sector >= 0:
            self.data[sector * self.sector_size : sector * self.sector_size + end] = data[:end]


def test_broken_block_fails() -> None:
    class Broken(BlockTests):
        async def make_block(
            self, sectors: int, sector_size: int, read_write: bool = True
        ) -> BytesBlock:
            return ClippingBlock(sectors, sector_size, read_write)

    for test in ("test_out_of_range", "test_partial_sector_write", "test_read_only"):
        with pytest.raises(FAILURE):
            getattr(Broken(), test)()
    with pytest.raises(FAILURE, match="DID NOT RAISE"):
        Broken().test_writes_match_model()


# ---------------------------------------------------------------------------------
# Flows


class Pipe:
    """One direction of a :class:`PipeFlow` pair."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.eof = False
        self.readable = asyncio.Event()

    def end(self) -> None:
        self.eof = True
        self.readable.set()


class PipeFlow:
    def __init__(self, inbound: Pipe, outbound: Pipe) -> None:
        self.inbound, self.outbound = inbound, outbound

    @classmethod
    def pair(cls) -> tuple[PipeFlow, PipeFlow]:
        there, back = Pipe(), Pipe()
        return cls(back, there), cls(there, back)

    async def read(self) -> bytes:
        await self.inbound.readable.wait()
        data = bytes(self.inbound.buf)
        self.inbound.buf.clear()
        if not self.inbound.eof:
            self.inbound.readable.clear()
        await asyncio.sleep(0)
        return data

    async def write(self, data: bytes) -> None:
        if self.outbound.eof:
            raise FlowClosed("shut down")
        self.outbound.buf += data
        if data:
            self.outbound.readable.set()
        await asyncio.sleep(0)

    async def writev(self, bufs: Sequence[bytes]) -> None:
        await self.write(b"".join(bufs))

    async def shutdown(self) -> None:
        self.outbound.end()

    async def close(self) -> None:
        self.outbound.end()


class TestPipeFlow(FlowTests):
    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        return PipeFlow.pair()


class NoEofFlow(PipeFlow):
    async def shutdown(self) -> None:
        pass


class SilentCloseFlow(PipeFlow):
    async def write(self, data: bytes) -> None:
        self.outbound.buf += data
        self.outbound.readable.set()


def test_broken_flow_fails() -> None:
    class NoEof(FlowTests):
        timeout = 0.5

        async def make_flow_pair(self) -> tuple[Flow, Flow]:
            return NoEofFlow.pair()

    class SilentClose(FlowTests):
        async def make_flow_pair(self) -> tuple[Flow, Flow]:
            return SilentCloseFlow.pair()

    with pytest.raises(AssertionError, match="timed out"):
        NoEof().test_shutdown()
    with pytest.raises(FAILURE):
        SilentClose().test_write_after_close()


# ---------------------------------------------------------------------------------
# Stacks: an in-process loopback


class LoopIp:
    def configured_ips(self) -> list[str]:
        return ["10.0.0.1"]

    def mtu(self, dst: str) -> int:
        return 1500

    async def write(self, dst: str, proto: int, payload: bytes) -> None:
        pass


class LoopTcp:
    def __init__(self) -> None:
        self.listeners: dict[int, TcpHandler] = {}
        self.tasks: set[asyncio.Future[None]] = set()

    async def connect(self, dst: str, port: int) -> Flow:
        handler = self.listeners.get(port)
        if dst != "10.0.0.1" or handler is None:
            raise ConnectionRefusedError(f"{dst}:{port}")
        client, server = PipeFlow.pair()
        task = asyncio.ensure_future(handler(server))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return client

    async def listen(self, port: int, handler: TcpHandler) -> None:
        self.listeners[port] = handler

    async def unlisten(self, port: int) -> None:
        self.listeners.pop(port, None)


class LoopUdp:
    def __init__(self) -> None:
        self.listeners: dict[int, UdpCallback] = {}
        self.ports = itertools.count(49152)

    async def listen(self, port: int, callback: UdpCallback) -> None:
        self.listeners[port] = callback

    async def unlisten(self, port: int) -> None:
        self.listeners.pop(port, None)

    async def write(
        self, dst: str, dst_port: int, payload: bytes, *, src_port: int | None = None
    ) -> None:
        callback = self.listeners.get(dst_port)
        if callback is not None:
            result = callback("10.0.0.1", src_port or next(self.ports), payload)
            if result is not None:
                await result


class LoopStack:
    def __init__(self) -> None:
        self._tcp, self._udp, self._ip = LoopTcp(), LoopUdp(), LoopIp()

    @property
    def tcp(self) -> LoopTcp:
        return self._tcp

    @property
    def udp(self) -> LoopUdp:
        return self._udp

    @property
    def ip(self) -> LoopIp:
        return self._ip

    async def disconnect(self) -> None:
        for task in list(self._tcp.tasks):
            task.cancel()


class TestLoopStack(StackTests):
    async def make_stack(self) -> LoopStack:
        return LoopStack()

    def peer_address(self) -> str:
        return "10.0.0.1"


class NeverUnlistenTcp(LoopTcp):
    async def unlisten(self, port: int) -> None:
        pass


def test_broken_stack_fails() -> None:
    class Broken(StackTests):
        async def make_stack(self) -> LoopStack:
            stack = LoopStack()
            stack._tcp = NeverUnlistenTcp()
            return stack

        def peer_address(self) -> str:
            return "10.0.0.1"

    with pytest.raises(AssertionError, match="after unlisten"):
        Broken().test_tcp_unlisten()


# ---------------------------------------------------------------------------------
# Sleep, clock, random, console


class AsyncioSleep:
    async def sleep_ns(self, ns: int) -> None:
        await asyncio.sleep(ns / 1e9)


class HostClock:
    def now(self) -> float:
        return time.time()

    def elapsed_ns(self) -> int:
        return time.monotonic_ns()


class HostRandom:
    def generate(self, n: int) -> bytes:
        return os.urandom(n)


class BufferConsole(PipeFlow):
    def __init__(self) -> None:
        super().__init__(Pipe(), Pipe())

    async def log(self, line: str) -> None:
        await self.write(line.encode() + b"\n")


class TestAsyncioSleep(SleepTests):
    async def make_sleep(self) -> AsyncioSleep:
        return AsyncioSleep()


class TestHostClock(ClockTests):
    async def make_clock(self) -> HostClock:
        return HostClock()


class TestHostRandom(RandomTests):
    async def make_random(self) -> HostRandom:
        return HostRandom()


class TestBufferConsole(ConsoleTests):
    async def make_console(self) -> BufferConsole:
        return BufferConsole()

    async def console_output(self, console: object) -> bytes:
        assert isinstance(console, BufferConsole)
        return bytes(console.outbound.buf)


class BackwardsClock(HostClock):
    def __init__(self) -> None:
        self.ticks = itertools.count(10**9, -1)

    def elapsed_ns(self) -> int:
        return next(self.ticks)


class BiasedRandom:
    def generate(self, n: int) -> bytes:
        return bytes(b & 0x7F for b in os.urandom(n))


class NoNewlineConsole(BufferConsole):
    async def log(self, line: str) -> None:
        await self.write(line.encode())


def test_broken_small_devices_fail() -> None:
    class Backwards(ClockTests):
        async def make_clock(self) -> HostClock:
            return BackwardsClock()

    class Biased(RandomTests):
        async def make_random(self) -> BiasedRandom:
            return BiasedRandom()

    class NoNewline(TestBufferConsole):
        async def make_console(self) -> BufferConsole:
            return NoNewlineConsole()

    with pytest.raises(AssertionError):
        Backwards().test_elapsed_is_monotonic()
    with pytest.raises(AssertionError):
        Biased().test_bytes_spread()
    with pytest.raises(AssertionError):
        NoNewline().test_log()


# ---------------------------------------------------------------------------------
# Collection by pytest


def test_pytest_collects_subclasses_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os

        from mirage.core.testing import KvRoTests, RandomTests


        class TestGood(RandomTests):
            async def make_random(self):
                return Rng(os.urandom)


        class TestConstant(RandomTests):
            async def make_random(self):
                return Rng(bytes)


        class Rng:
            def __init__(self, source):
                self.generate = source
        """
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        ["*TestConstant::test_calls_differ*", "*TestConstant::test_bytes_spread*"]
    )
