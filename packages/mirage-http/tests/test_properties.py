"""Hypothesis: the decoders are total, and what we send we read back."""

from __future__ import annotations

import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.http import parse_range
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
)

PREFIXES = st.sampled_from(
    [
        b"",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    ]
)


def pump(conn: Connection, data: bytes, splits: list[int], eof: bool) -> list[Event]:
    """Feed ``data`` in pieces; collect events until the connection stops."""
    events: list[Event] = []
    cuts = sorted({s % (len(data) + 1) for s in splits} | {0, len(data)})
    pieces = [data[a:b] for a, b in itertools.pairwise(cuts)]
    if eof:
        pieces.append(b"")
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if event is PAUSED:
                return events
            assert not isinstance(event, type(NEED_DATA))
            events.append(event)
            if isinstance(event, ConnectionClosed):
                return events
    return events


@settings(max_examples=300, deadline=None)
@given(PREFIXES, st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=4), st.booleans())
@example(b"", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", [], False)
@example(b"", b"\r\n" * 10, [], True)
def test_server_parser_is_total(prefix: bytes, data: bytes, splits: list[int], eof: bool) -> None:
    conn = Connection(Role.SERVER)
    try:
        pump(conn, prefix + data, splits, eof)
    except RemoteProtocolError as exc:
        assert exc.status in (400, 413, 414, 417, 431, 501, 505)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=4), st.booleans())
def test_client_parser_is_total(data: bytes, splits: list[int], eof: bool) -> None:
    conn = Connection(Role.CLIENT)
    conn.send(Request(b"GET", b"/", ((b"host", b"a"),)))
    conn.send(EndOfMessage())
    try:
        pump(conn, b"HTTP/1.1 200 OK\r\n" + data, splits, eof)
    except RemoteProtocolError:
        pass


TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-!#$%&'*+.^_`|~", min_size=1, max_size=12)
VALUE = st.binary(max_size=20).map(
    lambda b: bytes(c for c in b if c in b"\t" or 0x20 <= c <= 0x7E or c >= 0x80).strip(b" \t")
)
HEADERS = st.lists(
    st.tuples(TOKEN.map(str.encode), VALUE).filter(
        lambda h: (
            h[0] not in (b"host", b"content-length", b"transfer-encoding", b"connection")
            and h[0] != b"expect"
        )
    ),
    max_size=6,
)
BODY = st.lists(st.binary(min_size=0, max_size=50), max_size=5)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([b"GET", b"POST", b"PUT", b"X-CUSTOM"]),
    st.text("abc/%?=&-._~0123456789", max_size=20).map(lambda t: ("/" + t).encode()),
    HEADERS,
    BODY,
    st.booleans(),
    st.lists(st.integers(0, 1000), max_size=5),
)
def test_request_round_trip(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: list[bytes],
    chunked: bool,
    splits: list[int],
) -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    total = b"".join(body)
    framing = (
        (b"transfer-encoding", b"chunked")
        if chunked
        else (b"content-length", str(len(total)).encode())
    )
    head = Request(method, target, ((b"host", b"h"), *headers, framing))
    wire = client.send(head) + b"".join(client.send(Data(b)) for b in body)
    wire += client.send(EndOfMessage())
    events = pump(server, wire, splits, False)
    assert events[0] == head
    assert b"".join(e.data for e in events if isinstance(e, Data)) == total
    assert events[-1] == EndOfMessage()


@settings(max_examples=150, deadline=None)
@given(
    st.integers(200, 599).filter(lambda s: s not in (204, 304)),
    HEADERS,
    BODY,
    st.sampled_from(["chunked", "length", "close"]),
    HEADERS,
    st.lists(st.integers(0, 1000), max_size=5),
)
def test_response_round_trip(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: list[bytes],
    framing: str,
    trailers: list[tuple[bytes, bytes]],
    splits: list[int],
) -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client_wire = client.send(Request(b"GET", b"/", ((b"host", b"h"),)))
    client_wire += client.send(EndOfMessage())
    if framing == "close":
        client_wire = client_wire.replace(b"GET / HTTP/1.1\r\nhost: h", b"GET / HTTP/1.0")
    pump(server, client_wire, [], False)
    total = b"".join(body)
    extra: tuple[tuple[bytes, bytes], ...] = ()
    if framing == "length":
        extra = ((b"content-length", str(len(total)).encode()),)
    wire = server.send(Response(status, (*headers, *extra)))
    wire += b"".join(server.send(Data(b)) for b in body)
    trail = tuple(trailers) if framing == "chunked" else ()
    wire += server.send(EndOfMessage(trail))
    events = pump(client, wire, splits, framing == "close")
    response = events[0]
    assert isinstance(response, Response) and response.status == status
    assert response.headers[: len(headers)] == tuple(headers)
    assert b"".join(e.data for e in events if isinstance(e, Data)) == total
    ends = [e for e in events if isinstance(e, EndOfMessage)]
    assert ends == [EndOfMessage(trail)]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.integers(0, 10_000))
@example("bytes=0-0,-1", 0)
def test_range_parser_is_total(value: str, size: int) -> None:
    ranges = parse_range(value, size)
    if ranges is not None:
        for first, last in ranges:
            assert 0 <= first <= last < size
