"""Every example configured, built and run on the unix target."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLES, Mirage


def build(directory: Path, mirage: Mirage, *keys: str) -> Path:
    result = mirage(directory, "configure", "-t", "unix", *keys)
    assert result.returncode == 0, result.stderr
    result = mirage(directory, "build")
    assert result.returncode == 0, result.stderr
    (pyz,) = (directory / "dist").glob("*.pyz")
    return pyz


def test_every_example_is_covered() -> None:
    examples = {p.parent.name for p in EXAMPLES.glob("*/config.py")}
    covered = {"hello", "echo", "echo-tls", "kv", "static-website", "dns-server"}
    assert examples <= covered, "add a test for the new example"


def test_hello(example: Callable[[str], Path], mirage: Mirage) -> None:
    directory = example("hello")
    build(directory, mirage)
    result = mirage(directory, "run", "--count", "3", "--delay-ms", "1", "--hello", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n" * 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_echo_serves_tcp(example: Callable[[str], Path], mirage: Mirage) -> None:
    directory = example("echo")
    pyz = build(directory, mirage)
    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, str(pyz), "--port", str(port), "--ipv4", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == f"echo: listening on TCP port {port}\n"
        payload = bytes(range(256)) * 4096  # 1 MiB
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            received = bytearray()
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            while chunk := conn.recv(65536):
                received += chunk
        assert bytes(received) == payload
        # Several clients at once.
        conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(5)]
        for i, conn in enumerate(conns):
            conn.sendall(f"client {i}".encode())
        for i, conn in enumerate(conns):
            assert conn.recv(100) == f"client {i}".encode()
            conn.close()
    finally:
        child.terminate()
        _, err = child.communicate(timeout=30)
    assert child.returncode == 0
    assert "stopped by SIGTERM" in err


def test_echo_describe_dot_renders(example: Callable[[str], Path], mirage: Mirage) -> None:
    directory = example("echo")
    assert mirage(directory, "configure", "-t", "unix").returncode == 0
    dot = mirage(directory, "describe", "--dot")
    assert dot.returncode == 0
    assert '"socket_stack" -> "job" [label="stack"];' in dot.stdout
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed (apt-get install graphviz)")
    svg = subprocess.run(["dot", "-Tsvg"], input=dot.stdout, capture_output=True, text=True)
    assert svg.returncode == 0, svg.stderr
    assert "<svg" in svg.stdout and "socket_stack" in svg.stdout


def test_kv_serves_a_crunched_store_with_no_directory_beside_it(
    example: Callable[[str], Path], mirage: Mirage, tmp_path: Path
) -> None:
    directory = example("kv")
    pyz = build(directory, mirage, "--kv-ro", "crunch")
    moved = tmp_path / "elsewhere" / "kv.pyz"
    moved.parent.mkdir()
    shutil.copy(pyz, moved)
    shutil.rmtree(directory)
    result = subprocess.run(
        [sys.executable, "-I", str(moved)], capture_output=True, text=True, cwd=moved.parent
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "docs/" in lines
    assert any(line.startswith("index.txt 75 bytes ") for line in lines)
    assert "  | Hello from a crunched store." in lines
    names = zipfile.ZipFile(moved).namelist()
    # The crunch runtime is in, its build step and the other stores are not.
    assert not [n for n in names if "directory" in n or "tar" in n.split("/")[-1]]


def test_kv_on_unix_reads_the_directory_by_default(
    example: Callable[[str], Path], mirage: Mirage
) -> None:
    directory = example("kv")
    build(directory, mirage)
    (directory / "htdocs" / "late.txt").write_text("added after the build\n")
    result = mirage(directory, "run")
    assert result.returncode == 0, result.stderr
    assert "  | added after the build" in result.stdout.splitlines()


def test_static_website_serves_its_crunched_site(
    example: Callable[[str], Path], mirage: Mirage, tmp_path: Path
) -> None:
    import urllib.request

    directory = example("static-website")
    pyz = build(directory, mirage)  # crunch is the example's default
    shutil.rmtree(directory / "htdocs")  # the artifact carries its files
    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, str(pyz), "--port", str(port), "--ipv4", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == f"static-website: serving on http://127.0.0.1:{port}/\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            assert b"<html" in response.read().lower()
    finally:
        child.terminate()
        child.communicate(timeout=30)
    assert child.returncode == 0


def test_echo_tls_serves_tls(
    example: Callable[[str], Path], mirage: Mirage, tmp_path: Path
) -> None:
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    directory = example("echo-tls")
    pyz = build(directory, mirage)
    port = _free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            str(pyz),
            "--port",
            str(port),
            "--ipv4",
            "127.0.0.1",
            "--tls-cert",
            str(cert_path),
            "--tls-key",
            str(key_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == f"echo: listening on TCP port {port}\n"
        context = ssl.create_default_context(cafile=str(cert_path))
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            assert conn.version() == "TLSv1.3"
            conn.sendall(b"secret echo")
            assert conn.recv(100) == b"secret echo"
    finally:
        child.terminate()
        child.communicate(timeout=30)
    assert child.returncode == 0


def test_dns_server_answers_from_its_crunched_zones(
    example: Callable[[str], Path], mirage: Mirage
) -> None:
    from mirage.dns import Name, Rcode, make_query, pull_message, push_message

    directory = example("dns-server")
    assert mirage(directory, "configure", "-t", "unix", "--kv-ro", "crunch").returncode == 0
    assert mirage(directory, "build").returncode == 0
    (pyz,) = (directory / "dist").glob("*.pyz")
    (directory / "zones").rename(directory / "moved")  # the zones are inside the artifact
    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, str(pyz), "--port", str(port), "--ipv4", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "dns-server: loaded example.org. from example.org.zone\n"
        assert child.stdout.readline() == f"dns-server: answering on UDP and TCP port {port}\n"
        query = push_message(make_query(Name.from_text("www.example.org."), 1, ident=7))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(10)
            udp.sendto(query, ("127.0.0.1", port))
            reply = pull_message(udp.recv(4096))
        assert reply.id == 7 and reply.aa and reply.rcode == Rcode.NOERROR
        assert [rr.rdata.to_text() for rr in reply.answer] == ["192.0.2.80"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as tcp:
            tcp.sendall(len(query).to_bytes(2, "big") + query)
            data = b""
            while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
                data += tcp.recv(4096)
        assert pull_message(data[2:]).answer == reply.answer
    finally:
        child.terminate()
        _, err = child.communicate(timeout=30)
    assert child.returncode == 0
    assert "stopped by SIGTERM" in err
