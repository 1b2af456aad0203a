"""HTTP/2 over a flow (h2c by prior knowledge or by ``Upgrade: h2c``, and h2 chosen
by ALPN over TLS), on the ``h2`` library's sans-IO core.

The server answers a connection that opens with the HTTP/2 preface here instead of
in the HTTP/1.1 loop; an HTTP/1.1 request without a body that asks for ``Upgrade:
h2c`` (with ``HTTP2-Settings``) gets 101 and its response on stream 1. One task
reads frames and feeds ``h2``; every request stream runs the same handler as
HTTP/1.1 in a task of its own, its body arriving through a queue. Responses respect
the peer's flow-control windows; all writes go through one lock so that frames from
concurrent streams do not interleave mid-frame.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from mirage.core.types import Flow, FlowClosed
from mirage.http._errors import HttpError
from mirage.http._message import Handler, Request, Response

__all__ = ["PREFACE", "h2c_upgrade", "serve_h2", "serve_h2c_upgrade"]

log = logging.getLogger("mirage.http.h2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class _Stream:
    __slots__ = ("body", "task")

    def __init__(self) -> None:
        self.body: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class _H2Server:
    def __init__(
        self, flow: Flow, handler: Handler, idle_timeout: float, max_body_size: int | None
    ) -> None:
        self.flow = flow
        self.max_body_size = max_body_size
        self.handler = handler
        self.idle_timeout = idle_timeout
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.streams: dict[int, _Stream] = {}
        self.lock = asyncio.Lock()
        self.window = asyncio.Event()
        self.client = getattr(flow, "peer", None)

    async def flush(self) -> None:
        async with self.lock:
            data = self.conn.data_to_send()
            if data:
                await self.flow.write(data)

    async def run(self, initial: bytes, *, initiated: bool = False) -> None:
        if not initiated:
            self.conn.initiate_connection()
        try:
            data = initial
            while True:
                if data:
                    try:
                        events = self.conn.receive_data(data)
                    except h2.exceptions.ProtocolError:
                        await self.flush()  # h2 has queued its GOAWAY
                        return
                    for event in events:
                        if not await self.dispatch(event):
                            await self.flush()
                            return
                await self.flush()
                timeout = None if self.streams else self.idle_timeout
                try:
                    async with asyncio.timeout(timeout):
                        data = await self.flow.read()
                except TimeoutError:
                    self.conn.close_connection()
                    await self.flush()
                    return
                if not data:
                    return
        finally:
            for stream in self.streams.values():
                if stream.task is not None:
                    stream.task.cancel()

    async def dispatch(self, event: h2.events.Event) -> bool:
        if isinstance(event, h2.events.RequestReceived):
            stream = _Stream()
            self.streams[event.stream_id] = stream
            stream.task = asyncio.ensure_future(self.respond(event.stream_id, event.headers))
            if event.stream_ended is not None:
                stream.body.put_nowait(None)
        elif isinstance(event, h2.events.DataReceived):
            # The window reopens as the handler reads (see respond), so a client
            # cannot queue more than a window's worth that nobody reads.
            stream_or_none = self.streams.get(event.stream_id)
            padding = event.flow_controlled_length - len(event.data)
            if stream_or_none is None or padding:
                unread = event.flow_controlled_length if stream_or_none is None else padding
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    self.conn.acknowledge_received_data(unread, event.stream_id)
            if stream_or_none is not None and event.data:
                stream_or_none.body.put_nowait(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            stream_or_none = self.streams.get(event.stream_id)
            if stream_or_none is not None:
                stream_or_none.body.put_nowait(None)
        elif isinstance(event, h2.events.StreamReset):
            stream_or_none = self.streams.pop(event.stream_id, None)
            if stream_or_none is not None and stream_or_none.task is not None:
                stream_or_none.task.cancel()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            return False
        return True

    async def respond(self, stream_id: int, raw: Any) -> None:
        pseudo: dict[bytes, bytes] = {}
        headers: list[tuple[bytes, bytes]] = []
        for name, value in raw:
            if name.startswith(b":"):
                pseudo[name] = value
            else:
                headers.append((name, value))
        if b":authority" in pseudo and not any(n == b"host" for n, _ in headers):
            headers.insert(0, (b"host", pseudo[b":authority"]))
        stream = self.streams[stream_id]
        method = pseudo.get(b":method", b"GET").decode("ascii", "replace")

        limit = self.max_body_size

        async def body() -> AsyncIterator[bytes]:
            total = 0
            while (piece := await stream.body.get()) is not None:
                total += len(piece)
                if limit is not None and total > limit:
                    raise HttpError("request body too large", 413)
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    self.conn.acknowledge_received_data(len(piece), stream_id)
                await self.flush()
                yield piece

        request = Request(
            method,
            pseudo.get(b":path", b"/").decode("latin-1"),
            headers,
            http_version="2",
            client=self.client,
            body=body,
        )
        try:
            try:
                response = await self.handler(request)
            except HttpError as exc:
                response = Response.text(f"{exc.status} {exc}\n", exc.status)
            except Exception:
                log.exception("handler failed for %r", request)
                response = Response.text("500 Internal Server Error\n", 500)
            await self.send(stream_id, response, head_only=method == "HEAD")
        except (FlowClosed, ConnectionError, OSError):
            pass
        except h2.exceptions.StreamClosedError:
            pass
        finally:
            self.streams.pop(stream_id, None)

    async def send(self, stream_id: int, response: Response, *, head_only: bool) -> None:
        out = [(b":status", str(response.status).encode())]
        for name, value in response.headers:
            n = name.encode("latin-1").lower() if isinstance(name, str) else name.lower()
            v = value.encode("latin-1") if isinstance(value, str) else value
            if n not in _HOP_BY_HOP:
                out.append((n, v))
        body = response.body
        trailers = [
            (
                n.encode("latin-1").lower() if isinstance(n, str) else n.lower(),
                v.encode("latin-1") if isinstance(v, str) else v,
            )
            for n, v in response.trailers
        ]
        if isinstance(body, bytes) and not any(n == b"content-length" for n, _ in out):
            out.append((b"content-length", str(len(body)).encode()))
        empty = head_only or (isinstance(body, bytes) and not body and not trailers)
        self.conn.send_headers(stream_id, out, end_stream=empty)
        await self.flush()
        if empty:
            return
        if isinstance(body, bytes):
            await self.send_data(stream_id, body)
        else:
            async for piece in body:
                await self.send_data(stream_id, bytes(piece))
        if trailers:
            self.conn.send_headers(stream_id, trailers, end_stream=True)
        else:
            self.conn.end_stream(stream_id)
        await self.flush()

    async def send_data(self, stream_id: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            window = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            if window <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            self.conn.send_data(stream_id, bytes(view[:window]))
            view = view[window:]
            await self.flush()


async def serve_h2(
    flow: Flow,
    handler: Handler,
    initial: bytes,
    idle_timeout: float,
    max_body_size: int | None = None,
) -> None:
    """Serve one HTTP/2 connection whose first bytes (the preface and perhaps more)
    are ``initial``. Request bodies over ``max_body_size`` are answered with 413."""
    with contextlib.suppress(FlowClosed, ConnectionError, OSError):
        await _H2Server(flow, handler, idle_timeout, max_body_size).run(initial)


_UPGRADE_DROP = _HOP_BY_HOP | {b"host", b"http2-settings", b"te", b"content-length"}


def _tokens(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> set[bytes]:
    return {t.strip().lower() for n, v in headers if n.lower() == name for t in v.split(b",")}


def h2c_upgrade(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The ``HTTP2-Settings`` value of a request asking to upgrade to h2c (RFC 7540
    3.2: ``Upgrade: h2c``, ``Connection: Upgrade, HTTP2-Settings``, exactly one
    settings field); None otherwise. Requests with a body are not upgraded."""
    if b"h2c" not in _tokens(headers, b"upgrade"):
        return None
    if not {b"upgrade", b"http2-settings"} <= _tokens(headers, b"connection"):
        return None
    settings = [v for n, v in headers if n.lower() == b"http2-settings"]
    if len(settings) != 1:
        return None
    for n, v in headers:
        name = n.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and v.strip() != b"0"):
            return None
    value = settings[0].strip()
    # token68 in the base64url alphabet (RFC 7540 3.2.1), whole 6-byte settings
    if not _BASE64URL.fullmatch(value) or (len(value.rstrip(b"=")) * 3 // 4) % 6:
        return None
    return value


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


async def serve_h2c_upgrade(
    flow: Flow,
    handler: Handler,
    *,
    method: bytes,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    settings: bytes,
    initial: bytes,
    idle_timeout: float,
    max_body_size: int | None = None,
) -> bool:
    """Switch an HTTP/1.1 connection to h2c: 101, then the request (``method``,
    ``target``, ``headers``, no body) answered on stream 1, then HTTP/2 as after a
    preface (``initial``: bytes that followed the request). False (nothing sent) if
    the ``HTTP2-Settings`` value is malformed."""
    server = _H2Server(flow, handler, idle_timeout, max_body_size)
    padded = settings.rstrip(b"=") + b"=" * (-len(settings.rstrip(b"=")) % 4)
    try:
        server.conn.initiate_upgrade_connection(padded)
    except (binascii.Error, ValueError, h2.exceptions.ProtocolError):
        return False
    except Exception:  # hyperframe's errors for a malformed settings payload
        return False
    authority = next((v for n, v in headers if n.lower() == b"host"), b"")
    raw = [(b":method", method), (b":scheme", b"http"), (b":authority", authority)]
    raw.append((b":path", target))
    raw += [(n.lower(), v) for n, v in headers if n.lower() not in _UPGRADE_DROP]
    with contextlib.suppress(FlowClosed, ConnectionError, OSError):
        await flow.write(
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
        )
        stream = _Stream()
        server.streams[1] = stream
        stream.body.put_nowait(None)
        stream.task = asyncio.ensure_future(server.respond(1, raw))
        await server.run(initial, initiated=True)
    return True
