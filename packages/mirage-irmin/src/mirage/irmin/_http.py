"""A small HTTP/1.1 codec for the store's server and client (sans-IO).

Theory of operation: :class:`RequestReader` is fed bytes as they arrive and returns
the complete requests in them (a head, then a body of ``Content-Length`` bytes;
chunked request bodies are not accepted). Every malformed input raises
:class:`HttpError` carrying the status code a server answers with (400, 411, 413,
431, 501, 505), so a driver can reply and close. :func:`encode_response` and
:func:`encode_request` write messages with a ``Content-Length``; :func:`read_response`
decodes a whole response (the client reads until the connection closes or the
length is reached).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "HttpError",
    "Request",
    "RequestReader",
    "Response",
    "decode_response",
    "encode_request",
    "encode_response",
]

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024 * 1024
REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    502: "Bad Gateway",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class HttpError(Exception):
    """A message that cannot be accepted; ``status`` is the answer it deserves."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Request:
    """A request: ``path`` is percent-decoded, ``query`` its decoded parameters."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path, errors="strict")

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k == low:
                return v
        return None

    @property
    def keep_alive(self) -> bool:
        return (self.header("connection") or "").lower() != "close"


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response: status, body and its content type, and more headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None


def _headers(lines: list[bytes]) -> tuple[tuple[str, str], ...]:
    out = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or any(c not in _TOKEN for c in name):
            raise HttpError(400, f"bad header line {line[:40]!r}")
        try:
            text = value.strip(b" \t").decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            raise HttpError(400, "bad header value") from None
        if any(ord(c) < 32 and c != "\t" for c in text):
            raise HttpError(400, "control character in a header value")
        out.append((name.decode("ascii").lower(), text))
    return tuple(out)


def _content_length(headers: tuple[tuple[str, str], ...]) -> int:
    values = {v for k, v in headers if k == "content-length"}
    if len(values) > 1:
        raise HttpError(400, "conflicting Content-Length headers")
    if not values:
        return 0
    (value,) = values
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise HttpError(400, f"bad Content-Length {value[:20]!r}")
    n = int(value)
    if n > MAX_BODY:
        raise HttpError(413, f"body of {n} bytes")
    return n


class RequestReader:
    """Requests from a byte stream, fed in pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: tuple[str, str, tuple[tuple[str, str], ...]] | None = None
        self._need = 0

    def feed(self, data: bytes) -> list[Request]:
        """The requests completed by ``data``; :class:`HttpError` if malformed."""
        self._buffer += data
        out: list[Request] = []
        while True:
            if self._head is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > MAX_HEAD:
                        raise HttpError(431, "request head too long")
                    return out
                if end > MAX_HEAD:
                    raise HttpError(431, "request head too long")
                head = bytes(self._buffer[:end])
                del self._buffer[: end + 4]
                self._head = self._parse_head(head)
                self._need = _content_length(self._head[2])
            if len(self._buffer) < self._need:
                return out
            method, target, headers = self._head
            body = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            self._head = None
            out.append(Request(method, target, headers, body))

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            raise HttpError(400, f"bad request line {lines[0][:60]!r}")
        method_b, target_b, version = parts
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            if version.startswith(b"HTTP/"):
                raise HttpError(505, f"version {version[:20]!r}")
            raise HttpError(400, f"bad request line {lines[0][:60]!r}")
        method = method_b.decode("ascii", "replace")
        if method not in _METHODS:
            raise HttpError(501, f"method {method[:20]!r}")
        if not target_b.startswith(b"/") or any(c <= 32 or c >= 127 for c in target_b):
            raise HttpError(400, f"bad request target {target_b[:60]!r}")
        target = target_b.decode("ascii")
        headers = _headers(lines[1:])
        if any(k == "transfer-encoding" for k, _ in headers):
            raise HttpError(411, "chunked request bodies are not accepted")
        try:
            unquote(urlsplit(target).path, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "the path is not UTF-8") from None
        return method, target, headers


def encode_response(response: Response, keep_alive: bool = True) -> bytes:
    reason = REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        *(f"{k}: {v}" for k, v in response.headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


def encode_request(
    method: str, target: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def decode_response(head: bytes) -> tuple[int, tuple[tuple[str, str], ...]]:
    """The status and headers of a response head (without the final blank line)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(502, f"bad status line {lines[0][:60]!r}")
    if len(parts[1]) != 3:
        raise HttpError(502, f"bad status {parts[1][:10]!r}")
    return int(parts[1]), _headers(lines[1:])
