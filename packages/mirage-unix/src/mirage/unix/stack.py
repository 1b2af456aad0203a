"""A Stack over the host's sockets: TCP and UDP without privileges.

TCP connections are flows over asyncio streams; ``Tcp.listen`` starts a server whose
handler gets one flow per connection. UDP listeners are datagram endpoints; writes
from a listening port go out from that port. ``Ip.write`` sends raw IP payloads,
which the host allows only to privileged processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Sequence

from mirage.core.types import Flow, FlowClosed, TcpHandler, UdpCallback

__all__ = ["SocketFlow", "SocketIp", "SocketStack", "SocketTcp", "SocketUdp"]

log = logging.getLogger("mirage.unix.stack")

READ_SIZE = 65536
CLOSE_TIMEOUT = 10.0


class SocketFlow:
    """A TCP connection as a :class:`~mirage.core.types.Flow`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._shut = False
        self._closed = False

    @property
    def peer(self) -> tuple[str, int]:
        host, port = self._writer.get_extra_info("peername")[:2]
        return str(host), int(port)

    async def read(self) -> bytes:
        if self._closed:
            return b""
        try:
            return await self._reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        if self._closed or self._shut:
            raise FlowClosed("write on a closed flow")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise FlowClosed(str(exc)) from exc

    async def writev(self, bufs: Sequence[bytes]) -> None:
        if self._closed or self._shut:
            raise FlowClosed("write on a closed flow")
        try:
            self._writer.writelines(bufs)
            await self._writer.drain()
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise FlowClosed(str(exc)) from exc

    async def shutdown(self) -> None:
        if self._shut or self._closed:
            return
        self._shut = True
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof():
                self._writer.write_eof()

    async def close(self) -> None:
        """Close after the unsent data is out; a peer that stops reading gets
        ``CLOSE_TIMEOUT`` seconds, then the connection is aborted."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_TIMEOUT)
        except TimeoutError:
            self._writer.transport.abort()
        except (ConnectionError, OSError):
            pass

    def abort(self) -> None:
        """Drop the connection at once, unsent data and all (the peer sees a reset)."""
        self._closed = True
        self._writer.transport.abort()


class SocketTcp:
    def __init__(self, ipv4: str, ipv6: str | None) -> None:
        self._hosts = [h for h in (ipv4, ipv6) if h]
        self._servers: dict[int, asyncio.Server] = {}
        self._handlers: set[asyncio.Task[None]] = set()

    async def connect(self, dst: str, port: int) -> Flow:
        try:
            reader, writer = await asyncio.open_connection(dst, port)
        except OSError as exc:
            raise ConnectionError(f"cannot connect to {dst}:{port}: {exc.strerror or exc}") from exc
        return SocketFlow(reader, writer)

    async def listen(self, port: int, handler: TcpHandler) -> None:
        if port in self._servers:
            raise OSError(f"TCP port {port} is already listened on")

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            flow = SocketFlow(reader, writer)
            task = asyncio.current_task()
            if task is not None:
                self._handlers.add(task)
            try:
                await handler(flow)
            except Exception:
                log.exception("TCP handler on port %d failed", port)
            finally:
                await flow.close()
                if task is not None:
                    self._handlers.discard(task)

        self._servers[port] = await asyncio.start_server(
            on_connection, self._hosts, port, reuse_address=True
        )

    def listening_port(self, port: int) -> int:
        """The bound port of a listener (useful with port 0)."""
        return int(self._servers[port].sockets[0].getsockname()[1])

    async def unlisten(self, port: int) -> None:
        server = self._servers.pop(port, None)
        if server is not None:
            server.close()
            await server.wait_closed()

    async def close(self) -> None:
        for port in list(self._servers):
            await self.unlisten(port)
        for task in list(self._handlers):
            task.cancel()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, callback: UdpCallback | None) -> None:
        self.callback = callback
        self.tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.callback is None:
            return
        try:
            result = self.callback(str(addr[0]), int(addr[1]), data)
        except Exception:
            log.exception("UDP callback failed")
            return
        if result is not None:
            task = asyncio.ensure_future(result)
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("UDP callback failed: %r", task.exception())


class SocketUdp:
    def __init__(self, ipv4: str) -> None:
        self._host = ipv4
        self._listeners: dict[int, asyncio.DatagramTransport] = {}
        self._sender: asyncio.DatagramTransport | None = None

    async def listen(self, port: int, callback: UdpCallback) -> None:
        if port in self._listeners:
            raise OSError(f"UDP port {port} is already listened on")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(callback), local_addr=(self._host, port)
        )
        self._listeners[port] = transport

    def listening_port(self, port: int) -> int:
        return int(self._listeners[port].get_extra_info("sockname")[1])

    async def unlisten(self, port: int) -> None:
        transport = self._listeners.pop(port, None)
        if transport is not None:
            transport.close()

    async def write(
        self, dst: str, dst_port: int, payload: bytes, *, src_port: int | None = None
    ) -> None:
        if src_port is not None and src_port in self._listeners:
            self._listeners[src_port].sendto(payload, (dst, dst_port))
            return
        loop = asyncio.get_running_loop()
        if src_port is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(None), local_addr=(self._host, src_port)
            )
            try:
                transport.sendto(payload, (dst, dst_port))
            finally:
                transport.close()
            return
        if self._sender is None:
            family = socket.AF_INET6 if ":" in dst else socket.AF_INET
            self._sender, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(None), family=family
            )
        self._sender.sendto(payload, (dst, dst_port))

    async def close(self) -> None:
        for port in list(self._listeners):
            await self.unlisten(port)
        if self._sender is not None:
            self._sender.close()
            self._sender = None


class SocketIp:
    """Raw IP through the host (needs CAP_NET_RAW for ``write``)."""

    def __init__(self, ipv4: str, ipv6: str | None) -> None:
        self._ips = [h for h in (ipv4, ipv6) if h]

    def configured_ips(self) -> list[str]:
        return list(self._ips)

    def mtu(self, dst: str) -> int:
        return 1500

    async def write(self, dst: str, proto: int, payload: bytes) -> None:
        family = socket.AF_INET6 if ipaddress.ip_address(dst).version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_RAW, proto) as sock:
                sock.sendto(payload, (dst, 0))
        except PermissionError as exc:
            raise PermissionError(
                "raw IP writes through the host need CAP_NET_RAW (run as root)"
            ) from exc


class SocketStack:
    """The host's TCP, UDP and IP."""

    def __init__(self, ipv4: str, ipv6: str | None) -> None:
        self._tcp = SocketTcp(ipv4, ipv6)
        self._udp = SocketUdp(ipv4)
        self._ip = SocketIp(ipv4, ipv6)

    @classmethod
    async def connect(cls, *, ipv4: str = "0.0.0.0", ipv6: str | None = None) -> SocketStack:
        for address in (ipv4, ipv6):
            if address:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ValueError(f"{address!r} is not an IP address") from None
        return cls(ipv4, ipv6)

    async def disconnect(self) -> None:
        await self._tcp.close()
        await self._udp.close()

    @property
    def tcp(self) -> SocketTcp:
        return self._tcp

    @property
    def udp(self) -> SocketUdp:
        return self._udp

    @property
    def ip(self) -> SocketIp:
        return self._ip
