"""Damaged and out-of-order input: only the package's errors leave the engine, with
the RFC's alert, and nothing after a failed record reaches the application."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tls_certs import NOW_TS, make_pki

from mirage.tls import (
    AlertDescription,
    DataReceived,
    PeerAlert,
    State,
    TlsAlert,
    TlsConfig,
    TlsConnection,
    TlsError,
    UnexpectedMessage,
)
from mirage.tls._constants import TLS1_2

PKI = make_pki()
LEAF = PKI.leaf()
RSA_LEAF = PKI.leaf(kind="rsa")


def flights(versions: tuple[int, ...]) -> tuple[bytes, bytes, bytes]:
    """(ClientHello, server flight, client's second flight) of a real handshake."""
    client = TlsConnection(
        TlsConfig(trust_store=(PKI.root,), versions=versions), server_name="localhost"
    )
    server = TlsConnection(
        TlsConfig(certificates=(LEAF, RSA_LEAF), versions=versions), server_side=True
    )
    client.start()
    ch = client.data_to_send()
    server.receive_data(ch, NOW_TS)
    sf = server.data_to_send()
    client.receive_data(sf, NOW_TS)
    cf = client.data_to_send()
    return ch, sf, cf


FLIGHTS = {v: flights(v) for v in ((0x0304,), (TLS1_2,))}

mutations = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "delete"]),
    st.integers(0, 10**6),
    st.integers(1, 255),
)


def mutate(data: bytes, how: tuple[str, int, int]) -> bytes:
    kind, pos, value = how
    pos %= len(data)
    if kind == "flip":
        return data[:pos] + bytes([data[pos] ^ value]) + data[pos + 1 :]
    if kind == "truncate":
        return data[:pos]
    if kind == "insert":
        return data[:pos] + bytes([value]) + data[pos:]
    return data[:pos] + data[pos + 1 :]


def feed(conn: TlsConnection, data: bytes) -> None:
    try:
        conn.receive_data(data, NOW_TS)
    except TlsAlert as e:
        # internal_error would mean a bug of ours caught by the engine's guard
        assert e.description != AlertDescription.internal_error, repr(e.__cause__)
        assert conn.state is State.FAILED
        alert = conn.data_to_send()
        assert alert[-7:-2] == b"\x15\x03\x03\x00\x02" or alert[0] == 0x17
    except TlsError:
        pass


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(sorted(FLIGHTS)), st.lists(mutations, min_size=1, max_size=3))
def test_damaged_client_hello(versions: tuple[int, ...], how: list[tuple[str, int, int]]) -> None:
    ch = FLIGHTS[versions][0]
    for h in how:
        ch = mutate(ch, h) or b"\x16"
    server = TlsConnection(TlsConfig(certificates=(LEAF, RSA_LEAF)), server_side=True)
    feed(server, ch)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(sorted(FLIGHTS)), st.lists(mutations, min_size=1, max_size=3))
def test_damaged_server_flight(versions: tuple[int, ...], how: list[tuple[str, int, int]]) -> None:
    # The client's own hello is regenerated, so the server flight no longer matches
    # its keys for 1.3; damage still must only give our errors.
    _, sf, _ = FLIGHTS[versions]
    for h in how:
        sf = mutate(sf, h) or b"\x16"
    client = TlsConnection(
        TlsConfig(trust_store=(PKI.root,), versions=versions), server_name="localhost"
    )
    client.start()
    feed(client, sf)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_after_the_handshake(junk: bytes) -> None:
    client = TlsConnection(TlsConfig(trust_store=(PKI.root,)), server_name="localhost")
    server = TlsConnection(TlsConfig(certificates=(LEAF,)), server_side=True)
    client.start()
    for _ in range(3):
        server.receive_data(client.data_to_send(), NOW_TS)
        client.receive_data(server.data_to_send(), NOW_TS)
    while server.next_event() is not None:
        pass
    feed(server, junk)
    while (e := server.next_event()) is not None:
        assert not isinstance(e, DataReceived) or not junk


def test_client_hello_to_a_client_is_unexpected() -> None:
    ch, _, _ = FLIGHTS[(0x0304,)]
    client = TlsConnection(TlsConfig(trust_store=(PKI.root,)), server_name="localhost")
    client.start()
    try:
        client.receive_data(ch, NOW_TS)
    except UnexpectedMessage:
        pass
    else:
        raise AssertionError("no alert")
    server = TlsConnection(TlsConfig(certificates=(LEAF,)), server_side=True)
    try:
        server.receive_data(client.data_to_send(), NOW_TS)
    except PeerAlert as e:
        assert e.description == AlertDescription.unexpected_message
