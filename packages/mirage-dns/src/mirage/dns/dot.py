"""DNS over TLS (RFC 7858) with mirage-tls: a server port and a resolver client.

- :func:`listen_tls` adds a TLS port (853 by default) to a running
  :class:`~mirage.dns.server.DnsServer`: each connection is a TLS handshake, then the
  same length-prefixed, pipelined queries as over TCP (RFC 7766), with the idle
  timeout.
- :class:`DotResolver` is the ``Resolver`` device over TLS: one connection per
  server, kept open and reused for every query (RFC 7858 section 3.4), queries
  pipelined and answers matched by id; a broken connection is opened again, and a
  server that does not answer in time is left for the next.

Both need the ``tls`` extra (mirage-tls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING

from mirage.core.types import Flow, Stack

from ._cache import Cache, CachedAnswer
from ._errors import ResolveError
from ._name import Name
from ._stub import StubLookup
from .resolver import DnsResolver

if TYPE_CHECKING:
    from mirage.tls import TlsConfig

    from .server import DnsServer

__all__ = ["DotResolver", "listen_tls", "DOT_PORT"]

DOT_PORT = 853
log = logging.getLogger("mirage.dns.dot")


async def listen_tls(server: DnsServer, config: TlsConfig, port: int = DOT_PORT) -> None:
    """Answer DNS over TLS on ``port`` of the server's stack (RFC 7858)."""
    from mirage.tls import TlsFlow

    async def connection(flow: Flow) -> None:
        try:
            tls = await asyncio.wait_for(TlsFlow.server(flow, config), server.idle_timeout)
        except Exception as exc:  # a failed handshake: the alert was sent; drop it
            log.debug("DoT handshake failed: %s", exc)
            with contextlib.suppress(Exception):
                await flow.close()
            return
        await server._connection(tls, encrypted=True)

    await server.stack.tcp.listen(port, connection)


class _Channel:
    """One TLS connection to a server, with a task reading answers."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        buf = bytearray()
        try:
            while True:
                chunk = await self.flow.read()
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                    size = int.from_bytes(buf[:2], "big")
                    message = bytes(buf[2 : 2 + size])
                    del buf[: 2 + size]
                    if len(message) >= 2:
                        future = self.waiting.pop(int.from_bytes(message[:2], "big"), None)
                        if future is not None and not future.done():
                            future.set_result(message)
        except Exception as exc:
            log.debug("DoT connection ended: %s", exc)
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("DoT connection closed"))
            self.waiting.clear()

    @property
    def alive(self) -> bool:
        return not self.reader.done()

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader
        with contextlib.suppress(Exception):
            await self.flow.close()


class DotResolver(DnsResolver):
    """The ``Resolver`` device over TLS: ``servers`` are (address, port) pairs, the
    certificate is checked against ``config`` for ``server_name`` (default: the
    address)."""

    def __init__(
        self,
        stack: Stack,
        servers: list[tuple[str, int]],
        config: TlsConfig,
        *,
        server_name: str | None = None,
        cache: Cache | None = None,
        timeout: float = 5.0,
        attempts: int = 2,
    ) -> None:
        super().__init__(stack, servers, cache=cache, timeout=timeout, attempts=attempts)
        self.config = config
        self.server_name = server_name
        self._channels: dict[tuple[str, int], _Channel] = {}
        self._connecting: dict[tuple[str, int], asyncio.Lock] = {}
        self.connections = 0
        """TLS connections opened so far (one per server while it stays up)."""

    async def _channel(self, server: tuple[str, int]) -> _Channel:
        from mirage.tls import TlsFlow

        lock = self._connecting.setdefault(server, asyncio.Lock())
        async with lock:
            channel = self._channels.get(server)
            if channel is not None and channel.alive:
                return channel
            flow = await self.stack.tcp.connect(*server)
            try:
                tls = await TlsFlow.client(flow, self.config, self.server_name or server[0])
            except BaseException:
                with contextlib.suppress(Exception):
                    await flow.close()
                raise
            channel = _Channel(tls)
            self._channels[server] = channel
            self.connections += 1
            return channel

    async def query(self, name: Name, rtype: int) -> CachedAnswer:
        now = self.clock()
        cached = self.cache.get(name, rtype, now)
        if cached is not None:
            return cached
        lookup = StubLookup(name, rtype, self.servers, ident=random.getrandbits(16), now=now,
                            timeout=self.timeout, attempts=self.attempts)  # fmt: skip
        while not lookup.done:
            transmit = lookup.transmit()
            if transmit is None:  # nothing to send: the exchange before timed out
                lookup.handle_timer(max(self.clock(), lookup.get_timer() or 0.0))
                continue
            deadline = lookup.get_timer()
            wait = self.timeout if deadline is None else max(0.0, deadline - self.clock())
            try:
                reply = await asyncio.wait_for(self._exchange(transmit.server, transmit.data), wait)
            except (OSError, ConnectionError, TimeoutError, ResolveError) as exc:
                log.debug("DoT query to %s failed: %s", transmit.server, exc)
                self._give_up(lookup)
                continue
            except Exception as exc:  # a TLS alert (bad certificate, ...): next server
                log.debug("DoT to %s failed: %s", transmit.server, exc)
                await self._drop(transmit.server)
                self._give_up(lookup)
                continue
            lookup.receive(reply, self.clock(), tcp=transmit.tcp)
        if lookup.error is not None:
            raise lookup.error
        assert lookup.result is not None
        self.cache.put(lookup.result, self.clock())
        return CachedAnswer(lookup.result.rcode, lookup.result.answer, lookup.result.ad)

    async def _exchange(self, server: tuple[str, int], data: bytes) -> bytes:
        channel = await self._channel(server)
        ident = int.from_bytes(data[:2], "big")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        channel.waiting[ident] = future
        try:
            await channel.flow.write(len(data).to_bytes(2, "big") + data)
            return await future
        finally:
            channel.waiting.pop(ident, None)

    async def _drop(self, server: tuple[str, int]) -> None:
        channel = self._channels.pop(server, None)
        if channel is not None:
            await channel.close()

    async def disconnect(self) -> None:
        for server in list(self._channels):
            await self._drop(server)
        await super().disconnect()
