"""Interop with real TLS 1.3 peers: Python's ssl (OpenSSL, in memory), the openssl
command (s_server, s_client) and GnuTLS (gnutls-serv, gnutls-cli), over loopback."""

from __future__ import annotations

import itertools
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
from tls_certs import Pki, make_pki

from mirage.tls import (
    CipherSuite,
    DataReceived,
    HandshakeComplete,
    NamedGroup,
    SessionTicket,
    TlsConfig,
    TlsConnection,
)

SUITES = {
    CipherSuite.TLS_AES_128_GCM_SHA256: ("TLS_AES_128_GCM_SHA256", "AES-128-GCM"),
    CipherSuite.TLS_AES_256_GCM_SHA384: ("TLS_AES_256_GCM_SHA384", "AES-256-GCM"),
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: ("TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305"),
}
GROUPS = {
    NamedGroup.x25519: ("X25519", "GROUP-X25519"),
    NamedGroup.secp256r1: ("P-256", "GROUP-SECP256R1"),
    NamedGroup.secp384r1: ("P-384", "GROUP-SECP384R1"),
    NamedGroup.x448: ("X448", "GROUP-X448"),
}
MATRIX = list(itertools.product(SUITES, GROUPS))
IDS = [f"{SUITES[s][0]}-{GROUPS[g][0]}" for s, g in MATRIX]
KINDS = ["ecdsa-p256", "ecdsa-p384", "rsa", "ed25519"]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def leaves(pki: Pki) -> dict[str, object]:
    return {kind: pki.leaf(("localhost", "127.0.0.1"), kind=kind) for kind in KINDS}


def gnutls_priority(suite: int, group: int) -> str:
    return (
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+"
        + SUITES[suite][1]
        + ":-GROUP-ALL:+"
        + GROUPS[group][1]
    )


# ---------------------------------------------------------------------------
# Python's ssl module, in memory


def _pump_ssl(
    ours: TlsConnection, theirs: ssl.SSLObject, inc: ssl.MemoryBIO, out: ssl.MemoryBIO
) -> None:
    for _ in range(20):
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
        elif not data:
            return


@pytest.mark.parametrize(("suite", "group"), MATRIX, ids=IDS)
def test_our_client_with_python_ssl_server(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int, group: int
) -> None:
    files = write_pki(tmp_path, pki, leaves["ecdsa-p256"])  # type: ignore[arg-type]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(files["chain"], files["key"])
    ctx.set_alpn_protocols(["h2"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = ctx.wrap_bio(inc, out, server_side=True)
    client = TlsConnection(
        TlsConfig(
            trust_store=(pki.root,),
            cipher_suites=(suite,),
            groups=(group,),
            key_share_groups=(group,),
            alpn_protocols=(b"h2",),
        ),
        server_name="localhost",
    )
    client.start()
    _pump_ssl(client, server, inc, out)
    hc = client.next_event()
    assert isinstance(hc, HandshakeComplete)
    assert (hc.cipher_suite, hc.group, hc.alpn_protocol) == (suite, group, b"h2")
    assert server.version() == "TLSv1.3" and server.cipher()[0] == SUITES[suite][0]  # type: ignore[index]
    client.send(b"hello ssl")
    inc.write(client.data_to_send())
    assert server.read(100) == b"hello ssl"
    server.write(b"hello mirage")
    client.receive_data(out.read(), time.time())
    events = []
    while (e := client.next_event()) is not None:
        events.append(e)
    # OpenSSL sends two session tickets by default; they come first
    assert [type(e) for e in events] == [SessionTicket, SessionTicket, DataReceived]
    assert events[-1] == DataReceived(b"hello mirage")


@pytest.mark.parametrize(("suite", "group"), MATRIX, ids=IDS)
def test_python_ssl_client_with_our_server(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int, group: int
) -> None:
    files = write_pki(tmp_path, pki, leaves["rsa"])  # type: ignore[arg-type]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(files["root"])
    ctx.set_alpn_protocols(["http/1.1", "h2"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(inc, out, server_hostname="localhost")
    server = TlsConnection(
        TlsConfig(
            certificates=(leaves["rsa"],),
            cipher_suites=(suite,),
            groups=(group,),
            alpn_protocols=(b"h2",),
        ),  # type: ignore[arg-type]
        server_side=True,
    )
    _pump_ssl(server, client, inc, out)
    hc = server.next_event()
    assert isinstance(hc, HandshakeComplete)
    assert (hc.cipher_suite, hc.group) == (suite, group)
    assert hc.hello_retry == (group != NamedGroup.x25519)  # OpenSSL's first share is X25519
    assert client.selected_alpn_protocol() == "h2"
    client.write(b"ping")
    server.receive_data(out.read(), time.time())
    assert server.next_event() == DataReceived(b"ping")


# ---------------------------------------------------------------------------
# openssl s_server / s_client


@pytest.mark.parametrize(("suite", "group"), MATRIX, ids=IDS)
def test_our_client_with_openssl_s_server(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int, group: int
) -> None:
    openssl = need("openssl")
    files = write_pki(tmp_path, pki, leaves["ecdsa-p384"])  # type: ignore[arg-type]
    port = free_port()
    args = [
        openssl,
        "s_server",
        "-accept",
        str(port),
        "-naccept",
        "1",
        "-tls1_3",
        "-cert",
        files["chain"],
        "-cert_chain",
        files["chain"],
        "-key",
        files["key"],
        "-ciphersuites",
        SUITES[suite][0],
        "-groups",
        GROUPS[group][0],
        "-alpn",
        "h2",
        "-rev",
    ]
    with peer(args) as proc:
        wait_for_port_once(port, proc)
        client = TlsConnection(
            TlsConfig(trust_store=(pki.root,), alpn_protocols=(b"h2",)), server_name="localhost"
        )
        with socket.create_connection(("127.0.0.1", port)) as sock:
            hc, got = converse(sock, client, b"hello openssl\n", len(b"lssnepo olleh\n"))
    assert got == b"lssnepo olleh\n"
    assert (hc.cipher_suite, hc.group, hc.alpn_protocol) == (suite, group, b"h2")
    assert hc.hello_retry == (group != NamedGroup.x25519)


def wait_for_port_once(port: int, proc: object) -> None:
    # s_server -naccept 1 would spend its single accept on a probe connection, so
    # wait for its "ACCEPT" line instead.
    import select

    stdout = proc.stdout  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    buf = b""
    while b"ACCEPT" not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([stdout], [], [], 0.2)
        if ready:
            chunk = stdout.read1(4096)
            if not chunk:
                break
            buf += chunk
    assert b"ACCEPT" in buf, "openssl s_server did not start"


@pytest.mark.parametrize(("suite", "group"), MATRIX, ids=IDS)
def test_openssl_s_client_with_our_server(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int, group: int
) -> None:
    openssl = need("openssl")
    files = write_pki(tmp_path, pki, leaves["ecdsa-p256"])  # type: ignore[arg-type]
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
            "-verify_hostname",
            "localhost",
            "-tls1_3",
            "-ciphersuites",
            SUITES[suite][0],
            "-groups",
            GROUPS[group][0],
            "-alpn",
            "h2",
            "-ign_eof",
        ]
        server = TlsConnection(
            TlsConfig(certificates=(leaves["ecdsa-p256"],), alpn_protocols=(b"h2",)),  # type: ignore[arg-type]
            server_side=True,
        )
        with peer(args, stdin=b"ping\n") as proc:
            hc, got = serve_one(server, listener, b"pong\n")
            out, _err = finish(proc)
    assert got == b"ping\n"
    assert (hc.cipher_suite, hc.group, hc.alpn_protocol) == (suite, group, b"h2")
    text = out.decode(errors="replace")
    assert "pong" in text
    assert "Verify return code: 0 (ok)" in text
    assert f"Cipher is {SUITES[suite][0]}" in text
    assert "ALPN protocol: h2" in text


@pytest.mark.parametrize("kind", KINDS)
def test_certificate_kinds_with_openssl_s_client(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, kind: str
) -> None:
    openssl = need("openssl")
    files = write_pki(tmp_path, pki, leaves[kind])  # type: ignore[arg-type]
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
            "-tls1_3",
            "-ign_eof",
        ]
        server = TlsConnection(TlsConfig(certificates=(leaves[kind],)), server_side=True)  # type: ignore[arg-type]
        with peer(args, stdin=b"ping\n") as proc:
            serve_one(server, listener, b"pong\n")
            out, _ = finish(proc)
    text = out.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in text and "pong" in text


def test_sni_with_openssl_s_client(pki: Pki, tmp_path: Path) -> None:
    openssl = need("openssl")
    a = pki.leaf(("a.example",))
    b = pki.leaf(("b.example",), kind="rsa")
    files = write_pki(tmp_path, pki, a)
    for name in ("a.example", "b.example"):
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
                name,
                "-CAfile",
                files["root"],
                "-verify_return_error",
                "-verify_hostname",
                name,
                "-tls1_3",
                "-ign_eof",
            ]
            server = TlsConnection(TlsConfig(certificates=(a, b)), server_side=True)
            with peer(args, stdin=b"x\n") as proc:
                hc, _ = serve_one(server, listener, b"y\n")
                out, _ = finish(proc)
        assert hc.server_name == name
        text = out.decode(errors="replace")
        assert f"CN = {name}" in text or f"CN={name}" in text
        assert "Verify return code: 0 (ok)" in text


def test_client_certificate_with_openssl_s_server(
    pki: Pki, leaves: dict[str, object], tmp_path: Path
) -> None:
    openssl = need("openssl")
    files = write_pki(tmp_path, pki, leaves["ecdsa-p256"])  # type: ignore[arg-type]
    mine = pki.leaf(("client",), kind="rsa", client=True)
    port = free_port()
    args = [
        openssl,
        "s_server",
        "-accept",
        str(port),
        "-naccept",
        "1",
        "-tls1_3",
        "-cert",
        files["chain"],
        "-cert_chain",
        files["chain"],
        "-key",
        files["key"],
        "-Verify",
        "3",
        "-CAfile",
        files["root"],
        "-verify_return_error",
        "-rev",
    ]
    with peer(args) as proc:
        wait_for_port_once(port, proc)
        client = TlsConnection(
            TlsConfig(trust_store=(pki.root,), certificates=(mine,)), server_name="localhost"
        )
        with socket.create_connection(("127.0.0.1", port)) as sock:
            _, got = converse(sock, client, b"abc\n", 4)
    assert got == b"cba\n"


def test_key_update_with_openssl_s_server(
    pki: Pki, leaves: dict[str, object], tmp_path: Path
) -> None:
    openssl = need("openssl")
    files = write_pki(tmp_path, pki, leaves["ecdsa-p256"])  # type: ignore[arg-type]
    port = free_port()
    args = [
        openssl,
        "s_server",
        "-accept",
        str(port),
        "-naccept",
        "1",
        "-tls1_3",
        "-cert",
        files["chain"],
        "-cert_chain",
        files["chain"],
        "-key",
        files["key"],
        "-rev",
    ]
    with peer(args) as proc:
        wait_for_port_once(port, proc)
        client = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            converse(sock, client, b"one\n", 4, close_after=False)
            client.key_update(request_peer=True)
            client.send(b"two\n")
            sock.sendall(client.data_to_send())
            got = b""
            while len(got) < 4:
                client.receive_data(sock.recv(65536), time.time())
                while (e := client.next_event()) is not None:
                    if isinstance(e, DataReceived):
                        got += e.data
            sock.sendall(client.data_to_send())
    assert got == b"owt\n"


# ---------------------------------------------------------------------------
# GnuTLS


@pytest.mark.parametrize(("suite", "group"), MATRIX, ids=IDS)
def test_our_client_with_gnutls_serv(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int, group: int
) -> None:
    gnutls_serv = need("gnutls-serv")
    files = write_pki(tmp_path, pki, leaves["ecdsa-p256"])  # type: ignore[arg-type]
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
        gnutls_priority(suite, group),
        "--alpn",
        "h2",
    ]
    with peer(args) as proc:
        wait_for_port(port, proc)
        client = TlsConnection(
            TlsConfig(trust_store=(pki.root,), alpn_protocols=(b"h2",)), server_name="localhost"
        )
        with socket.create_connection(("127.0.0.1", port)) as sock:
            hc, got = converse(sock, client, b"hello gnutls\n", 13)
    assert got == b"hello gnutls\n"
    assert (hc.cipher_suite, hc.group, hc.alpn_protocol) == (suite, group, b"h2")


@pytest.mark.parametrize(("suite", "group"), MATRIX, ids=IDS)
def test_gnutls_cli_with_our_server(
    pki: Pki, leaves: dict[str, object], tmp_path: Path, suite: int, group: int
) -> None:
    gnutls_cli = need("gnutls-cli")
    files = write_pki(tmp_path, pki, leaves["rsa"])  # type: ignore[arg-type]
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
            gnutls_priority(suite, group),
            "--alpn",
            "h2",
        ]
        server = TlsConnection(
            TlsConfig(certificates=(leaves["rsa"],), alpn_protocols=(b"h2",)),  # type: ignore[arg-type]
            server_side=True,
        )
        with peer(args, stdin=b"ping\n") as proc:
            hc, got = serve_one(server, listener, b"pong\n")
            out, err = finish(proc)
    assert got == b"ping\n"
    assert (hc.cipher_suite, hc.group, hc.alpn_protocol) == (suite, group, b"h2")
    assert hc.server_name == "localhost"
    assert b"pong" in out
    assert b"Handshake was completed" in err + out
