"""0-RTT: off by default; a server that enables it accepts early data once per ticket
(anti-replay) from a real OpenSSL client, and refuses it otherwise."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from interop_peers import TIMEOUT, finish, need, peer, write_pki
from tls_certs import NOW_TS, Pki, make_pki

from mirage.tls import (
    DataReceived,
    EarlyDataReceived,
    Event,
    HandshakeComplete,
    ReplayCache,
    TlsConfig,
    TlsConnection,
)

KEY = os.urandom(32)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def test_replay_cache() -> None:
    cache = ReplayCache(capacity=2)
    assert cache.first_use(b"a", NOW_TS, NOW_TS + 10)
    assert not cache.first_use(b"a", NOW_TS + 1, NOW_TS + 10)
    assert cache.first_use(b"b", NOW_TS, NOW_TS + 10)
    assert not cache.first_use(b"c", NOW_TS, NOW_TS + 10)  # full
    assert cache.first_use(b"c", NOW_TS + 11, NOW_TS + 20)  # the others expired
    assert cache.first_use(b"a", NOW_TS + 12, NOW_TS + 20)


def test_tickets_announce_early_data_only_when_enabled(pki: Pki) -> None:
    from tls_pair import Pair

    from mirage.tls import SessionTicket

    for max_early in (0, 1000):
        server = TlsConfig(
            certificates=(pki.leaf(),),
            ticket_key=KEY,
            max_early_data=max_early,
            replay_cache=ReplayCache(),
        )
        pair = Pair(TlsConfig(trust_store=(pki.root,)), server).handshake()
        (ticket,) = [e for e in pair.client_events if isinstance(e, SessionTicket)]
        assert ticket.session.max_early_data == max_early


def serve(conn: TlsConnection, listener: socket.socket) -> list[Event]:
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    events: list[Event] = []
    with sock:
        sock.settimeout(TIMEOUT)
        while not conn.write_closed:
            data = sock.recv(65536)
            if not data:
                break
            conn.receive_data(data, time.time())
            while (e := conn.next_event()) is not None:
                events.append(e)
                if isinstance(e, DataReceived):
                    conn.send(b"pong\n")
                    conn.close()
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
    return events


def test_openssl_s_client_early_data(pki: Pki, tmp_path: Path) -> None:
    openssl = need("openssl")
    leaf = pki.leaf()
    files = write_pki(tmp_path, pki, leaf)
    sess = tmp_path / "sess.pem"
    early = tmp_path / "early.txt"
    early.write_bytes(b"early bird\n")
    config = TlsConfig(
        certificates=(leaf,), ticket_key=KEY, max_early_data=16384, replay_cache=ReplayCache()
    )
    results = []
    for attempt in range(3):
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
                "-tls1_3",
                "-ign_eof",
            ]
            if attempt == 0:
                args += ["-sess_out", str(sess)]
            else:
                args += ["-sess_in", str(sess), "-early_data", str(early)]
            with peer(args, stdin=b"ping\n") as proc:
                events = serve(TlsConnection(config, server_side=True), listener)
                out, _ = finish(proc)
        hc = next(e for e in events if isinstance(e, HandshakeComplete))
        got_early = b"".join(e.data for e in events if isinstance(e, EarlyDataReceived))
        got = b"".join(e.data for e in events if isinstance(e, DataReceived))
        text = out.decode(errors="replace")
        results.append((hc.resumed, got_early, got, "Early data was accepted" in text))
        assert "pong" in text
    assert results[0] == (False, b"", b"ping\n", False)
    assert results[1] == (True, b"early bird\n", b"ping\n", True)
    # the same ticket again: a replay, so its early data is refused (the session
    # still resumes)
    assert results[2] == (True, b"", b"ping\n", False)
