"""Static files from any :class:`~mirage.core.types.KvRo` store.

A request path maps to a key by its ``/``-separated segments after percent-decoding;
a path with a ``.`` or ``..`` segment, a backslash or a NUL is not found, so nothing
outside the store can be named. A dictionary answers with its index file (after a
redirect that adds the trailing slash). Responses carry an ETag (from the store's
digest) and Last-Modified, answer conditional requests with 304, and serve byte
ranges: one range as 206 with Content-Range, several as ``multipart/byteranges``,
none satisfiable as 416.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from mirage.core.types import KvError, KvKind, KvRo, KvValueExpected
from mirage.http._date import format_http_date, parse_http_date
from mirage.http._message import Request, Response
from mirage.http._mime import content_type

__all__ = ["StaticFiles", "parse_range"]

_RANGE_ITEM = re.compile(r"[ \t]*(?:([0-9]{1,18})-([0-9]{0,18})|-([0-9]{1,18}))[ \t]*")
_MAX_RANGES = 16
_STREAM_ABOVE = 1 << 20
_PIECE = 1 << 16


def parse_range(value: str, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable byte ranges of a Range header as ``(first, last)`` pairs.

    ``None`` when the header is to be ignored (not bytes, malformed, too many
    ranges); ``[]`` when no range is satisfiable (416)."""
    unit, eq, spec = value.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    items = spec.split(",")
    if len(items) > _MAX_RANGES:
        return None
    ranges = []
    for item in items:
        m = _RANGE_ITEM.fullmatch(item)
        if m is None:
            return None
        first, last, suffix = m.groups()
        if suffix is not None:
            n = int(suffix)
            if n == 0 or size == 0:
                continue
            ranges.append((max(0, size - n), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            return None
        if start >= size:
            continue
        end = int(last) if last else size - 1
        ranges.append((start, min(end, size - 1)))
    return ranges


def _key(path: str) -> str | None:
    if "\\" in path or "\x00" in path:
        return None
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        return None
    try:
        return "/".join(segments).encode("utf-8").decode("utf-8")
    except UnicodeError:  # surrogate escapes: not UTF-8 after percent-decoding
        return None


def _etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    for item in header.split(","):
        tag = item.strip()
        if tag == "*":
            return True
        if weak:
            if tag.removeprefix("W/") == etag:
                return True
        elif tag == etag:
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Entry:
    """A served file as last seen: its size, time, ETag, type and prepared headers."""

    size: int
    mtime: float
    etag: str
    ctype: str
    full: tuple[tuple[bytes, bytes], ...]  # the headers of a 200
    not_modified: tuple[tuple[bytes, bytes], ...]  # validators only (304)


class StaticFiles:
    """A request handler serving the files of ``store``::

    await serve(stack, 8080, StaticFiles(htdocs))
    """

    def __init__(
        self,
        store: KvRo,
        *,
        index: Sequence[str] = ("index.html",),
        cache_control: str | None = None,
    ) -> None:
        self.store = store
        self.index = tuple(index)
        self.cache_control = cache_control
        self._entries: dict[str, _Entry] = {}

    async def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response.text("405 Method Not Allowed\n", 405, allow="GET, HEAD")
        key = _key(request.path)
        if key is None:
            return Response.text("404 Not Found\n", 404)
        try:
            try:
                entry = await self._entry(key)
            except KvValueExpected:
                if not request.raw_path.endswith("/"):
                    location = request.raw_path + "/"
                    if request.query:
                        location += "?" + request.query
                    return Response.text("301 Moved Permanently\n", 301, location=location)
                for name in self.index:
                    candidate = f"{key}/{name}" if key else name
                    if await self.store.exists(candidate) is KvKind.VALUE:
                        key = candidate
                        break
                else:
                    return Response.text("404 Not Found\n", 404)
                entry = await self._entry(key)
            return await self._file(request, key, entry)
        except KvError:
            return Response.text("404 Not Found\n", 404)

    async def _entry(self, key: str) -> _Entry:
        """What we know of the value at ``key``: from the cache while its size and
        modification time are unchanged. Raises KvValueExpected for a dictionary."""
        size = await self.store.size(key)
        mtime = await self.store.last_modified(key)
        entry = self._entries.get(key)
        if entry is not None and entry.mtime == mtime and entry.size == size:
            return entry
        etag = '"' + (await self.store.digest(key)).hex()[:32] + '"'
        ctype = content_type(key.rpartition("/")[2])
        validators = [
            (b"etag", etag.encode()),
            (b"last-modified", format_http_date(mtime).encode()),
            (b"accept-ranges", b"bytes"),
        ]
        if self.cache_control:
            validators.append((b"cache-control", self.cache_control.encode("latin-1")))
        entry = _Entry(
            size,
            mtime,
            etag,
            ctype,
            ((b"content-type", ctype.encode()), *validators, (b"content-length", b"%d" % size)),
            tuple(validators),
        )
        if len(self._entries) >= 4096:
            self._entries.clear()
        self._entries[key] = entry
        return entry

    async def _file(self, request: Request, key: str, entry: _Entry) -> Response:
        size, mtime, etag, ctype = entry.size, entry.mtime, entry.etag, entry.ctype
        if self._not_modified(request, etag, mtime):
            return Response(304, entry.not_modified)
        ranges = None
        header = request.header("range")
        if header is not None and request.method == "GET" and self._if_range(request, etag, mtime):
            ranges = parse_range(header, size)
        if ranges is None:
            if request.method == "HEAD":
                return Response(200, entry.full)
            return Response(200, entry.full, await self._body(key, 0, size))
        if not ranges:
            unsatisfiable = f"bytes */{size}"
            return Response.text("416 Range Not Satisfiable\n", 416, content_range=unsatisfiable)
        headers = list(entry.not_modified)
        if len(ranges) == 1:
            first, last = ranges[0]
            headers.append((b"content-type", ctype.encode()))
            headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
            headers.append((b"content-length", b"%d" % (last - first + 1)))
            return Response(206, tuple(headers), await self._body(key, first, last - first + 1))
        boundary = hashlib.sha256(f"{etag}{ranges}".encode()).hexdigest()[:32]
        parts = []
        for first, last in ranges:
            parts.append(
                f"--{boundary}\r\ncontent-type: {ctype}\r\n"
                f"content-range: bytes {first}-{last}/{size}\r\n\r\n".encode()
            )
            parts.append(await self.store.get_partial(key, first, last - first + 1))
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        headers.append((b"content-type", f"multipart/byteranges; boundary={boundary}".encode()))
        return Response(206, tuple(headers), b"".join(parts))

    async def _body(self, key: str, offset: int, length: int) -> bytes | AsyncIterator[bytes]:
        if length <= _STREAM_ABOVE:
            if offset == 0:
                data = await self.store.get(key)
                return data if len(data) == length else data[:length]
            return await self.store.get_partial(key, offset, length)
        return self._pieces(key, offset, length)

    async def _pieces(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        end = offset + length
        while offset < end:
            piece = await self.store.get_partial(key, offset, min(_PIECE, end - offset))
            if not piece:
                return
            offset += len(piece)
            yield piece

    @staticmethod
    def _not_modified(request: Request, etag: str, mtime: float) -> bool:
        inm = request.header("if-none-match")
        if inm is not None:
            return _etag_matches(inm, etag, weak=True)
        ims = request.header("if-modified-since")
        if ims is not None:
            since = parse_http_date(ims)
            return since is not None and int(mtime) <= since
        return False

    @staticmethod
    def _if_range(request: Request, etag: str, mtime: float) -> bool:
        value = request.header("if-range")
        if value is None:
            return True
        if value.startswith('"'):
            return value == etag
        date = parse_http_date(value)
        return date is not None and int(mtime) <= date
