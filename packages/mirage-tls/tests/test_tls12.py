"""TLS 1.2: in-memory pairs, and interop with Python's ssl, openssl and GnuTLS."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
from interop_peers import (
    converse,
    finish,
    free_port,
    need,
    peer,
    serve_one,
    wait_for_port,
    write_pki,
)
from tls_certs import NOW_TS, Pki, make_pki
from tls_pair import Pair

from mirage.tls import (
    AlertDescription,
    DataReceived,
    HandshakeComplete,
    HandshakeFailure,
    IllegalParameter,
    NamedGroup,
    PeerAlert,
    TlsConfig,
    TlsConnection,
    TlsUsageError,
)
from mirage.tls._constants import TLS1_2, TLS1_3

ECDSA_SUITES = {
    0xC02B: ("ECDHE-ECDSA-AES128-GCM-SHA256", "AES-128-GCM"),
    0xC02C: ("ECDHE-ECDSA-AES256-GCM-SHA384", "AES-256-GCM"),
    0xCCA9: ("ECDHE-ECDSA-CHACHA20-POLY1305", "CHACHA20-POLY1305"),
}
RSA_SUITES = {
    0xC02F: ("ECDHE-RSA-AES128-GCM-SHA256", "AES-128-GCM"),
    0xC030: ("ECDHE-RSA-AES256-GCM-SHA384", "AES-256-GCM"),
    0xCCA8: ("ECDHE-RSA-CHACHA20-POLY1305", "CHACHA20-POLY1305"),
}
ALL = {**ECDSA_SUITES, **RSA_SUITES}
ONLY12 = (TLS1_2,)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def leaves(pki: Pki) -> dict[str, object]:
    return {k: pki.leaf(kind=k) for k in ("ecdsa-p256", "rsa", "ed25519")}


def kind_for(suite: int) -> str:
    return "ecdsa-p256" if suite in ECDSA_SUITES else "rsa"


def done(events: list[object]) -> HandshakeComplete:
    (hc,) = [e for e in events if isinstance(e, HandshakeComplete)]
    return hc


@pytest.mark.parametrize("suite", list(ALL), ids=[v[0] for v in ALL.values()])
@pytest.mark.parametrize("group", [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.x448])
def test_pair(pki: Pki, leaves: dict[str, object], suite: int, group: int) -> None:
    pair = Pair(
        TlsConfig(
            trust_store=(pki.root,), versions=ONLY12, cipher_suites=(suite,), groups=(group,)
        ),
        TlsConfig(certificates=(leaves[kind_for(suite)],), versions=ONLY12),  # type: ignore[arg-type]
    ).handshake()
    hc = done(pair.client_events)
    assert (hc.version, hc.cipher_suite, hc.group) == (TLS1_2, suite, group)
    assert done(pair.server_events).version == TLS1_2
    pair.client.send(b"a" * 40000)
    pair.server.send(b"b")
    pair.step()
    assert pair.server_data() == b"a" * 40000 and pair.client_data() == b"b"
    with pytest.raises(TlsUsageError):
        pair.client.key_update()


def test_ed25519_certificate(pki: Pki, leaves: dict[str, object]) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), versions=ONLY12),
        TlsConfig(certificates=(leaves["ed25519"],), versions=ONLY12),  # type: ignore[arg-type]
    ).handshake()
    assert done(pair.client_events).signature_scheme == 0x0807


def test_server_prefers_13_and_marks_a_downgrade(pki: Pki, leaves: dict[str, object]) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)),
        TlsConfig(certificates=(leaves["rsa"],)),  # type: ignore[arg-type]
    ).handshake()
    assert done(pair.client_events).version == TLS1_3
    # a 1.2-only client gets 1.2 from a 1.3-capable server, with the sentinel
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), versions=ONLY12),
        TlsConfig(certificates=(leaves["rsa"],)),  # type: ignore[arg-type]
    )
    pair.client.start()
    pair.server.receive_data(pair.client.data_to_send(), NOW_TS)
    flight = pair.server.data_to_send()
    assert b"DOWNGRD\x01" in flight
    pair.client.receive_data(flight, NOW_TS)


def test_downgrade_sentinel_is_detected(pki: Pki, leaves: dict[str, object]) -> None:
    # a 1.3-and-1.2 client talking to a server that answers 1.2 with the sentinel
    client = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost")
    client.start()
    hello = client.data_to_send()
    # an attacker strips TLS 1.3 from the offer; the honest 1.3-capable server answers
    # with 1.2 and the sentinel, which the client sees
    server12 = TlsConnection(
        TlsConfig(certificates=(leaves["rsa"],), versions=(TLS1_3, TLS1_2)),  # type: ignore[arg-type]
        server_side=True,
    )
    tampered = hello.replace(
        b"\x00\x2b\x00\x05\x04\x03\x04\x03\x03", b"\x00\x2b\x00\x05\x04\x03\x03\x03\x03"
    )
    assert tampered != hello
    server12.receive_data(tampered, NOW_TS)
    with pytest.raises(IllegalParameter):
        client.receive_data(server12.data_to_send(), NOW_TS)


def test_extended_master_secret_is_required(pki: Pki, leaves: dict[str, object]) -> None:
    client = TlsConnection(
        TlsConfig(trust_store=(pki.root,), versions=ONLY12), server_name="localhost"
    )
    client.start()
    hello = client.data_to_send()
    assert b"\x00\x17\x00\x00" in hello
    server = TlsConnection(
        TlsConfig(certificates=(leaves["rsa"],), versions=ONLY12), server_side=True
    )  # type: ignore[arg-type]
    with pytest.raises(HandshakeFailure, match="extended master secret"):
        server.receive_data(hello.replace(b"\x00\x17\x00\x00", b"\x12\x34\x00\x00"), NOW_TS)


def test_renegotiation_is_refused(pki: Pki, leaves: dict[str, object]) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), versions=ONLY12),
        TlsConfig(certificates=(leaves["rsa"],), versions=ONLY12),  # type: ignore[arg-type]
    ).handshake()
    # the server asks for renegotiation with a HelloRequest: the client declines
    pair.server._out += pair.server._records.write(22, b"\x00\x00\x00\x00")
    pair.client.receive_data(pair.server.data_to_send(), NOW_TS)
    warning = pair.client.data_to_send()
    pair.server.receive_data(warning, NOW_TS)  # a warning: the connection goes on
    pair.client.send(b"still here")
    pair.step()
    assert pair.server_data() == b"still here"


def test_client_certificate(pki: Pki, leaves: dict[str, object]) -> None:
    mine = pki.leaf(("client",), kind="ecdsa-p256", client=True)
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), versions=ONLY12, certificates=(mine,)),
        TlsConfig(
            certificates=(leaves["rsa"],),  # type: ignore[arg-type]
            versions=ONLY12,
            trust_store=(pki.root,),
            require_client_certificate=True,
        ),
    ).handshake()
    assert done(pair.server_events).peer_certificates[0] == mine.chain[0]


def test_no_suite_for_the_certificate(pki: Pki, leaves: dict[str, object]) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), versions=ONLY12, cipher_suites=(0xC02F,)),
        TlsConfig(certificates=(leaves["ecdsa-p256"],), versions=ONLY12),  # type: ignore[arg-type]
    )
    with pytest.raises(HandshakeFailure):
        pair.handshake()
    with pytest.raises(PeerAlert) as info:
        pair.client.receive_data(pair.server.data_to_send(), NOW_TS)
    assert info.value.description == AlertDescription.handshake_failure


# ---------------------------------------------------------------------------
# real peers


@pytest.mark.parametrize("suite", list(ALL), ids=[v[0] for v in ALL.values()])
def test_python_ssl_both_directions(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int
) -> None:
    files = write_pki(tmp_path, pki, leaves[kind_for(suite)])  # type: ignore[arg-type]
    # our client, ssl server
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sctx.load_cert_chain(files["chain"], files["key"])
    sctx.set_ciphers(ALL[suite][0])
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.maximum_version = ssl.TLSVersion.TLSv1_2
    cctx.load_verify_locations(files["root"])
    cctx.set_ciphers(ALL[suite][0])
    for our_side in ("client", "server"):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        if our_side == "client":
            theirs = sctx.wrap_bio(inc, out, server_side=True)
            ours = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost")
            ours.start()
        else:
            theirs = cctx.wrap_bio(inc, out, server_hostname="localhost")
            ours = TlsConnection(
                TlsConfig(certificates=(leaves[kind_for(suite)],)),  # type: ignore[arg-type]
                server_side=True,
            )
        for _ in range(10):
            try:
                theirs.do_handshake()
            except ssl.SSLWantReadError:
                pass
            data = out.read()
            if data:
                ours.receive_data(data, time.time())
            mine = ours.data_to_send()
            if mine:
                inc.write(mine)
            if not data and not mine:
                break
        hc = ours.next_event()
        assert isinstance(hc, HandshakeComplete), our_side
        assert (hc.version, hc.cipher_suite) == (TLS1_2, suite)
        assert theirs.version() == "TLSv1.2"
        ours.send(b"from mirage")
        inc.write(ours.data_to_send())
        assert theirs.read(100) == b"from mirage"
        theirs.write(b"from ssl")
        ours.receive_data(out.read(), time.time())
        events = []
        while (e := ours.next_event()) is not None:
            events.append(e)
        # a client also got a SessionTicket (OpenSSL issues 1.2 tickets)
        assert [e for e in events if isinstance(e, DataReceived)] == [DataReceived(b"from ssl")]


@pytest.mark.parametrize("suite", list(ALL), ids=[v[0] for v in ALL.values()])
def test_openssl_both_directions(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int
) -> None:
    openssl = need("openssl")
    files = write_pki(tmp_path, pki, leaves[kind_for(suite)])  # type: ignore[arg-type]
    # our client against s_server
    port = free_port()
    args = [
        openssl,
        "s_server",
        "-accept",
        str(port),
        "-naccept",
        "1",
        "-tls1_2",
        "-cert",
        files["chain"],
        "-cert_chain",
        files["chain"],
        "-key",
        files["key"],
        "-cipher",
        ALL[suite][0],
        "-alpn",
        "h2",
        "-rev",
    ]
    from test_interop import wait_for_port_once

    with peer(args) as proc:
        wait_for_port_once(port, proc)
        client = TlsConnection(
            TlsConfig(trust_store=(pki.root,), alpn_protocols=(b"h2",)), server_name="localhost"
        )
        with socket.create_connection(("127.0.0.1", port)) as sock:
            hc, got = converse(sock, client, b"abc\n", 4)
    assert got == b"cba\n"
    assert (hc.version, hc.cipher_suite, hc.alpn_protocol) == (TLS1_2, suite, b"h2")
    # s_client against our server
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        args = [
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "localhost",
            "-CAfile",
            files["root"],
            "-verify_return_error",
            "-tls1_2",
            "-cipher",
            ALL[suite][0],
            "-alpn",
            "h2",
            "-ign_eof",
        ]
        server = TlsConnection(
            TlsConfig(certificates=(leaves[kind_for(suite)],), alpn_protocols=(b"h2",)),  # type: ignore[arg-type]
            server_side=True,
        )
        with peer(args, stdin=b"ping\n") as proc:
            hc, got = serve_one(server, listener, b"pong\n")
            out, _ = finish(proc)
    assert got == b"ping\n" and hc.version == TLS1_2
    text = out.decode(errors="replace")
    assert "pong" in text and "Verify return code: 0 (ok)" in text
    assert "Extended master secret: yes" in text
    assert "Secure Renegotiation IS supported" in text


@pytest.mark.parametrize("suite", list(ALL), ids=[v[0] for v in ALL.values()])
def test_gnutls_both_directions(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int
) -> None:
    gnutls_serv = need("gnutls-serv")
    gnutls_cli = need("gnutls-cli")
    files = write_pki(tmp_path, pki, leaves[kind_for(suite)])  # type: ignore[arg-type]
    priority = f"NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+{ALL[suite][1]}"
    port = free_port()
    args = [
        gnutls_serv,
        "--port",
        str(port),
        "--echo",
        "--x509certfile",
        files["chain"],
        "--x509keyfile",
        files["key"],
        "--priority",
        priority,
    ]
    with peer(args) as proc:
        wait_for_port(port, proc)
        client = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            hc, got = converse(sock, client, b"hello gnutls\n", 13)
    assert got == b"hello gnutls\n"
    assert (hc.version, hc.cipher_suite) == (TLS1_2, suite)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        args = [
            gnutls_cli,
            "127.0.0.1",
            "--port",
            str(port),
            "--sni-hostname",
            "localhost",
            "--verify-hostname",
            "localhost",
            "--x509cafile",
            files["root"],
            "--priority",
            priority,
        ]
        server = TlsConnection(TlsConfig(certificates=(leaves[kind_for(suite)],)), server_side=True)  # type: ignore[arg-type]
        with peer(args, stdin=b"ping\n") as proc:
            hc, got = serve_one(server, listener, b"pong\n")
            out, _ = finish(proc)
    assert got == b"ping\n" and (hc.version, hc.cipher_suite) == (TLS1_2, suite)
    assert b"pong" in out
