"""An HTTP/1.1 client over a mirage :class:`~mirage.core.types.Tcp`.

Connections are kept per ``(host, port)`` and reused while both sides allow it; a
request on a reused connection that the server had closed meanwhile is retried once
on a fresh one (for methods that are safe to repeat). Redirects are followed (303,
and 301/302 after anything but GET/HEAD, turn into GET); every request has an
overall timeout. Response bodies, chunked or not, are read whole. ``https://`` URLs
go over mirage-tls (the ``tls`` extra): the server's chain is checked against the
client's ``tls`` config (by default the host's trust store) and its name against
the URL's host; ALPN offers ``http/1.1``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from mirage.core.types import Flow, FlowClosed, Tcp
from mirage.http._connection import Connection, Role, State
from mirage.http._errors import HttpError, RemoteProtocolError
from mirage.http._events import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
)
from mirage.http._events import Request as RequestHead
from mirage.http._events import Response as ResponseHead
from mirage.http._limits import Limits

if TYPE_CHECKING:
    from mirage.tls import TlsConfig

__all__ = ["Client", "ClientError", "ClientResponse"]

_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ClientError(Exception):
    """The request could not be completed (bad URL, timeout, too many redirects,
    a broken response)."""


@dataclass(frozen=True, slots=True)
class ClientResponse:
    """A response received: status, headers, body, trailers, final URL and redirects followed."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    url: str
    trailers: tuple[tuple[str, str], ...] = ()
    redirects: tuple[str, ...] = ()

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Conn:
    __slots__ = ("conn", "flow", "reused")

    def __init__(self, flow: Flow, limits: Limits) -> None:
        self.flow = flow
        self.conn = Connection(Role.CLIENT, limits)
        self.reused = False


def _str(headers: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)


class Client:
    """``async with Client(stack.tcp) as client: r = await client.get(url)``."""

    def __init__(
        self,
        tcp: Tcp,
        *,
        timeout: float = 30.0,
        max_redirects: int = 5,
        limits: Limits | None = None,
        max_idle_per_host: int = 8,
        tls: TlsConfig | None = None,
    ) -> None:
        self.tcp = tcp
        self.tls = tls
        self._tls_config: TlsConfig | None = None
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.limits = limits if limits is not None else Limits(max_body_size=None)
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self.connections_opened = 0

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                with contextlib.suppress(Exception):
                    await c.flow.close()
        self._idle.clear()

    async def get(self, url: str, **kwargs: object) -> ClientResponse:
        return await self.request("GET", url, **kwargs)  # type: ignore[arg-type]

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        follow_redirects: bool = True,
        timeout: float | None = None,
    ) -> ClientResponse:
        try:
            async with asyncio.timeout(timeout if timeout is not None else self.timeout):
                return await self._follow(method, url, headers, body, follow_redirects)
        except TimeoutError:
            raise ClientError(f"{method} {url}: timed out") from None

    async def _follow(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        follow: bool,
    ) -> ClientResponse:
        seen: list[str] = []
        while True:
            response = await self._once(method, url, headers, body)
            location = response.header("location")
            if not follow or response.status not in _REDIRECTS or location is None:
                return ClientResponse(
                    response.status,
                    response.headers,
                    response.body,
                    url,
                    response.trailers,
                    tuple(seen),
                )
            if len(seen) >= self.max_redirects:
                raise ClientError(f"more than {self.max_redirects} redirects from {seen[0]}")
            seen.append(url)
            url = urljoin(url, location)
            if response.status == 303 or (
                response.status in (301, 302) and method not in ("GET", "HEAD")
            ):
                method = "GET" if method != "HEAD" else "HEAD"
                body = b""
                headers = [(n, v) for n, v in headers if n.lower() != "content-type"]

    async def _once(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> ClientResponse:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ClientError(f"{url}: only http:// and https:// URLs are supported")
        host = parts.hostname
        if not host:
            raise ClientError(f"{url}: no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ClientError(f"{url}: bad port") from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        hdrs: list[tuple[bytes, bytes]] = [(b"host", authority.encode("idna"))]
        for n, v in headers:
            if n.lower() not in ("host", "content-length", "transfer-encoding"):
                hdrs.append((n.encode("latin-1"), v.encode("latin-1")))
        if body or method in ("POST", "PUT", "PATCH"):
            hdrs.append((b"content-length", str(len(body)).encode()))
        head = RequestHead(method.encode("ascii"), target.encode("ascii"), tuple(hdrs))
        key = (parts.scheme, host, port)
        while True:
            c = await self._connection(key)
            try:
                return await self._exchange(key, c, head, body, url)
            except (_Stale, FlowClosed, ConnectionError) as exc:
                with contextlib.suppress(Exception):
                    await c.flow.close()
                if not (c.reused and method in _REPEATABLE):
                    raise ClientError(f"{method} {url}: connection lost ({exc})") from None
            except HttpError as exc:
                with contextlib.suppress(Exception):
                    await c.flow.close()
                raise ClientError(f"{method} {url}: {exc}") from None

    async def _connection(self, key: tuple[str, str, int]) -> _Conn:
        idle = self._idle.get(key)
        if idle:
            c = idle.pop()
            c.reused = True
            return c
        scheme, host, port = key
        try:
            flow = await self.tcp.connect(host, port)
        except OSError as exc:
            raise ClientError(f"cannot connect to {host}:{port}: {exc}") from None
        self.connections_opened += 1
        if scheme == "https":
            from mirage.http._tls import client_config, tls_connect, tls_error

            if self._tls_config is None:
                self._tls_config = client_config(self.tls)
            try:
                flow = await tls_connect(flow, self._tls_config, host)
            except tls_error() as exc:
                raise ClientError(f"TLS with {host}:{port} failed: {exc}") from None
        return _Conn(flow, self.limits)

    async def _exchange(
        self, key: tuple[str, str, int], c: _Conn, head: RequestHead, body: bytes, url: str
    ) -> ClientResponse:
        conn, flow = c.conn, c.flow
        out = conn.send(head)
        if body:
            out += conn.send(Data(body))
        out += conn.send(EndOfMessage())
        await flow.write(out)
        response: ResponseHead | None = None
        parts: list[bytes] = []
        received = False
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError:
                if not received:
                    raise _Stale("closed before a response") from None
                raise
            if event is NEED_DATA:
                data = await flow.read()
                received = received or bool(data)
                conn.receive_data(data)
            elif isinstance(event, InformationalResponse):
                continue
            elif isinstance(event, ResponseHead):
                response = event
            elif isinstance(event, Data):
                parts.append(event.data)
            elif isinstance(event, EndOfMessage):
                assert response is not None
                self._release(key, c)
                return ClientResponse(
                    response.status,
                    _str(response.headers),
                    b"".join(parts),
                    url,
                    _str(event.trailers),
                )
            elif isinstance(event, ConnectionClosed):
                raise _Stale("closed before a response")
            else:
                raise RemoteProtocolError("unexpected event")

    def _release(self, key: tuple[str, str, int], c: _Conn) -> None:
        conn = c.conn
        if conn.our_state is State.DONE and conn.their_state is State.DONE:
            conn.start_next_cycle()
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle_per_host:
                idle.append(c)
                return
        task = asyncio.ensure_future(c.flow.close())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


class _Stale(Exception):
    pass
