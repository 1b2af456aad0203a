"""TLS over any mirage flow: the asyncio driver of :class:`TlsConnection`.

:meth:`TlsFlow.client` and :meth:`TlsFlow.server` run the handshake over an open
:class:`~mirage.core.types.Flow` and return a flow of application data. ``shutdown``
sends close_notify and half-closes the transport; reads go on until the peer's
close_notify (then ``b""``). An alert we raise is sent before the error propagates
and the transport is closed. The clock (POSIX seconds, for certificate validity) is
a parameter so that tests can pin it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence

from mirage.core.types import Flow, FlowClosed

from ._config import TlsConfig
from ._connection import TlsConnection
from ._errors import TlsAlert, TlsError
from ._events import ConnectionClosed, DataReceived, HandshakeComplete

__all__ = ["TlsFlow"]


class TlsFlow:
    """A :class:`~mirage.core.types.Flow` of application data over TLS."""

    def __init__(
        self, transport: Flow, connection: TlsConnection, clock: Callable[[], float] = time.time
    ) -> None:
        self.transport = transport
        self.connection = connection
        self.handshake: HandshakeComplete | None = None
        self._clock = clock
        self._incoming: deque[bytes] = deque()
        self._eof = False
        self._write_closed = False
        self._closed = False
        self._send_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    @classmethod
    async def client(
        cls,
        transport: Flow,
        config: TlsConfig,
        server_name: str | None,
        clock: Callable[[], float] = time.time,
    ) -> TlsFlow:
        """Run a client handshake over ``transport``; raises the alert on failure."""
        conn = TlsConnection(config, server_name=server_name)
        flow = cls(transport, conn, clock)
        conn.start()
        await flow._handshake()
        return flow

    @classmethod
    async def server(
        cls, transport: Flow, config: TlsConfig, clock: Callable[[], float] = time.time
    ) -> TlsFlow:
        """Run a server handshake over ``transport``; raises the alert on failure."""
        flow = cls(transport, TlsConnection(config, server_side=True), clock)
        await flow._handshake()
        return flow

    @property
    def alpn_protocol(self) -> bytes | None:
        return self.connection.alpn_protocol

    @property
    def peer(self) -> object:
        """The transport's ``peer`` (an address), if it has one."""
        return getattr(self.transport, "peer", None)

    async def _flush(self) -> None:
        async with self._send_lock:
            data = self.connection.data_to_send()
            if data:
                await self.transport.write(data)

    async def _pump(self) -> bool:
        """Read once from the transport into the engine; False at the transport's end."""
        data = await self.transport.read()
        if not data:
            self._eof = True
            return False
        try:
            self.connection.receive_data(data, self._clock())
        except TlsAlert:
            try:
                await self._flush()
            except Exception:
                pass
            await self.transport.close()
            self._closed = True
            raise
        except TlsError:
            await self.transport.close()
            self._closed = True
            raise
        while (event := self.connection.next_event()) is not None:
            if isinstance(event, DataReceived):
                self._incoming.append(event.data)
            elif isinstance(event, ConnectionClosed):
                self._eof = True
            elif isinstance(event, HandshakeComplete):
                self.handshake = event
        await self._flush()
        return True

    async def _handshake(self) -> None:
        await self._flush()
        while self.handshake is None:
            if not await self._pump():
                await self.transport.close()
                raise TlsError("the transport closed during the handshake")

    async def read(self) -> bytes:
        async with self._read_lock:
            while not self._incoming:
                if self._eof or self._closed:
                    return b""
                if not await self._pump():
                    return b""
            return self._incoming.popleft()

    async def write(self, data: bytes) -> None:
        if self._write_closed or self._closed:
            raise FlowClosed("the TLS flow was shut down")
        if data:
            self.connection.send(data)
            await self._flush()

    async def writev(self, bufs: Sequence[bytes]) -> None:
        await self.write(b"".join(bufs))

    async def key_update(self) -> None:
        """New keys for our direction; the peer is asked to renew its own."""
        self.connection.key_update(request_peer=True)
        await self._flush()

    async def shutdown(self) -> None:
        if self._write_closed or self._closed:
            return
        self._write_closed = True
        self.connection.close()
        await self._flush()
        await self.transport.shutdown()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._write_closed:
            self._write_closed = True
            self.connection.close()
            try:
                await self._flush()
            except (FlowClosed, OSError):
                pass
        await self.transport.close()
