"""TLS 1.3 resumption with tickets and PSK binders, in memory and against OpenSSL."""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

import pytest
from interop_peers import finish, need, peer, write_pki
from tls_certs import NOW_TS, Pki, make_pki
from tls_pair import Pair

from mirage.tls import (
    CipherSuite,
    DecryptError,
    HandshakeComplete,
    NamedGroup,
    Session,
    SessionTicket,
    TlsConfig,
    TlsConnection,
)

KEY = os.urandom(32)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def done(events: list[object]) -> HandshakeComplete:
    (hc,) = [e for e in events if isinstance(e, HandshakeComplete)]
    return hc


def first_session(pki: Pki, server: TlsConfig, client: TlsConfig | None = None) -> Session:
    pair = Pair(client or TlsConfig(trust_store=(pki.root,)), server).handshake()
    assert not done(pair.client_events).resumed
    (ticket,) = [e for e in pair.client_events if isinstance(e, SessionTicket)]
    return ticket.session


def resume(pki: Pki, server: TlsConfig, session: Session, client: TlsConfig | None = None) -> Pair:
    pair = Pair(client or TlsConfig(trust_store=(pki.root,)), server)
    pair.client = TlsConnection(
        client or TlsConfig(trust_store=(pki.root,)), server_name="localhost", session=session
    )
    pair.client.start(NOW_TS + 10)
    while pair.step():
        pass
    return pair


def test_resume_with_a_ticket(pki: Pki) -> None:
    server = TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY, alpn_protocols=(b"h2",))
    client = TlsConfig(trust_store=(pki.root,), alpn_protocols=(b"h2",))
    session = first_session(pki, server, client)
    assert session.alpn_protocol == b"h2" and session.peer_certificates
    pair = resume(pki, server, session, client)
    hc = done(pair.client_events)
    assert hc.resumed and done(pair.server_events).resumed
    assert hc.peer_certificates == session.peer_certificates
    pair.client.send(b"resumed")
    pair.step()
    assert pair.server_data() == b"resumed"
    # a new ticket comes with the resumed session too
    assert any(isinstance(e, SessionTicket) for e in pair.client_events)


def test_resume_after_hello_retry(pki: Pki) -> None:
    server = TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY, groups=(NamedGroup.secp256r1,))
    session = first_session(pki, server)
    pair = resume(pki, server, session)
    hc = done(pair.client_events)
    assert hc.resumed and hc.hello_retry


def test_a_ticket_under_another_key_means_a_full_handshake(pki: Pki) -> None:
    session = first_session(pki, TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY))
    other = TlsConfig(certificates=(pki.leaf(),), ticket_key=os.urandom(32))
    pair = resume(pki, other, session)
    assert not done(pair.client_events).resumed


def test_expired_ticket_is_not_offered(pki: Pki) -> None:
    server = TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY, ticket_lifetime=5)
    session = first_session(pki, server)
    pair = resume(pki, server, session)  # 10 s later
    assert not done(pair.client_events).resumed
    assert pair.client._client_hello is not None
    assert pair.client._client_hello.pre_shared_key is None


def test_wrong_binder_is_decrypt_error(pki: Pki) -> None:
    server = TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY)
    session = first_session(pki, server)
    bad = Session(
        **{**{f: getattr(session, f) for f in session.__dataclass_fields__}, "psk": bytes(32)}
    )
    client = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost", session=bad)
    client.start(NOW_TS)
    s = TlsConnection(server, server_side=True)
    with pytest.raises(DecryptError):
        s.receive_data(client.data_to_send(), NOW_TS)


def test_suite_of_another_hash_means_a_full_handshake(pki: Pki) -> None:
    server = TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY)
    session = first_session(pki, server)
    assert session.cipher_suite == CipherSuite.TLS_AES_128_GCM_SHA256
    server384 = TlsConfig(
        certificates=(pki.leaf(),),
        ticket_key=KEY,
        cipher_suites=(CipherSuite.TLS_AES_256_GCM_SHA384,),
    )
    pair = resume(pki, server384, session)
    assert not done(pair.client_events).resumed


def test_python_ssl_resumes_with_our_tickets(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf()
    files = write_pki(tmp_path, pki, leaf)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(files["root"])
    server_config = TlsConfig(certificates=(leaf,), ticket_key=KEY)
    session = None
    for attempt in range(2):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = ctx.wrap_bio(inc, out, server_hostname="localhost", session=session)
        server = TlsConnection(server_config, server_side=True)
        for _ in range(10):
            try:
                client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            data = out.read()
            if data:
                server.receive_data(data, time.time())
            mine = server.data_to_send()
            if mine:
                inc.write(mine)
            if not data and not mine:
                break
        client.write(b"x")  # lets the client read the ticket that followed
        server.receive_data(out.read(), time.time())
        try:
            client.read(1)
        except ssl.SSLWantReadError:
            pass
        hc = server.next_event()
        assert isinstance(hc, HandshakeComplete)
        assert hc.resumed == (attempt == 1)
        assert client.session_reused == (attempt == 1)
        session = client.session


def test_our_client_resumes_with_openssl_s_server(pki: Pki, tmp_path: Path) -> None:
    openssl = need("openssl")
    leaf = pki.leaf()
    files = write_pki(tmp_path, pki, leaf)
    sock0 = socket.socket()
    sock0.bind(("127.0.0.1", 0))
    port = sock0.getsockname()[1]
    sock0.close()
    args = [
        openssl,
        "s_server",
        "-accept",
        str(port),
        "-naccept",
        "2",
        "-tls1_3",
        "-cert",
        files["chain"],
        "-cert_chain",
        files["chain"],
        "-key",
        files["key"],
        "-rev",
    ]
    from test_interop import wait_for_port_once

    with peer(args) as proc:
        wait_for_port_once(port, proc)
        session = None
        for attempt in range(2):
            client = TlsConnection(
                TlsConfig(trust_store=(pki.root,)), server_name="localhost", session=session
            )
            client.start(time.time())
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.settimeout(10)
                sock.sendall(client.data_to_send())
                hc = None
                got = b""
                tickets = []
                while len(got) < 4 or not tickets:
                    data = sock.recv(65536)
                    assert data
                    client.receive_data(data, time.time())
                    while (e := client.next_event()) is not None:
                        if isinstance(e, HandshakeComplete):
                            hc = e
                            client.send(b"abc\n")
                        elif isinstance(e, SessionTicket):
                            tickets.append(e.session)
                        elif hasattr(e, "data"):
                            got += e.data  # type: ignore[union-attr]
                    sock.sendall(client.data_to_send())
                client.close()
                sock.sendall(client.data_to_send())
            assert hc is not None and hc.resumed == (attempt == 1)
            assert got == b"cba\n"
            session = tickets[0]
        finish(proc)


def test_another_server_name_means_a_full_handshake(pki: Pki) -> None:
    server = TlsConfig(certificates=(pki.leaf(("localhost", "other.example")),), ticket_key=KEY)
    session = first_session(pki, server)
    client = TlsConnection(
        TlsConfig(trust_store=(pki.root,)), server_name="other.example", session=session
    )
    client.start(NOW_TS)
    s = TlsConnection(server, server_side=True)
    s.receive_data(client.data_to_send(), NOW_TS)
    client.receive_data(s.data_to_send(), NOW_TS)
    s.receive_data(client.data_to_send(), NOW_TS)
    hc = s.next_event()
    assert isinstance(hc, HandshakeComplete) and not hc.resumed


# ---------------------------------------------------------------------------
# TLS 1.2 session tickets (RFC 5077)

ONLY12 = (0x0303,)


def test_tls12_ticket_resumption(pki: Pki) -> None:
    server = TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY, versions=ONLY12)
    client = TlsConfig(trust_store=(pki.root,), versions=ONLY12)
    session = first_session(pki, server, client)
    assert session.version == 0x0303 and len(session.psk) == 48
    pair = resume(pki, server, session, client)
    hc = done(pair.client_events)
    assert hc.version == 0x0303 and hc.resumed and done(pair.server_events).resumed
    pair.client.send(b"abbreviated")
    pair.server.send(b"yes")
    pair.step()
    assert pair.server_data() == b"abbreviated" and pair.client_data() == b"yes"


def test_tls12_ticket_under_another_key(pki: Pki) -> None:
    session = first_session(
        pki,
        TlsConfig(certificates=(pki.leaf(),), ticket_key=KEY, versions=ONLY12),
        TlsConfig(trust_store=(pki.root,), versions=ONLY12),
    )
    other = TlsConfig(certificates=(pki.leaf(),), ticket_key=os.urandom(32), versions=ONLY12)
    pair = resume(pki, other, session, TlsConfig(trust_store=(pki.root,), versions=ONLY12))
    assert not done(pair.client_events).resumed


def test_python_ssl_resumes_tls12_with_our_tickets(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf()
    files = write_pki(tmp_path, pki, leaf)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(files["root"])
    server_config = TlsConfig(certificates=(leaf,), ticket_key=KEY)
    session = None
    for attempt in range(2):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = ctx.wrap_bio(inc, out, server_hostname="localhost", session=session)
        server = TlsConnection(server_config, server_side=True)
        for _ in range(10):
            try:
                client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            data = out.read()
            if data:
                server.receive_data(data, time.time())
            mine = server.data_to_send()
            if mine:
                inc.write(mine)
            if not data and not mine:
                break
        hc = server.next_event()
        assert isinstance(hc, HandshakeComplete) and hc.version == 0x0303
        assert hc.resumed == (attempt == 1)
        assert client.session_reused == (attempt == 1)
        session = client.session


def test_our_client_resumes_tls12_with_openssl_s_server(pki: Pki, tmp_path: Path) -> None:
    openssl = need("openssl")
    leaf = pki.leaf()
    files = write_pki(tmp_path, pki, leaf)
    sock0 = socket.socket()
    sock0.bind(("127.0.0.1", 0))
    port = sock0.getsockname()[1]
    sock0.close()
    args = [
        openssl,
        "s_server",
        "-accept",
        str(port),
        "-naccept",
        "2",
        "-tls1_2",
        "-cert",
        files["chain"],
        "-cert_chain",
        files["chain"],
        "-key",
        files["key"],
        "-rev",
    ]
    from test_interop import wait_for_port_once

    with peer(args) as proc:
        wait_for_port_once(port, proc)
        session = None
        for attempt in range(2):
            client = TlsConnection(
                TlsConfig(trust_store=(pki.root,)), server_name="localhost", session=session
            )
            client.start(time.time())
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.settimeout(10)
                sock.sendall(client.data_to_send())
                hc = None
                got = b""
                tickets = []
                while len(got) < 4:
                    data = sock.recv(65536)
                    assert data
                    client.receive_data(data, time.time())
                    while (e := client.next_event()) is not None:
                        if isinstance(e, HandshakeComplete):
                            hc = e
                            client.send(b"abc\n")
                        elif isinstance(e, SessionTicket):
                            tickets.append(e.session)
                        elif hasattr(e, "data"):
                            got += e.data  # type: ignore[union-attr]
                    sock.sendall(client.data_to_send())
                client.close()
                sock.sendall(client.data_to_send())
            assert hc is not None and hc.version == 0x0303
            assert hc.resumed == (attempt == 1)
            assert got == b"cba\n"
            if attempt == 0:
                session = tickets[0]
        finish(proc)
