"""Module types: the small device interfaces an application is written against.

Every interface is a :class:`typing.Protocol`. An implementation package provides one
of them (and may not widen or rename it); applications and other implementations see
only the protocol. All I/O is ``async``. Every implementation also has a classmethod
``async connect(...)`` that returns a ready instance and ``async disconnect()``.

Errors are part of the contract: a key-value store that misses a key raises
:class:`KvNotFound`, whatever its backing storage.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Arp",
    "Block",
    "BlockError",
    "BlockInfo",
    "BlockReadOnly",
    "BlockOutOfRange",
    "Clock",
    "Console",
    "Device",
    "Ethernet",
    "Flow",
    "FlowClosed",
    "Ip",
    "KvAlreadyPresent",
    "KvDictionaryExpected",
    "KvError",
    "KvKind",
    "KvNotFound",
    "KvRo",
    "KvRw",
    "KvValueExpected",
    "Network",
    "NetworkStats",
    "Random",
    "Resolver",
    "Sleep",
    "Stack",
    "Tcp",
    "Udp",
    "kv_key",
]


@runtime_checkable
class Device(Protocol):
    """What every device has besides its module type: the generated main calls
    ``disconnect`` (in reverse order of connection) when the unikernel stops."""

    async def disconnect(self) -> None: ...


# ---------------------------------------------------------------------------
# Flows and the console


class FlowClosed(Exception):
    """Writing to a flow that was shut down or closed (ours or the peer's)."""


@runtime_checkable
class Flow(Protocol):
    """A reliable, ordered byte stream (a TCP connection, a console, a vchan)."""

    async def read(self) -> bytes:
        """The next bytes available; ``b""`` once the peer has shut down its side."""
        ...

    async def write(self, data: bytes) -> None:
        """Send ``data``; raises :class:`FlowClosed` if the flow cannot be written."""
        ...

    async def writev(self, bufs: Sequence[bytes]) -> None: ...

    async def shutdown(self) -> None:
        """Half close: no more writes from this side; reads go on."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Console(Flow, Device, Protocol):
    async def log(self, line: str) -> None:
        """Write one line of text, newline added."""
        ...


# ---------------------------------------------------------------------------
# Time and randomness


@runtime_checkable
class Sleep(Device, Protocol):
    async def sleep_ns(self, ns: int) -> None: ...


@runtime_checkable
class Clock(Device, Protocol):
    def now(self) -> float:
        """POSIX time in seconds (may jump)."""
        ...

    def elapsed_ns(self) -> int:
        """Monotonic nanoseconds since an arbitrary origin."""
        ...


@runtime_checkable
class Random(Device, Protocol):
    def generate(self, n: int) -> bytes: ...


# ---------------------------------------------------------------------------
# Network layers (after mirage-net, ethernet, arp, mirage-tcpip)


@dataclass(slots=True)
class NetworkStats:
    """Counters of a network device since it started."""

    rx_bytes: int = 0
    rx_packets: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0


FrameCallback = Callable[[bytes], Awaitable[None] | None]


@runtime_checkable
class Network(Device, Protocol):
    """An Ethernet interface: whole frames in and out."""

    @property
    def mac(self) -> bytes: ...

    @property
    def mtu(self) -> int: ...

    async def write(self, frame: bytes) -> None: ...

    async def listen(self, callback: FrameCallback) -> None:
        """Deliver every received frame to ``callback`` until disconnected."""
        ...

    def stats(self) -> NetworkStats: ...


@runtime_checkable
class Ethernet(Protocol):
    @property
    def mac(self) -> bytes: ...

    @property
    def mtu(self) -> int: ...

    async def write(self, dst: bytes, ethertype: int, payload: bytes) -> None: ...


@runtime_checkable
class Arp(Protocol):
    async def query(self, ip: str) -> bytes:
        """The MAC address of ``ip`` on the link."""
        ...

    def get_ips(self) -> list[str]: ...


@runtime_checkable
class Ip(Protocol):
    def configured_ips(self) -> list[str]: ...

    def mtu(self, dst: str) -> int: ...

    async def write(self, dst: str, proto: int, payload: bytes) -> None: ...


UdpCallback = Callable[[str, int, bytes], Awaitable[None] | None]
TcpHandler = Callable[[Flow], Awaitable[None]]


@runtime_checkable
class Udp(Protocol):
    async def listen(self, port: int, callback: UdpCallback) -> None:
        """Call ``callback(src, src_port, payload)`` for datagrams to ``port``."""
        ...

    async def unlisten(self, port: int) -> None: ...

    async def write(
        self, dst: str, dst_port: int, payload: bytes, *, src_port: int | None = None
    ) -> None: ...


@runtime_checkable
class Tcp(Protocol):
    async def connect(self, dst: str, port: int) -> Flow: ...

    async def listen(self, port: int, handler: TcpHandler) -> None:
        """Accept connections on ``port``; run ``handler(flow)`` for each."""
        ...

    async def unlisten(self, port: int) -> None: ...


@runtime_checkable
class Stack(Device, Protocol):
    """TCP, UDP and IP of one address-family set."""

    @property
    def tcp(self) -> Tcp: ...

    @property
    def udp(self) -> Udp: ...

    @property
    def ip(self) -> Ip: ...


@runtime_checkable
class Resolver(Device, Protocol):
    async def getaddrinfo(self, name: str) -> list[str]: ...


# ---------------------------------------------------------------------------
# Key-value stores (after mirage-kv)


class KvError(Exception):
    """Base of the key-value store errors. ``key`` is the key at fault."""

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message or f"{self.__class__.__name__}: {key!r}")
        self.key = key


class KvNotFound(KvError):
    """No value or dictionary at ``key``."""


class KvDictionaryExpected(KvError):
    """``key`` names a value where a dictionary was needed."""


class KvValueExpected(KvError):
    """``key`` names a dictionary where a value was needed."""


class KvAlreadyPresent(KvError):
    """The destination of a rename or a dictionary path is in the way."""


class KvKind(enum.Enum):
    VALUE = "value"
    DICTIONARY = "dictionary"


def kv_key(key: str) -> str:
    """Normalise a key: ``/a//b/`` and ``a/b`` are the same key; the root is ``""``."""
    return "/".join(segment for segment in key.split("/") if segment)


@runtime_checkable
class KvRo(Device, Protocol):
    """A read-only tree of values addressed by ``/``-separated keys.

    The root is the key ``""`` (or ``"/"``) and is always a dictionary.
    """

    async def exists(self, key: str) -> KvKind | None: ...

    async def get(self, key: str) -> bytes: ...

    async def get_partial(self, key: str, offset: int, length: int) -> bytes:
        """At most ``length`` bytes of the value from ``offset`` (short at the end)."""
        ...

    async def list(self, key: str) -> list[tuple[str, KvKind]]:
        """The entries of a dictionary, sorted by name (names, not full keys)."""
        ...

    async def last_modified(self, key: str) -> float:
        """POSIX time of the last change of a value or dictionary."""
        ...

    async def digest(self, key: str) -> bytes:
        """A content hash: equal contents give equal digests within one store."""
        ...

    async def size(self, key: str) -> int: ...


@runtime_checkable
class KvRw(KvRo, Protocol):
    async def set(self, key: str, data: bytes) -> None:
        """Write a value, creating parent dictionaries."""
        ...

    async def set_partial(self, key: str, offset: int, data: bytes) -> None:
        """Overwrite part of a value (zero-filled past its end)."""
        ...

    async def remove(self, key: str) -> None:
        """Remove a value or a whole dictionary."""
        ...

    async def rename(self, source: str, dest: str) -> None: ...


# ---------------------------------------------------------------------------
# Block devices (after mirage-block)


class BlockError(Exception):
    pass


class BlockReadOnly(BlockError):
    pass


class BlockOutOfRange(BlockError):
    pass


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What a block device is: writable or not, its sector size and its size in sectors."""

    read_write: bool
    sector_size: int
    size_sectors: int


@runtime_checkable
class Block(Device, Protocol):
    async def info(self) -> BlockInfo: ...

    async def read(self, sector: int, count: int) -> bytes:
        """``count`` whole sectors from ``sector``."""
        ...

    async def write(self, sector: int, data: bytes) -> None:
        """Write ``data`` (a whole number of sectors) from ``sector``."""
        ...
