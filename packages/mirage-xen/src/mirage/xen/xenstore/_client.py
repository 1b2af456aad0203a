"""xenstore clients: a sans-IO core, a blocking client and an asyncio client.

:class:`ClientCore` numbers requests, splits the byte stream into replies and watch
events and turns ERROR replies into :class:`XsError`. :class:`Client` (blocking
socket) and :class:`AsyncClient` (asyncio) drive it over a Unix socket; both offer
the same operations and ``transaction(fn)``, which runs ``fn`` in a transaction and
runs it again, from the start, while the commit answers ``EAGAIN``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from mirage.xen._hypervisor import Domain, Grant

from ._device import XENBUS_DEVICE, DeviceTransport, is_device
from ._ring import RingTransport
from ._wire import (
    HEADER,
    PAYLOAD_MAX,
    Op,
    Packet,
    Perm,
    XsDecodeError,
    XsError,
    decode_perms,
    join_args,
    pull_packet,
    split_args,
)

__all__ = [
    "AsyncClient",
    "AsyncTransaction",
    "Client",
    "ClientCore",
    "Transaction",
    "WatchEvent",
    "default_socket",
]

T = TypeVar("T")


def default_socket() -> str:
    return os.environ.get("XENSTORED_PATH", "/var/run/xenstored/socket")


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A watch fired: the path that changed and the watch's token."""

    path: str
    token: str


class ClientCore:
    """Request numbering and reply parsing, without I/O."""

    def __init__(self) -> None:
        self._next = 1
        self._buf = bytearray()

    def request(self, op: Op, payload: bytes, tx_id: int = 0) -> tuple[int, bytes]:
        req_id = self._next
        self._next = (req_id + 1) & 0xFFFFFFFF or 1
        if len(payload) > PAYLOAD_MAX:
            raise XsError("E2BIG")
        # push_packet's bytes, without building the Packet (the hot path of a client).
        return req_id, HEADER.pack(op, req_id, tx_id, len(payload)) + payload

    def receive_data(self, data: bytes) -> list[Packet | WatchEvent]:
        """Replies (as packets) and watch events found in ``data``."""
        if not self._buf and len(data) >= HEADER.size:
            # The common case: exactly one whole reply in one read.
            op, req_id, tx_id, length = HEADER.unpack_from(data, 0)
            if (
                length <= PAYLOAD_MAX
                and len(data) == HEADER.size + length
                and (op != Op.WATCH_EVENT)
            ):
                return [Packet(op, req_id, tx_id, data[HEADER.size :])]
        self._buf += data
        out: list[Packet | WatchEvent] = []
        while True:
            packet, used = pull_packet(self._buf)
            if packet is None:
                return out
            del self._buf[:used]
            if packet.op == Op.WATCH_EVENT:
                try:
                    path, token = split_args(packet.payload)[:2]
                    out.append(WatchEvent(path.decode(), token.decode()))
                except (ValueError, XsError):
                    raise XsDecodeError("malformed watch event") from None
            else:
                out.append(packet)


def check(reply: Packet) -> bytes:
    """The payload of a reply, or the :class:`XsError` it carries."""
    if reply.op == Op.ERROR:
        raise XsError(reply.payload.rstrip(b"\0").decode("ascii", "replace"))
    return reply.payload


def _strings(payload: bytes) -> list[str]:
    return [s.decode() for s in payload.split(b"\0") if s]


# -- blocking -------------------------------------------------------------------------


class Transaction:
    """Operations of a :class:`Client`, inside transaction ``tx_id`` (0: none)."""

    def __init__(self, client: Client, tx_id: int) -> None:
        self._client = client
        self.tx_id = tx_id

    def _call(self, op: Op, *args: bytes | str, raw: bytes | None = None) -> bytes:
        return self._client.call(op, join_args(*args) if raw is None else raw, self.tx_id)

    def read(self, path: str) -> bytes:
        return self._call(Op.READ, path)

    def write(self, path: str, value: bytes | str) -> None:
        value = value.encode() if isinstance(value, str) else value
        self._call(Op.WRITE, raw=path.encode() + b"\0" + value)

    def directory(self, path: str) -> list[str]:
        return _strings(self._call(Op.DIRECTORY, path))

    def mkdir(self, path: str) -> None:
        self._call(Op.MKDIR, path)

    def rm(self, path: str) -> None:
        self._call(Op.RM, path)

    def exists(self, path: str) -> bool:
        try:
            self.read(path)
        except XsError as err:
            if err.name == "ENOENT":
                return False
            raise
        return True

    def get_perms(self, path: str) -> tuple[Perm, ...]:
        return decode_perms(split_args(self._call(Op.GET_PERMS, path)))

    def set_perms(self, path: str, perms: tuple[Perm, ...]) -> None:
        self._call(Op.SET_PERMS, path, *(p.encode() for p in perms))


class Client(Transaction):
    """A blocking client on a Unix socket (``$XENSTORED_PATH`` by default)."""

    def __init__(self, path: str | None = None) -> None:
        super().__init__(self, 0)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path or default_socket())
        self._core = ClientCore()
        self._replies: dict[int, Packet] = {}
        self._events: collections.deque[WatchEvent] = collections.deque()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pump(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("xenstore closed the connection")
        for item in self._core.receive_data(data):
            if isinstance(item, WatchEvent):
                self._events.append(item)
            else:
                self._replies[item.req_id] = item

    def call(self, op: Op, payload: bytes, tx_id: int = 0) -> bytes:
        req_id, data = self._core.request(op, payload, tx_id)
        self._sock.sendall(data)
        while req_id not in self._replies:
            self._pump()
        return check(self._replies.pop(req_id))

    def watch(self, path: str, token: str) -> None:
        self.call(Op.WATCH, join_args(path, token))

    def unwatch(self, path: str, token: str) -> None:
        self.call(Op.UNWATCH, join_args(path, token))

    def next_event(self, timeout: float | None = None) -> WatchEvent:
        """The next watch event; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no watch event")
                self._sock.settimeout(left)
            try:
                self._pump()
            except TimeoutError:
                raise TimeoutError("no watch event") from None
            finally:
                self._sock.settimeout(None)
        return self._events.popleft()

    def get_domain_path(self, domid: int) -> str:
        return self.call(Op.GET_DOMAIN_PATH, join_args(str(domid))).rstrip(b"\0").decode()

    def introduce(self, domid: int, mfn: int, port: int) -> None:
        self.call(Op.INTRODUCE, join_args(str(domid), str(mfn), str(port)))

    def release(self, domid: int) -> None:
        self.call(Op.RELEASE, join_args(str(domid)))

    def is_domain_introduced(self, domid: int) -> bool:
        return self.call(Op.IS_DOMAIN_INTRODUCED, join_args(str(domid))) == b"T\0"

    def transaction(self, fn: Callable[[Transaction], T], retries: int = 100) -> T:
        """Run ``fn`` in a transaction, again while the commit answers ``EAGAIN``."""
        for _ in range(retries):
            tx_id = int(self.call(Op.TRANSACTION_START, b"\0").rstrip(b"\0"))
            try:
                result = fn(Transaction(self, tx_id))
            except BaseException:
                with contextlib.suppress(XsError, OSError):
                    self.call(Op.TRANSACTION_END, b"F\0", tx_id)
                raise
            try:
                self.call(Op.TRANSACTION_END, b"T\0", tx_id)
            except XsError as err:
                if err.name == "EAGAIN":
                    continue
                raise
            return result
        raise XsError("EAGAIN")


# -- asyncio --------------------------------------------------------------------------


class AsyncTransaction:
    """Operations of an :class:`AsyncClient`, inside transaction ``tx_id`` (0: none)."""

    def __init__(self, client: AsyncClient, tx_id: int) -> None:
        self._client = client
        self.tx_id = tx_id

    async def _call(self, op: Op, *args: bytes | str, raw: bytes | None = None) -> bytes:
        return await self._client.call(op, join_args(*args) if raw is None else raw, self.tx_id)

    async def read(self, path: str) -> bytes:
        return await self._call(Op.READ, path)

    async def write(self, path: str, value: bytes | str) -> None:
        value = value.encode() if isinstance(value, str) else value
        await self._call(Op.WRITE, raw=path.encode() + b"\0" + value)

    async def directory(self, path: str) -> list[str]:
        return _strings(await self._call(Op.DIRECTORY, path))

    async def mkdir(self, path: str) -> None:
        await self._call(Op.MKDIR, path)

    async def rm(self, path: str) -> None:
        await self._call(Op.RM, path)

    async def exists(self, path: str) -> bool:
        try:
            await self.read(path)
        except XsError as err:
            if err.name == "ENOENT":
                return False
            raise
        return True

    async def get_perms(self, path: str) -> tuple[Perm, ...]:
        return decode_perms(split_args(await self._call(Op.GET_PERMS, path)))

    async def set_perms(self, path: str, perms: tuple[Perm, ...]) -> None:
        await self._call(Op.SET_PERMS, path, *(p.encode() for p in perms))


class Reader(Protocol):
    async def read(self, n: int) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class AsyncClient(AsyncTransaction):
    """An asyncio client: on a Unix socket (:meth:`open`, as domain 0) or, inside a
    domain, on its xenstore ring (:meth:`open_ring`)."""

    def __init__(self, reader: Reader, writer: Writer) -> None:
        super().__init__(self, 0)
        self._reader, self._writer = reader, writer
        self._core = ClientCore()
        self._pending: dict[int, asyncio.Future[Packet]] = {}
        self._watches: dict[str, asyncio.Queue[WatchEvent]] = {}
        self._watch_paths: dict[str, str] = {}
        self._generation = 0  # connections so far: a reconnection ends transactions
        self._tokens = 0
        self._task = asyncio.get_running_loop().create_task(self._pump())

    @classmethod
    async def open(cls, path: str | None = None) -> AsyncClient:
        """A client on xenstored's Unix socket ``path`` or, if ``path`` is a character
        device, on Linux's xenbus device. Without ``path``: ``$XENSTORED_PATH``, else
        the default socket if it exists, else ``/dev/xen/xenbus`` (as libxenstore)."""
        if path is None:
            path = default_socket()
            if (
                "XENSTORED_PATH" not in os.environ
                and not os.path.exists(path)
                and is_device(XENBUS_DEVICE)
            ):
                path = XENBUS_DEVICE
        if is_device(path):
            transport = DeviceTransport.open(path)
            return cls(transport, transport)
        reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer)

    @classmethod
    async def open_ring(cls, domain: Domain, grant: Grant, port: int) -> AsyncClient:
        """A client over this domain's xenstore page (``grant``) and ``port``, once the
        toolstack has introduced the domain (see :func:`share_ring`)."""
        transport = RingTransport(domain, grant, port)
        return cls(transport, transport)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _pump(self) -> None:
        error: BaseException = ConnectionError("xenstore closed the connection")
        try:
            while data := await self._reader.read(65536):
                for item in self._core.receive_data(data):
                    if isinstance(item, WatchEvent):
                        queue = self._watches.get(item.token)
                        if queue is not None:
                            queue.put_nowait(item)
                    else:
                        fut = self._pending.pop(item.req_id, None)
                        if fut is not None and not fut.done():
                            fut.set_result(item)
        except (OSError, XsDecodeError) as err:
            error = err
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)
        self._pending.clear()

    async def call(self, op: Op, payload: bytes, tx_id: int = 0) -> bytes:
        if self._task.done():
            raise ConnectionError("xenstore connection is closed")
        req_id, data = self._core.request(op, payload, tx_id)
        fut: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self._writer.write(data)
        await self._writer.drain()
        return check(await fut)

    async def watch(self, path: str, token: str | None = None) -> asyncio.Queue[WatchEvent]:
        """Watch ``path``; events (the first one at once) arrive on the returned queue."""
        if token is None:
            self._tokens += 1
            token = f"mirage-{self._tokens}"
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self._watches[token] = queue
        self._watch_paths[token] = path
        try:
            await self.call(Op.WATCH, join_args(path, token))
        except BaseException:
            del self._watches[token]
            del self._watch_paths[token]
            raise
        return queue

    async def unwatch(self, path: str, token: str) -> None:
        self._watches.pop(token, None)
        self._watch_paths.pop(token, None)
        await self.call(Op.UNWATCH, join_args(path, token))

    async def reconnect(self, timeout: float = 30.0) -> None:
        """Reset a ring connection (``XENSTORE_RECONNECT``, see
        :meth:`RingTransport.reconnect`) and carry on by ourselves, as Linux's xenbus
        does on resume: requests in flight fail with :class:`ConnectionResetError`,
        transactions are gone (a :meth:`transaction` running its function starts it
        again), and every watch is registered again with its token (so each queue
        gets a fresh initial event)."""
        reset = getattr(self._writer, "reconnect", None)
        if reset is None:
            raise ConnectionError("only a connection over a ring page reconnects")
        self._generation += 1
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionResetError("xenstore ring reconnected"))
        self._core = ClientCore()
        await reset(timeout)
        for token, path in list(self._watch_paths.items()):
            await self.call(Op.WATCH, join_args(path, token))

    async def wait_for(self, path: str, predicate: Callable[[bytes | None], bool]) -> bytes | None:
        """Wait until ``predicate(value of path or None)`` holds; return the value."""
        self._tokens += 1
        token = f"mirage-wait-{self._tokens}"
        queue = await self.watch(path, token)
        try:
            while True:
                await queue.get()
                try:
                    value: bytes | None = await self.read(path)
                except XsError as err:
                    if err.name != "ENOENT":
                        raise
                    value = None
                if predicate(value):
                    return value
        finally:
            with contextlib.suppress(XsError, OSError):
                await self.unwatch(path, token)

    async def get_domain_path(self, domid: int) -> str:
        reply = await self.call(Op.GET_DOMAIN_PATH, join_args(str(domid)))
        return reply.rstrip(b"\0").decode()

    async def introduce(self, domid: int, mfn: int, port: int) -> None:
        await self.call(Op.INTRODUCE, join_args(str(domid), str(mfn), str(port)))

    async def release(self, domid: int) -> None:
        await self.call(Op.RELEASE, join_args(str(domid)))

    async def is_domain_introduced(self, domid: int) -> bool:
        return await self.call(Op.IS_DOMAIN_INTRODUCED, join_args(str(domid))) == b"T\0"

    async def transaction(
        self, fn: Callable[[AsyncTransaction], Awaitable[T]], retries: int = 100
    ) -> T:
        """Run ``fn`` in a transaction, again while the commit answers ``EAGAIN`` or
        the connection was reset (:meth:`reconnect`) while it ran."""
        for _ in range(retries):
            generation = self._generation
            tx_id = int((await self.call(Op.TRANSACTION_START, b"\0")).rstrip(b"\0"))
            try:
                result = await fn(AsyncTransaction(self, tx_id))
            except (XsError, OSError):
                if self._generation != generation:
                    continue  # the transaction went with the old connection
                with contextlib.suppress(XsError, OSError):
                    await self.call(Op.TRANSACTION_END, b"F\0", tx_id)
                raise
            except BaseException:
                with contextlib.suppress(XsError, OSError):
                    await self.call(Op.TRANSACTION_END, b"F\0", tx_id)
                raise
            try:
                await self.call(Op.TRANSACTION_END, b"T\0", tx_id)
            except (XsError, OSError) as err:
                if self._generation != generation:
                    continue
                if isinstance(err, XsError) and err.name == "EAGAIN":
                    continue
                raise
            return result
        raise XsError("EAGAIN")
