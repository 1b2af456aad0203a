"""The sans-IO core: the situations h11's tests cover, written for our API, and the
strict parsing that defeats request smuggling."""

from __future__ import annotations

import pytest

from mirage.http.h1 import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    Role,
    Sentinel,
    State,
)

H = ((b"host", b"example"),)


def drain(conn: Connection) -> list[Event | Sentinel]:
    out: list[Event | Sentinel] = []
    while True:
        event = conn.next_event()
        out.append(event)
        if event in (NEED_DATA, PAUSED) or isinstance(event, ConnectionClosed):
            return out


def server_events(data: bytes, limits: Limits | None = None) -> list[Event | Sentinel]:
    conn = Connection(Role.SERVER, limits)
    conn.receive_data(data)
    return drain(conn)


def rejected(data: bytes, limits: Limits | None = None) -> int:
    conn = Connection(Role.SERVER, limits)
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        while conn.next_event() not in (NEED_DATA, PAUSED):
            pass
    assert conn.their_state is State.ERROR
    with pytest.raises(RemoteProtocolError):  # the error is permanent
        conn.next_event()
    return info.value.status


# -- a normal exchange -------------------------------------------------------


def test_simple_get_and_keep_alive() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"GET /a?b=c HTTP/1.1\r\nHost: example\r\nX-Thing:  spaced value \r\n\r\n")
    assert drain(conn) == [
        Request(b"GET", b"/a?b=c", ((b"host", b"example"), (b"x-thing", b"spaced value"))),
        EndOfMessage(),
        PAUSED,
    ]
    assert conn.our_state is State.SEND_RESPONSE
    wire = conn.send(Response(200, ((b"Content-Length", b"2"),)))
    assert wire == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    assert conn.send(Data(b"ok")) == b"ok"
    assert conn.send(EndOfMessage()) == b""
    assert (conn.our_state, conn.their_state) == (State.DONE, State.DONE)
    conn.start_next_cycle()
    assert (conn.our_state, conn.their_state) == (State.IDLE, State.IDLE)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_client_server_round_trip_with_body() -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    wire = client.send(Request(b"POST", b"/up", (*H, (b"content-length", b"5"))))
    wire += client.send(Data(b"hello")) + client.send(EndOfMessage())
    server.receive_data(wire)
    events = drain(server)
    assert events[1:] == [Data(b"hello"), EndOfMessage(), PAUSED]
    reply = server.send(Response(201, ((b"x", b"y"),))) + server.send(Data(b"made"))
    reply += server.send(EndOfMessage(((b"x-sum", b"1"),)))
    assert b"transfer-encoding: chunked" in reply
    client.receive_data(reply)
    assert drain(client) == [
        Response(201, ((b"x", b"y"), (b"transfer-encoding", b"chunked")), b"Created"),
        Data(b"made"),
        EndOfMessage(((b"x-sum", b"1"),)),
        PAUSED,
    ]
    client.start_next_cycle()
    server.start_next_cycle()


def test_pipelined_requests_wait_their_turn() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    first = drain(conn)
    assert isinstance(first[0], Request) and first[0].target == b"/1"
    assert first[-1] is PAUSED
    assert conn.next_event() is PAUSED  # until our response is done
    conn.send(Response(204))
    conn.send(EndOfMessage())
    conn.start_next_cycle()
    second = drain(conn)
    assert isinstance(second[0], Request) and second[0].target == b"/2"


def test_leading_empty_lines_are_skipped() -> None:
    events = server_events(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(events[0], Request)


def test_byte_by_byte() -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: yes\r\n\r\n"
    )
    conn = Connection(Role.SERVER)
    events: list[Event] = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        while (e := conn.next_event()) not in (NEED_DATA, PAUSED):
            assert not isinstance(e, Sentinel)
            events.append(e)
    body = b"".join(e.data for e in events if isinstance(e, Data))
    assert body == b"abcde"
    assert events[-1] == EndOfMessage(((b"trailer", b"yes"),))


def test_http10_closes_and_is_close_delimited() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    assert drain(conn)[0] == Request(b"GET", b"/", (), b"1.0")
    wire = conn.send(Response(200)) + conn.send(Data(b"x")) + conn.send(EndOfMessage())
    assert wire == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nx"
    assert conn.our_state is State.MUST_CLOSE
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_connection_close_from_the_client() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n")
    assert drain(conn)[-1] is PAUSED
    assert conn.their_state is State.MUST_CLOSE
    wire = conn.send(Response(200, ((b"content-length", b"0"),))) + conn.send(EndOfMessage())
    assert wire.endswith(b"connection: close\r\n\r\n")
    assert conn.our_state is State.MUST_CLOSE


def test_head_response_has_no_body() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    drain(conn)
    wire = conn.send(Response(200, ((b"content-length", b"5"),)))
    assert conn.send(Data(b"hello")) == b""
    conn.send(EndOfMessage())
    assert wire == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    client = Connection(Role.CLIENT)
    client.send(Request(b"HEAD", b"/", H))
    client.send(EndOfMessage())
    client.receive_data(wire)
    assert drain(client)[1:] == [EndOfMessage(), PAUSED]


def test_expect_100_continue() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert drain(conn)[-1] is NEED_DATA
    assert conn.they_are_waiting_for_100_continue
    assert conn.send(InformationalResponse(100)) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not conn.they_are_waiting_for_100_continue
    conn.receive_data(b"abc")
    assert drain(conn)[:2] == [Data(b"abc"), EndOfMessage()]


def test_unknown_expectation_is_417() -> None:
    assert rejected(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n") == 417


def test_client_sees_1xx_then_the_response() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request(b"GET", b"/", H))
    client.send(EndOfMessage())
    client.receive_data(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\nall")
    client.receive_data(b"")
    events = drain(client)
    assert isinstance(events[0], InformationalResponse) and events[0].status == 103
    assert events[2:] == [Data(b"all"), EndOfMessage(), ConnectionClosed()]
    assert not client.keep_alive


def test_no_body_statuses() -> None:
    for status in (204, 304):
        client = Connection(Role.CLIENT)
        client.send(Request(b"GET", b"/", H))
        client.send(EndOfMessage())
        client.receive_data(b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status)
        assert drain(client)[1:] == [EndOfMessage(), PAUSED]


def test_local_errors() -> None:
    conn = Connection(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200))  # no request yet
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    drain(conn)
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, ((b"bad header", b"x"),)))
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, ((b"x", b"a\r\nInjected: 1"),)))
    conn.send(Response(200, ((b"content-length", b"1"),)))
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"too long"))
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Request(b"GET", b"/", ()))  # no Host


def test_server_answers_a_bad_request_from_idle() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"GARBAGE\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    wire = conn.send(Response(400, ((b"content-length", b"0"),))) + conn.send(EndOfMessage())
    assert wire.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"connection: close" in wire


def test_eof_in_the_middle_is_an_error() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        drain(conn)
    conn = Connection(Role.SERVER)
    conn.receive_data(b"GET / HTT")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        drain(conn)


# -- strictness and request smuggling ------------------------------------------

SMUGGLING = {
    "cl and te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two differing cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
    b"Content-Length: 5\r\n\r\nabcde",
    "cl list differing": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\nabcde",
    "cl plus sign": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd",
    "cl negative": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    "cl hex": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\n\r\nabcd",
    "cl inner space": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
    "cl underscore": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\n",
    "cl huge": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
    "te chunked twice": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked"
    b"\r\n\r\n0\r\n\r\n",
    "te chunked not last": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip"
    b"\r\n\r\n0\r\n\r\n",
    "te in two fields": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te quoted": b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "chunked"\r\n\r\n',
    "te in http/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te vertical tab": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
    "space before colon": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "obs-fold tab": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
    "folded te": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
    "bare cr in value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
    "bare lf line end": b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    "bare cr in request line": b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
    "nul in value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "nul in name": b"GET / HTTP/1.1\r\nHost: a\r\nX\x00: b\r\n\r\n",
    "empty name": b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
    "non-token name": b"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n",
    "utf8 in name": b"GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n",
    "no colon": b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
    "two spaces in request line": b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    "tab in request line": b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
    "lower-case version": b"GET / http/1.1\r\nHost: a\r\n\r\n",
    "space in target": b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "trailing space in request line": b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    "missing host": b"GET / HTTP/1.1\r\n\r\n",
    "two hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "target not origin form": b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "chunk size hex prefix": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0x3\r\nabc\r\n0\r\n\r\n",
    "chunk size negative": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"-3\r\nabc\r\n0\r\n\r\n",
    "chunk size space": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3 \r\nabc\r\n0\r\n\r\n",
    "chunk size overflow": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"10000000000000003\r\nabc\r\n0\r\n\r\n",
    "chunk data too long": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabcd\r\n0\r\n\r\n",
    "chunk lf only": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\nabc\n0\r\n\r\n",
    "chunk ext bare cr": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;a\rb\r\nabc\r\n0\r\n\r\n",
    "chunk ext malformed": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;=x\r\nabc\r\n0\r\n\r\n",
    "trailer obs-fold": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\nX: a\r\n b\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_payloads_are_400(name: str) -> None:
    assert rejected(SMUGGLING[name]) == 400


def test_status_for_each_limit() -> None:
    limits = Limits(max_request_line=64, max_header_count=4, max_header_size=256, max_body_size=10)
    assert rejected(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", limits) == 414
    assert rejected(b"GET /" + b"a" * 100, limits) == 414  # before the line ends
    many = b"".join(b"X-%d: y\r\n" % i for i in range(5))
    assert rejected(b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n", limits) == 431
    big = b"X: " + b"v" * 300 + b"\r\n"
    assert rejected(b"GET / HTTP/1.1\r\nHost: a\r\n" + big + b"\r\n", limits) == 431
    assert rejected(b"GET / HTTP/1.1\r\nHost: a\r\n" + big * 2, limits) == 431  # unfinished
    assert rejected(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits) == 413
    chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert rejected(chunked + b"6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n", limits) == 413
    assert rejected(chunked + b"1" + b";x" * 3000, Limits()) == 400


def test_version_and_coding_statuses() -> None:
    assert rejected(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505
    assert rejected(b"GET / HTTP/0.9\r\nHost: a\r\n\r\n") == 505
    assert rejected(b"GET / HTTP/12.0\r\nHost: a\r\n\r\n") == 505
    assert rejected(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n") == 501
    assert rejected(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, x\r\n\r\n") == 501
    # A misspelt coding is one we do not know: 501 too (RFC 9112, section 6.1).
    assert rejected(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n") == 501


def test_accepted_variants() -> None:
    ok = [
        b"GET / HTTP/1.1\r\nHOST: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
        b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 ; a = "b;c"\r\nx\r\n0'
        b"\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ]
    for data in ok:
        events = server_events(data)
        assert isinstance(events[0], Request), data
        assert isinstance(events[-2], EndOfMessage), data
