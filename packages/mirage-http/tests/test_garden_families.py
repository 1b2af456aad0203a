"""The request-parsing discrepancy families that the HTTP Garden project documents
(its list of server and transducer bugs), each as payloads written here.

Every payload in ``REJECTED`` must be refused by the sans-IO core with the status that
fits and leave the connection unusable (the answer says ``connection: close``), and
the asyncio server must answer it at once, with exactly one response, and close,
without waiting for the client to finish or give up. The payloads in ``ONE_WAY`` are
valid under RFC 9112 but were read two ways by some implementation; ours must read
each of them exactly as the events listed, so nothing is smuggled past a front end.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import pytest
from conftest import StartServer, echo
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.http import ServerConfig
from mirage.http.h1 import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    RemoteProtocolError,
    Request,
    Response,
    Role,
    Sentinel,
    State,
)

POST = b"POST / HTTP/1.1\r\nHost: a\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
GET = b"GET / HTTP/1.1\r\nHost: a\r\n"

# family -> list of (payload, status). Families follow the Garden's bug list; the
# comment beside each says which kind of bug there the payloads stand for.
FAMILIES: dict[str, list[tuple[bytes, int]]] = {
    # Content-Length read with a number parser looser than 1*DIGIT (signs, 0x,
    # digit separators, longest valid prefix, empty value, inner whitespace).
    "cl-not-digits": [
        (POST + b"Content-Length: +3\r\n\r\nabc", 400),
        (POST + b"Content-Length: -7\r\n\r\n", 400),
        (POST + b"Content-Length: 0x3\r\n\r\nabc", 400),
        (POST + b"Content-Length: 1_2\r\n\r\nabcdefghijkl", 400),
        (POST + b"Content-Length: 3q\r\n\r\nabc", 400),
        (POST + b"Content-Length: \r\n\r\n", 400),
        (POST + b"Content-Length: 3 4\r\n\r\n", 400),
        (POST + b"Content-Length: 3.0\r\n\r\nabc", 400),
        (POST + b"Content-Length: \xa03\r\n\r\nabc", 400),
        (POST + b"Content-Length: 123456789012345678901234\r\n\r\n", 400),
    ],
    # Several Content-Length values that disagree (first wins in one parser, last in
    # another), including an empty one in front of a real one.
    "cl-conflict": [
        (POST + b"Content-Length: 2\r\nContent-Length: 0\r\n\r\nab", 400),
        (POST + b"Content-Length: 0\r\nContent-Length: 2\r\n\r\nab", 400),
        (POST + b"Content-Length: \r\nContent-Length: 2\r\n\r\nab", 400),
        (POST + b"Content-Length: 2, 3\r\n\r\nabc", 400),
        (POST + b"Content-Length: ,2\r\n\r\nab", 400),
    ],
    # Content-Length beside Transfer-Encoding, however the two look.
    "cl-with-te": [
        (POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
        (POST + b"Content-Length: nonsense\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ],
    # Transfer-Encoding lists that some read as chunked and others do not: empty
    # list members, chunked twice (in one field or two), non-ASCII padding, quoted,
    # a coding after chunked, and chunked in an HTTP/1.0 request.
    "te-coding-list": [
        (POST + b"Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
        (
            POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (POST + b"Transfer-Encoding: \xa0chunked\xa0\r\n\r\n0\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: \xffchunked\r\n\r\n0\r\n\r\n", 400),
        (POST + b'Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n', 400),
        (POST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
        (POST + b"Transfer-Encoding: chun ked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ],
    # A coding we do not implement is never taken for chunked (nor ignored).
    "te-unknown-coding": [
        (POST + b"Transfer-Encoding: bogus\r\n\r\n1\r\nZ\r\n0\r\n\r\n", 501),
        (POST + b"Transfer-Encoding: identity\r\n\r\n", 501),
        (POST + b"Transfer-Encoding: gzip, deflate\r\n\r\n", 501),
    ],
    # chunk-size read with a loose hex parser: prefixes, signs, separators, leading
    # whitespace, trailing junk, an empty size, non-hex sizes, and overflow.
    "chunk-size": [
        (CHUNKED + b"0x2\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"0_2\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"+2\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"-0\r\n\r\n", 400),
        (CHUNKED + b" 2\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"\t0\r\n\r\n", 400),
        (CHUNKED + b"2junk-after-the-size\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"\r\n\r\n", 400),
        (CHUNKED + b"Q\r\nQQ\r\n0\r\n\r\n", 400),
        (CHUNKED + b"fffffffffffffffff1\r\nab\r\n0\r\n\r\n", 400),
    ],
    # Chunk lines ended by something other than CRLF: bare LF after the size or
    # after the data, CR then another byte (also inside chunk-ext whitespace).
    "chunk-line-ending": [
        (CHUNKED + b"2\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"2\r\nab\n0\r\n\r\n", 400),
        (CHUNKED + b"2\r\rab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"2\r\r;x\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"2;x\r\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"2\r\nabXY0\r\n\r\n", 400),
        (CHUNKED + b"0\n\r\n", 400),
        (CHUNKED + b"1\r0\n", 400),
    ],
    # chunk-ext grammar: names must be tokens, values tokens or quoted strings.
    "chunk-ext": [
        (CHUNKED + b"2;\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"2;=v\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b'2;n="unterminated\r\nab\r\n0\r\n\r\n', 400),
        (CHUNKED + b"2;n=a b\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"2;n\x00\r\nab\r\n0\r\n\r\n", 400),
        (CHUNKED + b"2 x\r\nab\r\n0\r\n\r\n", 400),
    ],
    # The end of a chunked body: the last-chunk must be there (an empty line is not
    # one), and chunk data must be followed by CRLF right away.
    "chunk-terminator": [
        (CHUNKED + b"1\r\nZ\r\n\r\n\r\n" + GET + b"\r\n", 400),
        (CHUNKED + b"1\r\nZZ\r\n0\r\n\r\n", 400),
        (CHUNKED + b"3\r\nZ\r\n0\r\n\r\n\r\n", 400),
    ],
    # Trailer sections held to the field grammar: no bare LF or CR, no folding, no
    # line without a colon, no NUL.
    "trailer": [
        (CHUNKED + b"0\r\nT: a\nU: b\r\n\r\n", 400),
        (CHUNKED + b"0\r\nT: a\rU: b\r\n\r\n", 400),
        (CHUNKED + b"0\r\nT: a\r\n b\r\n\r\n", 400),
        (CHUNKED + b"0\r\nno colon here\r\n\r\n", 400),
        (CHUNKED + b"0\r\nT: a\x00b\r\n\r\n", 400),
        (CHUNKED + b"0\r\nT : a\r\n\r\n", 400),
    ],
    # Bytes a field value may not hold: NUL (anywhere, including the end), bare CR,
    # bare LF, other controls and DEL.
    "field-value-bytes": [
        (GET + b"X: v\x00alue\r\n\r\n", 400),
        (GET + b"X: value\x00\r\n\r\n", 400),
        (GET + b"X: \x00\r\n\r\n", 400),
        (GET + b"X: va\rlue\r\n\r\n", 400),
        (GET + b"X: v\n\x00\ralue\r\n\r\n", 400),
        (GET + b"X: a\x0bb\r\n\r\n", 400),
        (GET + b"X: a\x0cb\r\n\r\n", 400),
        (GET + b"X: a\x1bb\r\n\r\n", 400),
        (GET + b"X: a\x7fb\r\n\r\n", 400),
    ],
    # Lines not ended by CRLF: bare LF throughout, bare LF after a value (with the
    # next "line" starting a request), a bare CR as a line end, CR after the blank
    # line, CR LF CR before the body.
    "line-ending": [
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
        (GET + b"Useless:\n\nGET /x HTTP/1.1\r\n\r\n", 400),
        (GET + b"Seen: yes\rHidden: yes\r\n\r\n", 400),
        (b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
        (GET + b"\rZGET /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    ],
    # Field names: whitespace or other bytes before the colon, non-token bytes
    # (controls, separators, obs-text), empty names, no colon at all, a name
    # broken over two lines, a value split from its name by whitespace only.
    "field-name": [
        (POST + b"Content-Length : 3\r\n\r\nabc", 400),
        (POST + b"Content-Length\t: 3\r\n\r\nabc", 400),
        (POST + b"Content-Length\x85: 3\r\n\r\nabc", 400),
        (POST + b"Content-Length\xa0: 3\r\n\r\nabc", 400),
        (GET + b"Na\x00me: v\r\n\r\n", 400),
        (GET + b"\x01: v\r\n\r\n", 400),
        (GET + b'"quoted": v\r\n\r\n', 400),
        (GET + b"a/b: v\r\n\r\n", 400),
        (GET + b"a@b: v\r\n\r\n", 400),
        (GET + b"{x}: v\r\n\r\n", 400),
        (GET + b"\xefname: v\r\n\r\n", 400),
        (GET + b": v\r\n\r\n", 400),
        (GET + b":\r\nLost: yes\r\n\r\n", 400),
        (GET + b"NoColon\r\n\r\n", 400),
        (POST + b"Content-Length 3\r\n\r\nabc", 400),
        (POST + b"Transfer-\r\nEncoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (GET + b"Te\nst: v\r\n\r\n", 400),
    ],
    # Whitespace at the start of a field line: obsolete line folding, and leading
    # whitespace on the first field (which some strip into a name).
    "obs-fold": [
        (GET + b"X: a\r\n b\r\n\r\n", 400),
        (GET + b"X: a\r\n\tb\r\n\r\n", 400),
        (POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\n\tContent-Length: 1\r\nHost: a\r\n\r\nZ", 400),
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    ],
    # Methods must be tokens: no separators, NUL or empty method.
    "method": [
        (b'G=":<>(e),[T];?" / HTTP/1.1\r\nHost: a\r\n\r\n', 400),
        (b"\x00 / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b" / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GE\x7fT / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ],
    # HTTP-version: longest valid prefix, missing, junk, huge numbers, CR inside,
    # case, HTTP/0.9 (no version at all), major versions we do not speak.
    "version": [
        (b"GET / HTTP/1.12\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/\r\r1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/.......1.1.\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/01.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
        (b"GET / HtTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/4294967295.255\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    ],
    # The request line's shape and target: single spaces only (no tabs, bare LF or
    # CR as separators), a target that is one of the four forms.
    "request-line": [
        (b"GET ! HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /\nHTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /\rHTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ],
    # Host (RFC 9112, section 3.2): exactly one, and a valid uri-host [":" port].
    "host": [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\x00.b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: \xffa\xff\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a:80:81\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        (b'GET / HTTP/1.1\r\nHost: "a"\r\n\r\n', 400),
    ],
    # Bytes after a finished request that cannot start another: the first request
    # is answered, then the junk gets its 400 (an invalid chunk is not resynced past).
    "junk-after-message": [
        (CHUNKED + b"0\r\n\r\n\x00", 400),
        (GET + b"\r\n\x00", 400),
        (CHUNKED + b"NOT-A-CHUNK\r\n" + GET + b"\r\n", 400),
    ],
}

REJECTED = [
    pytest.param(payload, status, id=f"{family}-{i}")
    for family, cases in FAMILIES.items()
    for i, (payload, status) in enumerate(cases)
]

# payload -> how many whole requests come before the error in that payload
_ANSWERED_FIRST = {
    CHUNKED + b"0\r\n\r\n\x00": 1,
    GET + b"\r\n\x00": 1,
}


def _events(conn: Connection) -> Iterator[Event | Sentinel]:
    """Every event the connection gives now, answering each request once its body
    has been read (as a server does) and moving on to the next cycle."""
    while True:
        event = conn.next_event()
        yield event
        if isinstance(event, EndOfMessage):
            conn.send(Response(200, ((b"content-length", b"0"),)))
            conn.send(EndOfMessage())
        elif event is PAUSED:
            if conn.our_state is not State.DONE or conn.their_state is not State.DONE:
                return
            conn.start_next_cycle()
        elif event is NEED_DATA or isinstance(event, ConnectionClosed):
            return


def _whole(seen: list[Event | Sentinel]) -> int:
    return sum(isinstance(e, EndOfMessage) for e in seen)


@pytest.mark.parametrize(("payload", "status"), REJECTED)
def test_family_is_rejected_and_closes(payload: bytes, status: int) -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(payload)
    seen: list[Event | Sentinel] = []
    with pytest.raises(RemoteProtocolError) as info:
        for event in _events(conn):  # the payload is all here: no waiting for more
            seen.append(event)
    assert info.value.status == status
    assert _whole(seen) == _ANSWERED_FIRST.get(payload, 0)
    assert conn.their_state is State.ERROR
    assert not conn.keep_alive
    with pytest.raises(RemoteProtocolError):  # and it stays broken
        conn.next_event()
    head = conn.send(Response(status, ((b"content-length", b"0"),)))
    assert b"\r\nconnection: close\r\n" in head.lower()
    conn.send(EndOfMessage())
    assert conn.our_state is State.MUST_CLOSE


@pytest.mark.parametrize(("payload", "status"), REJECTED)
def test_family_is_rejected_byte_by_byte(payload: bytes, status: int) -> None:
    """Arriving in the smallest pieces changes nothing: the same status, after no
    more whole requests than the payload holds."""
    conn = Connection(Role.SERVER)
    seen: list[Event | Sentinel] = []
    with pytest.raises(RemoteProtocolError) as info:
        for i in range(len(payload)):
            conn.receive_data(payload[i : i + 1])
            for event in _events(conn):
                seen.append(event)
        conn.receive_data(b"")
        for event in _events(conn):
            seen.append(event)
    assert info.value.status == status
    assert _whole(seen) == _ANSWERED_FIRST.get(payload, 0)


def test_every_family_is_answered_at_once_by_the_server(start_server: StartServer) -> None:
    """Over a real socket, without closing our side: each payload gets its status
    (after the answers to any complete requests in front of it) and a close, well
    before any timeout could have produced an answer."""
    config = ServerConfig(header_timeout=30.0, idle_timeout=30.0, body_timeout=30.0)
    port, _ = start_server(echo, config)
    wrong: list[tuple[object, object]] = []
    for param in REJECTED:
        payload, status = param.values
        assert isinstance(payload, bytes)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(payload)
            reply = bytearray()
            try:
                while chunk := s.recv(65536):
                    reply += chunk
            except TimeoutError:
                wrong.append((param.id, "no answer and no close"))
                continue
        heads = [int(part[:3]) for part in bytes(reply).split(b"HTTP/1.1 ")[1:]]
        first = _ANSWERED_FIRST.get(payload, 0)
        if heads != [200] * first + [status]:
            wrong.append((param.id, heads))
    assert wrong == []


# -- valid messages that some parser read two ways ---------------------------------

Summary = list[tuple[str, object]]

# name -> (payload, what it reads as: ("request", target), ("data", all the bytes
# between two requests), ("end", trailers))
ONE_WAY: dict[str, tuple[bytes, Summary]] = {
    # A trailer field whose value looks like a request line is a trailer field.
    "trailer-looks-like-request": (
        CHUNKED + b"0\r\nX:POST / HTTP/1.1\r\n\r\n",
        [("request", b"/"), ("end", ((b"x", b"POST / HTTP/1.1"),))],
    ),
    # Leading zeros in Content-Length are decimal, not octal.
    "cl-leading-zeros": (
        POST + b"Content-Length: 010\r\n\r\n0123456789",
        [("request", b"/"), ("data", b"0123456789"), ("end", ())],
    ),
    # Repeated identical Content-Length values are one length (RFC 9110, 8.6).
    "cl-repeated-same": (
        POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        [("request", b"/"), ("data", b"abc"), ("end", ())],
    ),
    "cl-list-same": (
        POST + b"Content-Length: 3, 3\r\n\r\nabc",
        [("request", b"/"), ("data", b"abc"), ("end", ())],
    ),
    # A GET may carry a body; it is read, not taken for the next request.
    "get-with-body": (
        GET + b"Content-Length: 10\r\n\r\n0123456789",
        [("request", b"/"), ("data", b"0123456789"), ("end", ())],
    ),
    # Content-Length: 0 means what it says; what follows is the next request, and a
    # body that looks like a request stays a body.
    "pipelined-after-zero-length": (
        POST + b"Content-Length: 0\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\n"
        b"Content-Length: 17\r\n\r\nGET /3 HTTP/1.1\r\n",
        [
            ("request", b"/"),
            ("end", ()),
            ("request", b"/2"),
            ("data", b"GET /3 HTTP/1.1\r\n"),
            ("end", ()),
        ],
    ),
    # Leading zeros in a chunk-size, upper-case hex, chunk extensions with BWS, and a
    # quoted string holding a semicolon and an escaped quote.
    "chunk-size-forms": (
        CHUNKED + b'0002\r\nab\r\nA ; n = v ;m\r\n0123456789\r\n1;q="a;\\"b"\r\nZ\r\n000\r\n\r\n',
        [("request", b"/"), ("data", b"ab0123456789Z"), ("end", ())],
    ),
    # One or more empty lines before a request line are ignored (RFC 9112, 2.2).
    "leading-empty-lines": (
        b"\r\n\r\n" + GET + b"\r\n",
        [("request", b"/"), ("end", ())],
    ),
    # A Host with a port, an IP literal, or empty (RFC 9112, 3.2) is valid.
    "host-forms": (
        GET.replace(b"Host: a", b"Host: a.b-c_d~e:8080")
        + b"\r\nGET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
        + b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        [("request", b"/"), ("end", ())] * 3,
    ),
}


def _summary(events: list[Event | Sentinel]) -> Summary:
    out: Summary = []
    for e in events:
        if isinstance(e, Request):
            out.append(("request", e.target))
        elif isinstance(e, Data):
            if out and out[-1][0] == "data":
                prev = out[-1][1]
                assert isinstance(prev, bytes)
                out[-1] = ("data", prev + e.data)
            else:
                out.append(("data", e.data))
        elif isinstance(e, EndOfMessage):
            out.append(("end", e.trailers))
    return out


@pytest.mark.parametrize("name", sorted(ONE_WAY))
@pytest.mark.parametrize("piecewise", [False, True], ids=["whole", "byte-by-byte"])
def test_valid_payload_is_read_one_way(name: str, piecewise: bool) -> None:
    payload, expected = ONE_WAY[name]
    pieces = [payload[i : i + 1] for i in range(len(payload))] if piecewise else [payload]
    conn = Connection(Role.SERVER)
    events: list[Event | Sentinel] = []
    for piece in pieces:
        conn.receive_data(piece)
        events.extend(_events(conn))
    assert _summary(events) == expected
    assert conn.their_state in (State.IDLE, State.DONE)


def test_obs_text_in_a_value_is_kept_as_it_is() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(GET + b"User: \x85admin\xa0\r\n\r\n")
    request = conn.next_event()
    assert isinstance(request, Request)
    assert (b"user", b"\x85admin\xa0") in request.headers


def test_invalid_request_after_a_closing_one_is_never_read() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(GET + b"Connection: close\r\n\r\nInvalid\r\n\r\n")
    events = list(_events(conn))
    assert _whole(events) == 1
    assert events[-1] is PAUSED
    assert conn.our_state is State.MUST_CLOSE


# -- the Garden's fuzzing mutations, as a property ----------------------------------
#
# The Garden's differential fuzzer starts from a few well-formed requests and inserts
# "meaningful" bytes (CR LF, CR, LF, NUL, colon, tab, space) or arbitrary bytes,
# deletes bytes, and moves the boundaries between the reads that deliver a stream.
# Whatever comes out, our reading may not depend on where the reads are cut: the
# same requests, bodies and trailers, then the same end (waiting, or an error).

_SEEDS = [
    GET + b"\r\n",
    POST + b"Content-Length: 5\r\n\r\nhello",
    CHUNKED + b"3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
    b"GET /x HTTP/1.0\r\n\r\n",
]
_MEANINGFUL = [b"\r\n", b"\r", b"\n", b"\x00", b":", b"\t", b" ", b",", b";", b"0"]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = b"".join(draw(st.lists(st.sampled_from(_SEEDS), min_size=1, max_size=3)))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "meaningful", "delete", "replace"]))
        if kind == "meaningful":
            data = data[:i] + draw(st.sampled_from(_MEANINGFUL)) + data[i:]
        elif kind == "insert":
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i:]
        elif kind == "delete":
            data = data[:i] + data[i + 1 :]
        else:
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    return data


def _outcome(pieces: list[bytes]) -> tuple[Summary, str]:
    conn = Connection(Role.SERVER)
    events: list[Event | Sentinel] = []
    try:
        for piece in pieces:
            conn.receive_data(piece)
            events.extend(_events(conn))
        conn.receive_data(b"")
        events.extend(_events(conn))
    except RemoteProtocolError as exc:
        assert exc.status in (400, 413, 414, 431, 501, 505)
        return _summary(events), "error"
    return _summary(events), "ok"


@settings(max_examples=250, deadline=None)
@given(_mutated(), st.lists(st.integers(0, 400), max_size=4))
def test_reading_does_not_depend_on_where_reads_are_cut(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    whole = _outcome([data])
    assert _outcome(pieces) == whole
    assert _outcome([data[i : i + 1] for i in range(len(data))]) == whole
