"""Encoders for heads and bodies. Names and values are checked, so that nothing an
application puts in a header can split a message in two."""

from __future__ import annotations

import re

from mirage.http._errors import LocalProtocolError
from mirage.http._events import Headers

__all__ = [
    "BodyWriter",
    "ChunkedWriter",
    "CloseDelimitedWriter",
    "LengthWriter",
    "NoBodyWriter",
    "REASONS",
    "check_headers",
    "is_token",
    "scan_headers",
    "write_fields",
]

_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")

REASONS: dict[int, bytes] = {
    100: b"Continue",
    101: b"Switching Protocols",
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    411: b"Length Required",
    412: b"Precondition Failed",
    413: b"Content Too Large",
    414: b"URI Too Long",
    416: b"Range Not Satisfiable",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}


def is_token(value: bytes) -> bool:
    return _NAME.fullmatch(value) is not None


def check_headers(headers: Headers) -> Headers:
    """Lower-case names; refuse names that are not tokens and values with controls."""
    return scan_headers(headers)[0]


_known_names: set[bytes] = set()


_Scan = tuple[Headers, bytes | None, bool, bool]
_scanned: dict[Headers, _Scan] = {}


def scan_headers(headers: Headers) -> _Scan:
    """Check and lower-case ``headers`` in one pass; also return the Content-Length
    value (if any), whether ``chunked`` is among the transfer codings, and whether
    ``close`` is among the connection options. Tuples seen before (a static file's
    headers) are answered from a small cache."""
    if type(headers) is tuple:
        cached = _scanned.get(headers)
        if cached is not None:
            return cached
        result = _scan(headers)
        if len(_scanned) >= 1024:
            _scanned.clear()
        _scanned[headers] = result
        return result
    return _scan(headers)


def _scan(headers: Headers) -> _Scan:
    out = []
    length: bytes | None = None
    chunked = close = False
    value_ok = _VALUE.fullmatch
    known = _known_names
    for name, value in headers:
        if name not in known:
            if _NAME.fullmatch(name) is None:
                raise LocalProtocolError(f"invalid header name {name!r}")
            lower = name.lower()
            if len(known) < 512:
                known.add(name)
        else:
            lower = name.lower()
        if value_ok(value) is None:
            raise LocalProtocolError(f"invalid value for header {name!r}")
        if lower == b"content-length":
            if length is not None and length != value:
                raise LocalProtocolError("conflicting Content-Length values")
            if not value.isdigit():
                raise LocalProtocolError("invalid Content-Length")
            length = value
        elif lower == b"transfer-encoding":
            # Only chunked is implemented, so only chunked may be announced: another
            # coding beside a Content-Length would frame the body two ways.
            if [t.strip(b" \t").lower() for t in value.split(b",")] != [b"chunked"] or chunked:
                raise LocalProtocolError("Transfer-Encoding other than chunked", 501)
            chunked = True
        elif lower == b"connection":
            close = close or b"close" in [t.strip().lower() for t in value.split(b",")]
        out.append((lower, value))
    return tuple(out), length, chunked, close


def write_fields(headers: Headers) -> bytes:
    return b"".join([b"%s: %s\r\n" % h for h in headers])


class BodyWriter:
    def write(self, data: bytes) -> bytes:
        raise NotImplementedError

    def finish(self, trailers: Headers) -> bytes:
        raise NotImplementedError


class LengthWriter(BodyWriter):
    def __init__(self, length: int) -> None:
        self.remaining = length

    def write(self, data: bytes) -> bytes:
        if len(data) > self.remaining:
            raise LocalProtocolError("body longer than its Content-Length")
        self.remaining -= len(data)
        return data

    def finish(self, trailers: Headers) -> bytes:
        if self.remaining:
            raise LocalProtocolError("body shorter than its Content-Length")
        if trailers:
            raise LocalProtocolError("trailers need chunked transfer coding")
        return b""


class ChunkedWriter(BodyWriter):
    def write(self, data: bytes) -> bytes:
        if not data:
            return b""
        return b"%x\r\n%s\r\n" % (len(data), data)

    def finish(self, trailers: Headers) -> bytes:
        return b"0\r\n" + write_fields(check_headers(trailers)) + b"\r\n"


class CloseDelimitedWriter(BodyWriter):
    def write(self, data: bytes) -> bytes:
        return data

    def finish(self, trailers: Headers) -> bytes:
        if trailers:
            raise LocalProtocolError("trailers need chunked transfer coding")
        return b""


class NoBodyWriter(BodyWriter):
    """HEAD, 204 and 304: whatever the application writes is dropped."""

    def write(self, data: bytes) -> bytes:
        return b""

    def finish(self, trailers: Headers) -> bytes:
        return b""
