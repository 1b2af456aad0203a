"""The asyncio HTTP/1.1 server: a thin driver of :class:`Connection` over a mirage
:class:`~mirage.core.types.Flow`.

Each connection runs one loop: read until a request head is parsed, call the
handler, write its response, drop whatever request body the handler left unread,
then start the next cycle (keep-alive and pipelining) or close. A connection that
opens with the HTTP/2 preface goes to ``_h2`` instead. Policy lives here, not in the
core: how many connections at once, in all and per client address (more get 503),
how long a connection may sit idle between requests, how long a request head may
take to arrive in full (a slow client cannot hold a connection by dribbling bytes),
and how long one body read or one response write may wait on the peer. Deadlines
are taken from the event loop's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mirage.core.types import Flow, FlowClosed, Stack, Tcp
from mirage.http._connection import Connection, Role, State
from mirage.http._errors import HttpError, RemoteProtocolError
from mirage.http._events import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
)
from mirage.http._events import Request as RequestHead
from mirage.http._events import Response as ResponseHead
from mirage.http._limits import Limits
from mirage.http._message import Handler, Request, Response
from mirage.http._serialise import REASONS

if TYPE_CHECKING:
    from mirage.tls import TlsConfig

__all__ = ["Server", "ServerConfig", "serve"]

log = logging.getLogger("mirage.http.server")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The settings of an HTTP server (each field says what it sets)."""

    limits: Limits = field(default_factory=Limits)
    max_connections: int = 1024
    """Connections served at once; one more gets 503 and is closed."""
    max_connections_per_client: int | None = 128
    """Connections from one client address at once (``None``: no limit); one more
    gets 503, so one client cannot take every connection."""
    idle_timeout: float = 5.0
    """Seconds a kept-alive connection may wait for its next request."""
    header_timeout: float = 10.0
    """Seconds from a request's first byte to the end of its head (408 after)."""
    body_timeout: float = 30.0
    """Seconds one read of a request body may wait."""
    http2: bool = True
    """Serve HTTP/2 to clients that open with its preface (h2c by prior knowledge);
    needs the ``h2`` package (the ``http2`` extra)."""
    tls: TlsConfig | None = None
    """Serve HTTPS: every connection starts with a TLS handshake (mirage-tls, the
    ``tls`` extra) within ``header_timeout``; ALPN offers ``h2`` (with ``http2``)
    and ``http/1.1`` unless the config names its own protocols."""


def _bytes_headers(headers: Sequence[tuple[str, str] | tuple[bytes, bytes]]) -> Headers:
    if type(headers) is tuple and all(type(n) is bytes for n, _ in headers):
        return headers
    out = []
    for name, value in headers:
        n = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        v = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        out.append((n, v))
    return tuple(out)


def _h2c_settings(headers: Headers) -> bytes | None:
    """The HTTP2-Settings value of an ``Upgrade: h2c`` request we can take (h2 is
    installed, the request has no body); None otherwise."""
    for name, value in headers:
        if name.lower() == b"upgrade" and b"h2c" in value.lower():
            break
    else:
        return None
    try:
        from mirage.http._h2 import h2c_upgrade
    except ImportError:
        return None
    return h2c_upgrade(headers)


_EOM = EndOfMessage()
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Exchange:
    """One connection's flow, core and read deadline.

    The deadline is enforced by one timer per connection that is re-armed only when
    it fires early, so moving the deadline costs an assignment. When it expires
    while we wait on the peer (a read, or a write the peer does not drain), the flow
    is closed (after a 408 if a request head had begun), which ends the read with
    ``b""`` or the write with an error.
    """

    __slots__ = (
        "closer",
        "config",
        "conn",
        "deadline",
        "expired",
        "flow",
        "head_started",
        "loop",
        "reading",
        "timer",
        "timer_when",
        "writer",
    )

    def __init__(self, conn: Connection, flow: Flow, config: ServerConfig) -> None:
        self.conn = conn
        self.flow = flow
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = 0.0
        self.reading = False
        self.expired = False
        self.head_started = False
        self.closer: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[Any] | None = None

    def set_deadline(self, deadline: float) -> None:
        self.deadline = deadline
        if self.timer is None or deadline < self.timer_when:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_when = deadline
            self.timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self.timer = None
        if self.loop.time() < self.deadline:
            self.timer_when = self.deadline
            self.timer = self.loop.call_at(self.deadline, self._fire)
        elif (self.reading or self.writer is not None) and not self.expired:
            self.expired = True
            if self.writer is not None:
                self.writer.cancel()
            self.closer = asyncio.ensure_future(self._expire())

    async def _expire(self) -> None:
        flow = self.flow
        with contextlib.suppress(Exception):
            if self.head_started and self.conn.our_state is State.IDLE:
                await flow.write(_raw_error(408))
                await flow.shutdown()
        await close_flow(flow)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    async def read(self) -> bytes:
        if self.expired:
            return b""
        self.reading = True
        try:
            return await self.flow.read()
        finally:
            self.reading = False

    async def write(self, data: bytes) -> None:
        """Write with a deadline too: a client that stops reading its responses
        loses the connection after ``body_timeout``. The timer cancels the task
        that waits here (so the cancellation lands on this await, nowhere else)."""
        self.set_deadline(self.loop.time() + self.config.body_timeout)
        self.writer = asyncio.current_task()
        try:
            await self.flow.write(data)
        except asyncio.CancelledError:
            if not self.expired or self.writer is None:
                raise
            self.writer.uncancel()
            raise FlowClosed("the peer did not read its response in time") from None
        finally:
            self.writer = None

    async def body(self) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            if conn.they_are_waiting_for_100_continue:
                await self.flow.write(conn.send(InformationalResponse(100)))
            event = conn.next_event()
            if event is NEED_DATA:
                self.set_deadline(self.loop.time() + self.config.body_timeout)
                data = await self.read()
                if self.expired:
                    raise HttpError("request body timed out", 408)
                conn.receive_data(data)
            elif isinstance(event, Data):
                yield event.data
            elif isinstance(event, EndOfMessage):
                return
            else:  # pragma: no cover - the core gives nothing else in SEND_BODY
                raise RemoteProtocolError("unexpected event in a request body")


async def close_flow(flow: Flow, grace: float = 2.0) -> None:
    """Close ``flow``, waiting at most ``grace`` seconds: a close can wait for unsent
    bytes that a peer never reads. A flow with an ``abort()`` is aborted then."""
    try:
        async with asyncio.timeout(grace):
            await flow.close()
        return
    except TimeoutError:
        pass
    except Exception:
        return
    abort = getattr(flow, "abort", None)
    if callable(abort):
        with contextlib.suppress(Exception):
            result = abort()
            if asyncio.iscoroutine(result):
                await result


def _raw_error(status: int) -> bytes:
    reason = REASONS.get(status, b"Error")
    body = b"%d %s\n" % (status, reason)
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
    )


class Server:
    """Serves ``handler`` on every flow given to :meth:`handle` (a Tcp handler)."""

    def __init__(self, handler: Handler, config: ServerConfig | None = None) -> None:
        self.handler = handler
        self.config = config if config is not None else ServerConfig()
        self.active = 0
        self._per_client: dict[str, int] = {}
        self._tls: TlsConfig | None = None
        if self.config.tls is not None:
            from mirage.http._tls import server_config

            self._tls = server_config(self.config.tls, http2=self.config.http2)

    async def listen(self, tcp: Tcp, port: int) -> None:
        await tcp.listen(port, self.handle)

    async def handle(self, flow: Flow) -> None:
        peer = getattr(flow, "peer", None)
        host = peer[0] if isinstance(peer, tuple) and peer else None
        per_client = self.config.max_connections_per_client
        if self.active >= self.config.max_connections or (
            host is not None
            and per_client is not None
            and self._per_client.get(host, 0) >= per_client
        ):
            with contextlib.suppress(FlowClosed, ConnectionError, OSError):
                await flow.write(_raw_error(503))
                await flow.shutdown()
            with contextlib.suppress(FlowClosed, ConnectionError, OSError):
                await flow.close()
            return
        self.active += 1
        if host is not None:
            self._per_client[host] = self._per_client.get(host, 0) + 1
        ex: _Exchange | None = None
        try:
            if self._tls is not None:
                from mirage.http._tls import tls_accept

                tls = await tls_accept(flow, self._tls, self.config.header_timeout)
                if tls is None:
                    return
                flow = tls
            ex = _Exchange(Connection(Role.SERVER, self.config.limits), flow, self.config)
            await self._serve(ex)
        except (FlowClosed, ConnectionError, OSError):
            pass
        finally:
            self.active -= 1
            if host is not None:
                left = self._per_client.pop(host, 1) - 1
                if left:
                    self._per_client[host] = left
            if ex is not None:
                ex.stop()
            await close_flow(flow)

    async def _serve(self, ex: _Exchange) -> None:
        conn, flow, loop, config = ex.conn, ex.flow, ex.loop, self.config
        client = getattr(flow, "peer", None)
        handler = self.handler
        if config.http2:
            if await self._maybe_h2(ex):
                return
        else:
            ex.set_deadline(loop.time() + config.idle_timeout)
        while True:
            while True:
                try:
                    event = conn.next_event()
                except RemoteProtocolError as exc:
                    await self._error(conn, flow, exc.status, str(exc))
                    return
                if event is not NEED_DATA:
                    break
                data = await ex.read()
                if data and not ex.head_started:
                    ex.head_started = True
                    ex.set_deadline(loop.time() + config.header_timeout)
                conn.receive_data(data)
            if type(event) is not RequestHead:
                return  # ConnectionClosed (or PAUSED after a MUST_CLOSE exchange)
            assert isinstance(event, RequestHead)
            request = Request(
                event.method.decode("ascii"),
                event.target.decode("latin-1"),
                event.headers,
                http_version="1.1" if event.http_version == b"1.1" else "1.0",
                client=client,
                body=ex.body,
            )
            if (
                config.http2
                and self._tls is None
                and event.http_version == b"1.1"
                and not ex.expired
            ):
                settings = _h2c_settings(event.headers)
                if settings is not None and await self._upgrade_h2c(ex, event, settings):
                    return
            try:
                response = await handler(request)
            except HttpError as exc:
                await self._error(conn, flow, exc.status, str(exc))
                return
            except Exception:
                log.exception("handler failed for %r", request)
                await self._error(conn, flow, 500, "internal server error")
                return
            if not await self._respond(ex, response):
                return
            if conn.their_state is State.SEND_BODY:
                # Drop what the handler left of the request body: at once if it is
                # all here (a request without a body just has its end to take).
                event = conn.next_event()
                while type(event) is Data:
                    event = conn.next_event()
            if conn.their_state is State.SEND_BODY:
                try:
                    async for _ in ex.body():
                        pass
                except HttpError:
                    return
            if conn.our_state is State.DONE and conn.their_state is State.DONE:
                conn.start_next_cycle()
                ex.head_started = False
                ex.set_deadline(loop.time() + config.idle_timeout)
                continue
            with contextlib.suppress(FlowClosed, ConnectionError, OSError):
                await flow.shutdown()
            return

    async def _upgrade_h2c(self, ex: _Exchange, head: RequestHead, settings: bytes) -> bool:
        """Answer ``Upgrade: h2c`` with 101 and go on in HTTP/2; False (still
        HTTP/1.1) if the ``HTTP2-Settings`` value is malformed."""
        from mirage.http._h2 import serve_h2c_upgrade

        initial, _ = ex.conn.trailing_data
        ex.stop()
        config = self.config
        return await serve_h2c_upgrade(
            ex.flow,
            self.handler,
            method=head.method,
            target=head.target,
            headers=head.headers,
            settings=settings,
            initial=initial,
            idle_timeout=config.idle_timeout,
            max_body_size=config.limits.max_body_size,
        )

    async def _maybe_h2(self, ex: _Exchange) -> bool:
        """Read the first bytes: True if they were the HTTP/2 preface and the
        connection was served as h2c; else they go to the HTTP/1.1 core."""
        ex.set_deadline(ex.loop.time() + self.config.idle_timeout)
        initial = b""
        while len(initial) < len(_PREFACE) and _PREFACE.startswith(initial):
            data = await ex.read()
            if not data:
                break
            initial += data
        if initial.startswith(_PREFACE):
            try:
                from mirage.http._h2 import serve_h2
            except ImportError:  # h2 is not installed: HTTP/1.1 answers 505
                pass
            else:
                ex.stop()
                config = self.config
                await serve_h2(
                    ex.flow, self.handler, initial, config.idle_timeout, config.limits.max_body_size
                )
                return True
        if initial:
            ex.head_started = True
            ex.set_deadline(ex.loop.time() + self.config.header_timeout)
            ex.conn.receive_data(initial)
        else:
            ex.conn.receive_data(b"")
        return False

    async def _respond(self, ex: _Exchange, response: Response) -> bool:
        """Send ``response``; False if the connection must end here."""
        conn, flow = ex.conn, ex.flow
        headers = _bytes_headers(response.headers)
        if conn.they_are_waiting_for_100_continue:
            headers += ((b"connection", b"close"),)  # the body they hold back stays unread
        body = response.body
        try:
            if type(body) is bytes:
                for name, _ in headers:
                    if name == b"content-length" or name.lower() == b"content-length":
                        break
                else:
                    headers += ((b"content-length", b"%d" % len(body)),)
                out = conn.send(ResponseHead(response.status, headers))
                if body:
                    out += conn.send(Data(body))
                trailers = response.trailers
                out += conn.send(EndOfMessage(_bytes_headers(trailers)) if trailers else _EOM)
                await ex.write(out)
                return True
            assert not isinstance(body, bytes)
            await ex.write(conn.send(ResponseHead(response.status, headers)))
            async for chunk in body:
                if chunk:
                    await ex.write(conn.send(Data(bytes(chunk))))
            await ex.write(conn.send(EndOfMessage(_bytes_headers(response.trailers))))
            return True
        except HttpError as exc:  # a local error in the response, or a body error
            if conn.our_state is State.SEND_RESPONSE:
                await self._error(conn, flow, 500 if exc.status == 400 else exc.status, str(exc))
            return False
        except (FlowClosed, ConnectionError, OSError):
            return False
        except Exception:
            log.exception("response body failed")
            if conn.our_state is State.SEND_RESPONSE:
                await self._error(conn, flow, 500, "internal server error")
            return False

    async def _error(self, conn: Connection, flow: Flow, status: int, message: str) -> None:
        """Answer ``status`` (if no response has started) and close."""
        log.debug("answering %d: %s", status, message)
        if conn.our_state is State.SEND_RESPONSE or (
            conn.our_state is State.IDLE and conn.their_state is State.ERROR
        ):
            with contextlib.suppress(HttpError, FlowClosed, ConnectionError, OSError):
                wire = _raw_error(status)
                head, _, body = wire.partition(b"\r\n\r\n")
                out = conn.send(
                    ResponseHead(
                        status,
                        tuple(
                            (n.lower(), v)
                            for n, _, v in (
                                line.partition(b": ") for line in head.split(b"\r\n")[1:]
                            )
                        ),
                    )
                )
                out += conn.send(Data(body)) + conn.send(EndOfMessage())
                await flow.write(out)
                await flow.shutdown()
        conn.send(ConnectionClosed())


async def serve(
    stack: Stack, port: int, handler: Handler, config: ServerConfig | None = None
) -> Server:
    """Serve ``handler`` over HTTP/1.1 (and HTTP/2) on TCP ``port`` of ``stack``,
    over TLS if ``config.tls`` is set; returns at once (the stack runs the
    connections)."""
    server = Server(handler, config)
    await server.listen(stack.tcp, port)
    return server
