"""Driving our engine over blocking loopback sockets against real peer processes."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_certs import Pki, pem_cert, pem_chain, pem_key

from mirage.tls import CertifiedKey, DataReceived, Event, HandshakeComplete, TlsConnection

TIMEOUT = 10.0


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        package = "gnutls-bin" if "gnutls" in tool else "openssl"
        pytest.skip(f"needs {tool} on PATH (Debian package {package})")
    return path


def write_pki(tmp: Path, pki: Pki, leaf: CertifiedKey) -> dict[str, str]:
    files = {
        "chain": pem_chain(leaf),
        "key": pem_key(leaf),
        "root": pem_cert(pki.root),
    }
    out = {}
    for name, data in files.items():
        path = tmp / f"{name}.pem"
        path.write_bytes(data)
        out[name] = str(path)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"the peer exited early: {proc.stderr.read() if proc.stderr else b''!r}"
            )
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise AssertionError("the peer did not start listening")


@contextlib.contextmanager
def peer(args: list[str], stdin: bytes | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.flush()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)


def converse(
    sock: socket.socket,
    conn: TlsConnection,
    message: bytes,
    expect: int,
    *,
    close_after: bool = True,
) -> tuple[HandshakeComplete, bytes]:
    """Handshake, send ``message`` once connected, read ``expect`` bytes back."""
    sock.settimeout(TIMEOUT)
    done: HandshakeComplete | None = None
    got = bytearray()
    if not conn.server_side:
        conn.start()
    sock.sendall(conn.data_to_send())
    while done is None or len(got) < expect:
        data = sock.recv(65536)
        if not data:
            break
        conn.receive_data(data, time.time())
        events: list[Event] = []
        while (e := conn.next_event()) is not None:
            events.append(e)
        for e in events:
            if isinstance(e, HandshakeComplete):
                done = e
                if message:
                    conn.send(message)
            elif isinstance(e, DataReceived):
                got += e.data
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    if close_after:
        conn.close()
        with contextlib.suppress(OSError):
            sock.sendall(conn.data_to_send())
    assert done is not None, "the handshake did not complete"
    return done, bytes(got)


def serve_one(
    conn: TlsConnection, listener: socket.socket, reply: bytes
) -> tuple[HandshakeComplete, bytes]:
    """Accept one connection; answer the first data with ``reply`` and close."""
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    with sock:
        sock.settimeout(TIMEOUT)
        done: HandshakeComplete | None = None
        got = bytearray()
        while True:
            data = sock.recv(65536)
            if not data:
                break
            conn.receive_data(data, time.time())
            while (e := conn.next_event()) is not None:
                if isinstance(e, HandshakeComplete):
                    done = e
                elif isinstance(e, DataReceived):
                    got += e.data
                    if not conn.write_closed:
                        conn.send(reply)
                        conn.close()
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if conn.write_closed:
                break
        assert done is not None, "the handshake did not complete"
        return done, bytes(got)


def finish(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Close the peer's stdin, wait for it to exit, return (stdout, stderr)."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.close()
    try:
        proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(TIMEOUT)
    return proc.stdout.read(), proc.stderr.read()
