"""What applications see: a received :class:`Request` with a streaming body, and the
:class:`Response` they return."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from mirage.http._errors import HttpError

__all__ = ["Handler", "Request", "Response"]

BodySource = Callable[[], AsyncIterator[bytes]]


class Request:
    """One request as received: head now, body on demand.

    ``headers`` are ``(name, value)`` pairs of ``str`` (names lower-case, values
    decoded as latin-1). The body can be read once, whole with :meth:`body` or piece
    by piece with :meth:`stream`; what the application leaves unread is read and
    dropped by the server before the next request on the connection.
    """

    __slots__ = (
        "_consumed",
        "_headers",
        "_raw",
        "_source",
        "client",
        "http_version",
        "method",
        "path",
        "query",
        "raw_path",
        "target",
        "trailers",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]],
        *,
        http_version: str = "1.1",
        client: tuple[str, int] | None = None,
        body: BodySource | bytes = b"",
    ) -> None:
        self.method = method
        self.target = target
        self._raw: tuple[tuple[bytes, bytes], ...] | None = None
        self._headers: tuple[tuple[str, str], ...] | None = None
        if headers and isinstance(headers[0][0], bytes):
            self._raw = tuple(headers)  # type: ignore[arg-type]
        else:
            self._headers = tuple(headers)  # type: ignore[arg-type]
        self.http_version = http_version
        self.client = client
        raw_path, _, self.query = target.partition("?")
        if raw_path[:1] != "/" and "://" in raw_path:  # absolute-form: keep the path
            raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
        self.raw_path = raw_path
        self.path = unquote(raw_path, errors="surrogateescape")
        self.trailers: tuple[tuple[str, str], ...] = ()
        self._consumed = False
        if isinstance(body, bytes):
            data = body

            async def once() -> AsyncIterator[bytes]:
                if data:
                    yield data

            self._source: BodySource = once
        else:
            self._source = body

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """``(name, value)`` pairs: names lower-case, values decoded as latin-1."""
        if self._headers is None:
            raw = self._raw or ()
            self._headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in raw)
        return self._headers

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of the header ``name`` (any case)."""
        if self._raw is not None:
            key = name.lower().encode("latin-1")
            for n, v in self._raw:
                if n == key:
                    return v.decode("latin-1")
            return default
        name = name.lower()
        for s, t in self.headers:
            if s == name:
                return t
        return default

    def header_list(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def stream(self) -> AsyncIterator[bytes]:
        """The body, piece by piece (once)."""
        if self._consumed:
            raise RuntimeError("the request body was already read")
        self._consumed = True
        return self._source()

    async def body(self, limit: int | None = None) -> bytes:
        """The whole body; longer than ``limit`` is a 413 :class:`HttpError`."""
        parts = []
        size = 0
        async for part in self.stream():
            size += len(part)
            if limit is not None and size > limit:
                raise HttpError("request body too large", 413)
            parts.append(part)
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


@dataclass(frozen=True, slots=True)
class Response:
    """A response: ``body`` is bytes (sent with a Content-Length) or an async
    iterable of bytes (sent chunked, or up to the close for HTTP/1.0). Headers are
    ``(str, str)`` pairs, or ``(bytes, bytes)`` pairs (a tuple of those is sent as
    it is)."""

    status: int = 200
    headers: Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]] = ()
    body: bytes | AsyncIterable[bytes] = b""
    trailers: Sequence[tuple[str, str]] = field(default=())

    @classmethod
    def text(cls, text: str, status: int = 200, **headers: str) -> Response:
        """A ``text/plain; charset=utf-8`` response; keyword arguments add headers
        (``content_type="text/html"`` becomes ``content-type``)."""
        hdrs = {"content-type": "text/plain; charset=utf-8"}
        hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
        return cls(status, tuple(hdrs.items()), text.encode())


Handler = Callable[[Request], Awaitable[Response]]
