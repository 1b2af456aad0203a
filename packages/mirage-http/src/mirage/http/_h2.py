"""HTTP/2 over a flow (h2c by prior knowledge), on the ``h2`` library's sans-IO core.

The server answers a connection that opens with the HTTP/2 preface here instead of
in the HTTP/1.1 loop. One task reads frames and feeds ``h2``; every request stream
runs the same handler as HTTP/1.1 in a task of its own, its body arriving through a
queue. Responses respect the peer's flow-control windows; all writes go through one
lock so that frames from concurrent streams do not interleave mid-frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from mirage.core.types import Flow, FlowClosed
from mirage.http._errors import HttpError
from mirage.http._message import Handler, Request, Response

__all__ = ["PREFACE", "serve_h2"]

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

    async def run(self, initial: bytes) -> None:
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
