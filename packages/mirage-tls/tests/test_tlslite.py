"""Interop with tlslite-ng (a pure-Python TLS implementation) as a real peer over
loopback, both directions, TLS 1.3 and 1.2, ALPN, resumption with session tickets
(both versions, both directions), HelloRetryRequest and certificate kinds.
tlslite-ng runs in a thread with its own blocking socket."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from interop_peers import TIMEOUT, converse, serve_one
from tls_certs import Pki, make_pki, pem_chain, pem_key

from mirage.tls import (
    CertifiedKey,
    DataReceived,
    HandshakeComplete,
    NamedGroup,
    SessionTicket,
    TlsConfig,
    TlsConnection,
)
from mirage.tls._constants import TLS1_2, TLS1_3

tlslite = pytest.importorskip("tlslite.api", reason="tlslite-ng is not installed (pip)")

VERSIONS = {TLS1_3: (3, 4), TLS1_2: (3, 3)}
VERSION_IDS = ["tls1.3", "tls1.2"]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def leaf(pki: Pki) -> CertifiedKey:
    return pki.leaf(("localhost", "127.0.0.1"), kind="ecdsa-p256")


def settings(version: int, **kw: Any) -> Any:
    s = tlslite.HandshakeSettings()
    s.minVersion = s.maxVersion = VERSIONS[version]
    for name, value in kw.items():
        setattr(s, name, value)
    return s


def tlslite_creds(leaf: CertifiedKey) -> tuple[Any, Any]:
    chain = tlslite.X509CertChain()
    chain.parsePemList(pem_chain(leaf).decode())
    key = tlslite.parsePEMKey(pem_key(leaf).decode(), private=True, implementations=["python"])
    return chain, key


class Thread:
    """Runs ``target`` in a thread, keeping its result or exception."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = target()
            except BaseException as exc:  # reported by join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(TIMEOUT * 2)
        assert not self.thread.is_alive(), "the tlslite-ng peer hung"
        if self.error is not None:
            raise self.error
        return self.result


def tlslite_server(
    listener: socket.socket, leaf: CertifiedKey, version: int, count: int = 1, **kw: Any
) -> Thread:
    """Serve ``count`` connections: read one message, answer it reversed, close."""
    chain, key = tlslite_creds(leaf)
    hs = settings(version, **kw)

    def serve() -> list[tuple[str, bytes | None, bool]]:
        seen = []
        for _ in range(count):
            sock, _ = listener.accept()
            sock.settimeout(TIMEOUT)
            conn = tlslite.TLSConnection(sock)
            conn.handshakeServer(
                certChain=chain, privateKey=key, settings=hs, alpn=[b"h2", b"http/1.1"]
            )
            data = conn.read()
            conn.write(bytes(reversed(data)))
            seen.append((conn.getVersionName(), conn.session.appProto, conn.resumed))
            conn.close()
        return seen

    return Thread(serve)


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_our_client_with_tlslite_server(pki: Pki, leaf: CertifiedKey, version: int) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer = tlslite_server(listener, leaf, version)
        client = TlsConnection(
            TlsConfig(trust_store=(pki.root,), alpn_protocols=(b"http/1.1",), versions=(version,)),
            server_name="localhost",
        )
        with socket.create_connection(listener.getsockname()) as sock:
            hc, got = converse(sock, client, b"hello tlslite", len(b"hello tlslite"))
        seen = peer.join()
    assert got == b"etilslt olleh"
    assert hc.version == version and hc.alpn_protocol == b"http/1.1"
    assert seen == [("TLS 1.3" if version == TLS1_3 else "TLS 1.2", b"http/1.1", False)]


def tlslite_client(
    address: tuple[str, int],
    pki: Pki,
    version: int,
    message: bytes,
    session: Any = None,
    **kw: Any,
) -> Thread:
    def run() -> tuple[bytes, tuple[int, int], Any, bool]:
        sock = socket.create_connection(address, timeout=TIMEOUT)
        conn = tlslite.TLSConnection(sock)
        conn.handshakeClientCert(
            settings=settings(version, **kw),
            serverName="localhost",
            alpn=[b"h2"],
            session=session,
        )
        negotiated, resumed = conn.version, conn.resumed
        conn.write(message)
        got = b""
        while True:
            data = conn.read()
            if not data:
                break
            got += bytes(data)
        conn.close()
        return got, negotiated, conn.session, resumed

    return Thread(run)


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_tlslite_client_with_our_server(leaf: CertifiedKey, pki: Pki, version: int) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer = tlslite_client(listener.getsockname(), pki, version, b"ping")
        server = TlsConnection(
            TlsConfig(certificates=(leaf,), alpn_protocols=(b"http/1.1", b"h2")),
            server_side=True,
        )
        hc, got = serve_one(server, listener, b"pong")
        reply, their_version, session, _ = peer.join()
    assert (got, reply) == (b"ping", b"pong")
    assert hc.version == version and hc.alpn_protocol == b"h2"
    assert their_version == VERSIONS[version]
    assert session.appProto == b"h2"
    # tlslite-ng checks no chain by itself; the leaf it saw is ours.
    seen = bytes(session.serverCertChain.x509List[0].writeBytes())
    assert seen == leaf.chain[0].public_bytes(serialization.Encoding.DER)


def our_client_once(
    address: tuple[str, int], pki: Pki, version: int, session: Any
) -> tuple[HandshakeComplete, bytes, list[Any]]:
    """One connection of our client: handshake, "abc", read the reply; collect the
    tickets the server sends."""
    client = TlsConnection(
        TlsConfig(trust_store=(pki.root,), versions=(version,)),
        server_name="localhost",
        session=session,
    )
    client.start(time.time())
    hc: HandshakeComplete | None = None
    got = b""
    tickets: list[Any] = []
    with socket.create_connection(address) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendall(client.data_to_send())
        while len(got) < 3 or (version == TLS1_3 and not tickets):
            data = sock.recv(65536)
            if not data:
                break
            client.receive_data(data, time.time())
            while (e := client.next_event()) is not None:
                if isinstance(e, HandshakeComplete):
                    hc = e
                    client.send(b"abc")
                elif isinstance(e, SessionTicket):
                    tickets.append(e.session)
                elif isinstance(e, DataReceived):
                    got += e.data
            sock.sendall(client.data_to_send())
        client.close()
        with contextlib.suppress(OSError):
            sock.sendall(client.data_to_send())
    assert hc is not None
    return hc, got, tickets


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_our_client_resumes_with_tlslite_server(pki: Pki, leaf: CertifiedKey, version: int) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = listener.getsockname()
        peer = tlslite_server(listener, leaf, version, count=2, ticketKeys=[bytearray(32)])
        hc, got, tickets = our_client_once(address, pki, version, None)
        assert (hc.resumed, got) == (False, b"cba")
        assert tickets, "tlslite-ng sent no session ticket"
        hc, got, _ = our_client_once(address, pki, version, tickets[-1])
        seen = peer.join()
    assert (hc.resumed, got) == (True, b"cba")
    if version == TLS1_2:  # tlslite-ng's flag covers TLS 1.2 only; our hc says it for 1.3
        assert [resumed for _, _, resumed in seen] == [False, True]


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_tlslite_client_resumes_with_our_server(leaf: CertifiedKey, pki: Pki, version: int) -> None:
    config = TlsConfig(certificates=(leaf,), alpn_protocols=(b"h2",), ticket_key=bytes(32))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        session = None
        for attempt in range(2):
            peer = tlslite_client(listener.getsockname(), pki, version, b"ping", session)
            hc, got = serve_one(TlsConnection(config, server_side=True), listener, b"pong")
            reply, _, session, resumed = peer.join()
            assert (got, reply) == (b"ping", b"pong")
            assert hc.resumed == (attempt == 1)
            if version == TLS1_2:  # (tlslite-ng's flag covers TLS 1.2 only)
                assert resumed == (attempt == 1)


def test_hello_retry_with_tlslite_client(leaf: CertifiedKey, pki: Pki) -> None:
    # tlslite-ng sends a share for secp384r1 only; we take x25519 only and ask again.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer = tlslite_client(listener.getsockname(), pki, TLS1_3, b"ping", keyShares=["secp384r1"])
        config = TlsConfig(certificates=(leaf,), groups=(NamedGroup.x25519,))
        hc, got = serve_one(TlsConnection(config, server_side=True), listener, b"pong")
        reply, *_ = peer.join()
    assert (got, reply) == (b"ping", b"pong")
    assert hc.hello_retry and hc.group == NamedGroup.x25519


@pytest.mark.parametrize("kind", ["ecdsa-p384", "rsa", "ed25519"])
@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_certificate_kinds_with_tlslite_client(pki: Pki, kind: str, version: int) -> None:
    leaf = pki.leaf(("localhost",), kind=kind)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer = tlslite_client(listener.getsockname(), pki, version, b"ping")
        server = TlsConnection(TlsConfig(certificates=(leaf,)), server_side=True)
        hc, got = serve_one(server, listener, b"pong")
        reply, their_version, *_ = peer.join()
    assert (got, reply, hc.version, their_version) == (b"ping", b"pong", version, VERSIONS[version])


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_certificate_kinds_with_tlslite_server(pki: Pki, kind: str, version: int) -> None:
    leaf = pki.leaf(("localhost",), kind=kind)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer = tlslite_server(listener, leaf, version)
        client = TlsConnection(
            TlsConfig(trust_store=(pki.root,), versions=(version,)), server_name="localhost"
        )
        with socket.create_connection(listener.getsockname()) as sock:
            hc, got = converse(sock, client, b"abc", 3)
        peer.join()
    assert (got, hc.version) == (b"cba", version)
