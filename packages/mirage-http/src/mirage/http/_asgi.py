"""Run an ASGI 3 application (Starlette, FastAPI, Django's ASGI handler ...) as a
request handler.

Each request gets an ``http`` scope; ``receive`` hands out the request body piece by
piece and then ``http.disconnect`` once the response is sent; ``send`` takes
``http.response.start`` and ``http.response.body`` messages, whose bodies stream
out as they come. The lifespan protocol is not run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from mirage.http._message import Handler, Request, Response

__all__ = ["AsgiApp", "asgi_handler"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class _AppError(Exception):
    pass


def asgi_handler(
    app: AsgiApp, *, server: tuple[str, int] | None = None, root_path: str = ""
) -> Handler:
    """A request handler that runs ``app`` for every request."""

    async def handle(request: Request) -> Response:
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version,
            "method": request.method,
            "scheme": "http",
            "path": request.path,
            "raw_path": request.raw_path.encode("latin-1"),
            "query_string": request.query.encode("latin-1"),
            "root_path": root_path,
            "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in request.headers],
            "client": request.client,
            "server": server,
            "state": {},
        }
        body = request.stream()
        body_done = False
        finished = asyncio.Event()
        started: asyncio.Future[tuple[int, list[tuple[str, str]]]] = (
            asyncio.get_running_loop().create_future()
        )
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

        async def receive() -> Message:
            nonlocal body_done
            if not body_done:
                try:
                    data = await body.__anext__()
                except StopAsyncIteration:
                    body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                return {"type": "http.request", "body": data, "more_body": True}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                if started.done():
                    raise RuntimeError("http.response.start sent twice")
                headers = [
                    (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                    for n, v in message.get("headers", ())
                ]
                started.set_result((int(message["status"]), headers))
            elif kind == "http.response.body":
                if not started.done():
                    raise RuntimeError("http.response.body before http.response.start")
                data = bytes(message.get("body", b""))
                if data:
                    await chunks.put(data)
                if not message.get("more_body", False):
                    await chunks.put(None)
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r}")

        async def run() -> None:
            try:
                await app(scope, receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(_AppError(repr(exc)))
                with contextlib.suppress(asyncio.QueueFull):
                    chunks.put_nowait(None)
                raise
            else:
                if not started.done():
                    started.set_exception(_AppError("the application sent no response"))
                with contextlib.suppress(asyncio.QueueFull):
                    chunks.put_nowait(None)

        task = asyncio.ensure_future(run())
        try:
            status, headers = await started
        except _AppError:
            with contextlib.suppress(Exception):
                await task
            return Response.text("500 Internal Server Error\n", 500)

        async def stream() -> AsyncIterator[bytes]:
            try:
                while True:
                    data = await chunks.get()
                    if data is None:
                        break
                    yield data
            finally:
                finished.set()
                if not task.done():
                    with contextlib.suppress(asyncio.TimeoutError, Exception):
                        await asyncio.wait_for(task, 5.0)

        return Response(status, headers, stream())

    return handle
