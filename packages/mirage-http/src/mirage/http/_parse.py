"""Decoders for message heads and bodies (RFC 9112), strict on purpose.

Every decoder is total: given any bytes it returns a value, asks for more, or raises
:class:`RemoteProtocolError` with the status that fits. Lines end in CRLF only; a bare
CR or LF, obsolete line folding, whitespace before a colon, control characters and
non-token names are all errors, because each is a known request-smuggling lever.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mirage.http._errors import RemoteProtocolError
from mirage.http._events import Headers, Request, Response
from mirage.http._limits import Limits

__all__ = [
    "BodyReader",
    "ChunkedReader",
    "CloseDelimitedReader",
    "LengthReader",
    "check_line_ends",
    "find_head",
    "parse_content_length",
    "parse_fields",
    "parse_request_head",
    "parse_response_head",
    "parse_transfer_encoding",
]

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_LOOSE_VERSION = re.compile(rb"\S+ \S+ HTTP/([1-9][0-9]*|0)\.([0-9]+)")
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
_HOST = re.compile(
    rb"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[-A-Za-z0-9._~!$&'()*+,;=:]+)\]"
    rb"|(?:[-A-Za-z0-9._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)
_DIGITS = re.compile(rb"[0-9]{1,18}")
_HEX = re.compile(rb"([0-9A-Fa-f]{1,16})([^\x00-\x08\x0a-\x1f\x7f]*)")
_CHUNK_EXT = re.compile(
    rb"(?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb'|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*'
)


def find_head(buf: bytes | bytearray, limits: Limits, *, is_request: bool) -> int:
    """The length of the head at the start of ``buf`` (through its blank line), or -1
    if more bytes are needed. Raises 414/431 when the limits are already passed."""
    end = buf.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    if is_request and buf and buf[0] not in _TOKEN_START and buf != b"\r":
        raise RemoteProtocolError("a request line starts with a method")
    if not is_request and buf[:5] != b"HTTP/"[: len(buf)]:
        raise RemoteProtocolError("a status line starts with HTTP/")
    check_line_ends(buf)
    first = buf.find(b"\r\n")
    if first < 0:
        if len(buf) > limits.max_request_line:
            raise RemoteProtocolError(
                "request line too long" if is_request else "status line too long",
                414 if is_request else 400,
            )
        return -1
    if len(buf) > limits.max_request_line + limits.max_header_size + 4:
        raise RemoteProtocolError("header section too large", 431)
    return -1


def parse_fields(lines: list[bytes], limits: Limits) -> Headers:
    return tuple(_fields(lines, limits))


def _fields(lines: list[bytes], limits: Limits) -> list[tuple[bytes, bytes]]:
    """Field lines (no CRLF) into lower-cased names and trimmed values."""
    if len(lines) > limits.max_header_count:
        raise RemoteProtocolError("too many header fields", 431)
    if sum(len(line) + 2 for line in lines) > limits.max_header_size:
        raise RemoteProtocolError("header section too large", 431)
    fields = []
    match = _FIELD.fullmatch
    for line in lines:
        m = match(line)
        if m is None:
            if line[:1] in (b" ", b"\t"):
                raise RemoteProtocolError("obsolete line folding")
            raise RemoteProtocolError("malformed header field")
        name, value = m.groups()
        fields.append((name.lower(), value))
    return fields


def _lines(head: bytes) -> list[bytes]:
    # head ends with CRLF CRLF; split on CRLF, so any other CR or LF stays in a line
    # and is refused by the field and start-line grammars.
    return head[:-4].split(b"\r\n")


def parse_request_head(head: bytes, limits: Limits) -> Request:
    lines = _lines(head)
    line = lines[0]
    if len(line) > limits.max_request_line:
        raise RemoteProtocolError("request line too long", 414)
    m = _REQUEST_LINE.fullmatch(line)
    if m is None:
        loose = _LOOSE_VERSION.fullmatch(line)
        if loose is not None and loose.group(1) != b"1":
            raise RemoteProtocolError("HTTP version not supported", 505)
        raise RemoteProtocolError("malformed request line")
    method, target, major, minor = m.groups()
    if major != b"1":
        raise RemoteProtocolError("HTTP version not supported", 505)
    version = b"1.0" if minor == b"0" else b"1.1"
    first = target[:1]
    if not (
        first == b"/"
        or (target == b"*" and method == b"OPTIONS")
        or method == b"CONNECT"
        or b"://" in target
    ):
        raise RemoteProtocolError("malformed request target")
    del lines[0]
    fields = _fields(lines, limits)
    hosts = [f for f in fields if f[0] == b"host"]
    if len(hosts) > 1 or (version == b"1.1" and not hosts):
        raise RemoteProtocolError("a request needs exactly one Host header")
    if hosts and _HOST.fullmatch(hosts[0][1]) is None:
        raise RemoteProtocolError("invalid Host header")
    return Request(method, target, tuple(fields), version)


def parse_response_head(head: bytes, limits: Limits) -> Response:
    lines = _lines(head)
    m = _STATUS_LINE.fullmatch(lines[0])
    if m is None:
        raise RemoteProtocolError("malformed status line")
    major, minor, status, reason = m.groups()
    if major != b"1":
        raise RemoteProtocolError("HTTP version not supported", 505)
    version = b"1.0" if minor == b"0" else b"1.1"
    headers = parse_fields(lines[1:], limits)
    return Response(int(status), headers, reason or b"", version)


def parse_content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The message's Content-Length, or ``None``; several differing values, or one
    that is not all digits, are errors."""
    values = [v for n, v in headers if n == b"content-length"]
    if not values:
        return None
    items = {item.strip(b" \t") for v in values for item in v.split(b",")}
    if len(items) != 1:
        raise RemoteProtocolError("conflicting Content-Length values")
    (value,) = items
    if _DIGITS.fullmatch(value) is None:
        raise RemoteProtocolError("invalid Content-Length")
    return int(value)


def parse_transfer_encoding(headers: Sequence[tuple[bytes, bytes]]) -> bool | None:
    """``None`` without Transfer-Encoding, ``True`` when it is exactly ``chunked``.
    A coding we do not implement is 501; ``chunked`` not last, twice, or malformed
    is 400."""
    values = [v for n, v in headers if n == b"transfer-encoding"]
    if not values:
        return None
    codings = [item.strip(b" \t").lower() for v in values for item in v.split(b",")]
    if codings == [b"chunked"]:
        return True
    if any(_TOKEN_RE.fullmatch(c) is None for c in codings) or b"chunked" in codings:
        raise RemoteProtocolError("invalid Transfer-Encoding")
    raise RemoteProtocolError("unsupported transfer coding", 501)


_TOKEN_RE = re.compile(_TOKEN)
_TOKEN_START = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")


def check_line_ends(buf: bytes | bytearray) -> None:
    """Refuse, before the rest arrives, a part-read head, chunk line or trailer section
    holding a bare LF or a CR that is not followed by LF (a CR at the very end may
    still get its LF)."""
    crlf = buf.count(b"\r\n")
    if buf.count(b"\n") != crlf:
        raise RemoteProtocolError("bare LF (lines end in CRLF)")
    if buf.count(b"\r") != crlf + (buf[-1:] == b"\r"):
        raise RemoteProtocolError("bare CR (lines end in CRLF)")


class BodyReader:
    """Pulls one message body out of a buffer: ``read(buf)`` returns data bytes (may
    be empty), and sets ``done`` (with ``trailers``) at the end."""

    done: bool = False
    trailers: Headers = ()

    def read(self, buf: bytearray) -> bytes | None:
        """Bytes of body consumed from ``buf``, or ``None`` when more input is needed."""
        raise NotImplementedError

    def eof(self) -> None:
        """The peer closed: fine only for a close-delimited body."""
        raise RemoteProtocolError("connection closed in the middle of a body")


class LengthReader(BodyReader):
    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0

    def read(self, buf: bytearray) -> bytes | None:
        if not buf:
            return None
        n = min(self.remaining, len(buf))
        data = bytes(buf[:n])
        del buf[:n]
        self.remaining -= n
        self.done = self.remaining == 0
        return data


class CloseDelimitedReader(BodyReader):
    def read(self, buf: bytearray) -> bytes | None:
        if not buf:
            return None
        data = bytes(buf)
        buf.clear()
        return data

    def eof(self) -> None:
        self.done = True


class ChunkedReader(BodyReader):
    """chunk = size [ext] CRLF data CRLF; last-chunk = "0" [ext] CRLF; then trailer
    fields and a blank line."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.remaining = 0  # bytes of the current chunk still to come
        self.need_crlf = False  # the CRLF after a chunk's data is next
        self.in_trailers = False
        self.total = 0

    def read(self, buf: bytearray) -> bytes | None:
        while True:
            if self.remaining:
                if not buf:
                    return None
                n = min(self.remaining, len(buf))
                data = bytes(buf[:n])
                del buf[:n]
                self.remaining -= n
                if not self.remaining:
                    self.need_crlf = True
                return data
            if self.need_crlf:
                if len(buf) < 2:
                    if buf and buf[0] != 0x0D:
                        raise RemoteProtocolError("chunk data not followed by CRLF")
                    return None
                if buf[:2] != b"\r\n":
                    raise RemoteProtocolError("chunk data not followed by CRLF")
                del buf[:2]
                self.need_crlf = False
            if self.in_trailers:
                return self._trailers(buf)
            end = buf.find(b"\r\n", 0, self.limits.max_chunk_line + 2)
            if end < 0:
                if buf and buf[0] not in _HEX_DIGITS:
                    raise RemoteProtocolError("malformed chunk-size line")
                check_line_ends(buf[: self.limits.max_chunk_line + 2])
                if len(buf) > self.limits.max_chunk_line:
                    raise RemoteProtocolError("chunk-size line too long")
                return None
            m = _HEX.fullmatch(buf, 0, end)
            if m is None or (m.group(2) and _CHUNK_EXT.fullmatch(m.group(2)) is None):
                raise RemoteProtocolError("malformed chunk-size line")
            size = int(m.group(1), 16)
            del buf[: end + 2]
            limit = self.limits.max_body_size
            self.total += size
            if limit is not None and self.total > limit:
                raise RemoteProtocolError("request body too large", 413)
            if size == 0:
                self.in_trailers = True
                continue
            self.remaining = size

    def _trailers(self, buf: bytearray) -> bytes | None:
        if buf[:2] == b"\r\n":
            del buf[:2]
            self.done = True
            return b""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            check_line_ends(buf)
            if len(buf) > self.limits.max_header_size + 4:
                raise RemoteProtocolError("trailer section too large", 431)
            return None
        lines = bytes(buf[:end]).split(b"\r\n")
        self.trailers = parse_fields(lines, self.limits)
        del buf[: end + 4]
        self.done = True
        return b""
