"""The store over HTTP: a small REST/JSON API, and its asyncio server.

Routes (``branch`` is a query parameter, ``main`` by default; write routes take
``date`` (POSIX seconds; the server's clock if absent), ``message``, ``author`` and
``email`` as query parameters)::

    GET    /contents/<path>        the contents (application/octet-stream), 404 if none
    PUT    /contents/<path>        set them to the request body (a commit)
    DELETE /contents/<path>        remove the contents or tree (a commit)
    GET    /list/<path>            [[name, "contents" | "node"], ...]
    GET    /branches               {"main": "<commit id>", ...}
    GET    /head                   {"head": "<commit id>" | null}
    GET    /log?n=10               [{"id", "parents", "date", "author", "message"}, ...]
    POST   /merge?from=<branch>&strategy=conflict
                                   {"head": ...}, or 409 {"conflicts": [...]}
    GET    /watch?since=<id>&timeout=30
                                   long poll: {"head": ...} once the head is not
                                   ``since`` (or at the timeout)

Theory of operation: :class:`StoreService` maps a :class:`Request` to a
:class:`Response` and does the store's (blocking) work; :class:`StoreServer` runs it
in one worker thread (so requests are applied in order and the event loop never
waits on the disk) and answers ``/watch`` in the event loop: a waiter looks at the
head again after every write through the server and every ``poll_interval`` seconds
(writes by other processes or by ``git``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ._errors import Conflict, IrminError, MergeConflict, PathError, RefError
from ._http import HttpError, Request, RequestReader, Response, encode_response
from ._merge import MERGES
from ._repo import Info, Repo, split_path
from ._store import Store

__all__ = ["StoreServer", "StoreService", "conflict_to_json"]

MAX_WAIT = 300.0


def _json(value: object, status: int = 200) -> Response:
    return Response(status, json.dumps(value, sort_keys=True).encode())


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _hex(oid: bytes | None) -> str | None:
    return None if oid is None else oid.hex()


def conflict_to_json(c: Conflict) -> dict[str, object]:
    def side(s: tuple[int, bytes] | None) -> list[object] | None:
        return None if s is None else [s[0], s[1].hex()]

    return {
        "path": c.path,
        "reason": c.reason,
        "base": side(c.base),
        "ours": side(c.ours),
        "theirs": side(c.theirs),
    }


class StoreService:
    """The API over ``repo``, one request at a time; ``clock`` dates commits that
    name no ``date``."""

    def __init__(self, repo: Repo, clock: Callable[[], float] = time.time) -> None:
        self.repo = repo
        self.clock = clock

    def store(self, request: Request) -> Store:
        return Store(self.repo, request.query.get("branch", "main"))

    def info(self, request: Request, default: str) -> Info:
        q = request.query
        date = q.get("date")
        if date is not None and not (date.isascii() and date.lstrip("-").isdigit()):
            raise HttpError(400, f"bad date {date[:20]!r}")
        return Info(
            int(date) if date is not None else int(self.clock()),
            q.get("message", default),
            q.get("author", "irmin"),
            q.get("email", "irmin@localhost"),
        )

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except HttpError as e:
            return _error(e.status, e.reason)
        except MergeConflict as e:
            return _json({"conflicts": [conflict_to_json(c) for c in e.conflicts]}, 409)
        except PathError as e:
            return _error(404 if request.method in ("GET", "HEAD") else 400, str(e))
        except (RefError, ValueError) as e:
            return _error(400, str(e))
        except IrminError as e:
            return _error(500, str(e))

    def _route(self, request: Request) -> Response:
        path = request.path
        method = request.method
        for prefix in ("/contents", "/list"):
            if path == prefix or path.startswith(prefix + "/"):
                key = path[len(prefix) + 1 :]
                if prefix == "/list":
                    return self._list(request, key)
                return self._contents(request, key)
        if path == "/branches" and method == "GET":
            refs = self.repo.backend.list_refs("refs/heads/")
            return _json({k.removeprefix("refs/heads/"): v.hex() for k, v in refs.items()})
        if path == "/head" and method == "GET":
            return _json({"head": _hex(self.store(request).head())})
        if path == "/log" and method == "GET":
            return self._log(request)
        if path == "/merge" and method == "POST":
            return self._merge(request)
        if path in ("/branches", "/head", "/log", "/merge"):
            return _error(405, f"{method} {path}")
        return _error(404, f"no route {path!r}")

    def _contents(self, request: Request, key: str) -> Response:
        store = self.store(request)
        if request.method in ("GET", "HEAD"):
            value = store.find(key)
            if value is None:
                return _error(404, f"{key!r}: no contents")
            return Response(200, value, "application/octet-stream")
        if not split_path(key):
            raise HttpError(400, "the root is a tree")
        if request.method == "PUT":
            head = store.set(key, request.body, self.info(request, f"set {key}"))
            return _json({"head": _hex(head)})
        if request.method == "DELETE":
            head = store.remove(key, self.info(request, f"remove {key}"))
            return _json({"head": _hex(head)})
        return _error(405, f"{request.method} /contents")

    def _list(self, request: Request, key: str) -> Response:
        if request.method != "GET":
            return _error(405, f"{request.method} /list")
        store = self.store(request)
        if store.kind(key) != "node":
            return _error(404, f"{key!r}: no tree")
        return _json([[name, kind] for name, kind in store.list(key)])

    def _log(self, request: Request) -> Response:
        n = request.query.get("n", "")
        depth = int(n) if n.isascii() and n.isdigit() else None
        out = []
        store = self.store(request)
        for oid in store.history(None if depth is None else depth)[:depth]:
            c = self.repo.read_commit(oid)
            out.append(
                {
                    "id": oid.hex(),
                    "parents": [p.hex() for p in c.parents],
                    "date": c.committer.time,
                    "author": f"{c.author.name} <{c.author.email}>",
                    "message": c.message,
                }
            )
        return _json(out)

    def _merge(self, request: Request) -> Response:
        q = request.query
        other = q.get("from")
        if not other:
            raise HttpError(400, "merge needs from=<branch>")
        strategy = MERGES.get(q.get("strategy", "conflict"))
        if strategy is None:
            raise HttpError(400, f"no merge strategy {q.get('strategy', '')[:20]!r}")
        store = self.store(request)
        head = store.merge_with_branch(other, self.info(request, f"merge {other}"), strategy)
        return _json({"head": _hex(head)})


class StoreServer:
    """An asyncio HTTP server for :class:`StoreService` (see the module's routes)."""

    def __init__(
        self,
        repo: Repo,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.5,
    ) -> None:
        self.service = StoreService(repo, clock)
        self.poll_interval = poll_interval
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="irmin-http")
        self._server: asyncio.Server | None = None
        self._written: asyncio.Event | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen; the address actually bound (``port`` 0 picks a free one)."""
        self._written = asyncio.Event()
        self._server = await asyncio.start_server(self._connection, host, port)
        addr = self._server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        self._worker.shutdown(wait=True)

    async def _run(self, fn: Callable[..., object], *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = RequestReader()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                try:
                    requests = parser.feed(data)
                except HttpError as e:
                    writer.write(encode_response(_error(e.status, e.reason), keep_alive=False))
                    await writer.drain()
                    return
                for request in requests:
                    response = await self._answer(request)
                    wire = encode_response(response, request.keep_alive)
                    if request.method == "HEAD" and response.body:
                        wire = wire[: -len(response.body)]  # the headers only
                    writer.write(wire)
                    await writer.drain()
                    if not request.keep_alive:
                        return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, request: Request) -> Response:
        if request.path == "/watch" and request.method == "GET":
            return await self._watch(request)
        response = await self._run(self.service.handle, request)
        assert isinstance(response, Response)
        if request.method != "GET" and self._written is not None:
            self._written.set()  # wake the watchers, who look again
            self._written = asyncio.Event()
        return response

    async def _head(self, request: Request) -> bytes | None:
        store = self.service.store(request)
        head = await self._run(store.head)
        assert head is None or isinstance(head, bytes)
        return head

    async def _watch(self, request: Request) -> Response:
        q = request.query
        since_text = q.get("since", "")
        try:
            since = bytes.fromhex(since_text) if since_text else None
            timeout = min(float(q.get("timeout", "30")), MAX_WAIT)
            self.service.store(request)
        except (ValueError, RefError) as e:
            return _error(400, str(e))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while True:
            written = self._written
            head = await self._head(request)
            left = deadline - loop.time()
            if head != since or left <= 0 or written is None:
                return _json({"head": _hex(head), "changed": head != since})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(written.wait(), min(left, self.poll_interval))
