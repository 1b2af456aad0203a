"""DNS over TLS (RFC 7858): our server with kdig +tls and with our DotResolver."""

from __future__ import annotations

import asyncio
import datetime
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ZONE, _stop, free_port, wait_for_dns

pytest.importorskip("mirage.tls", reason="needs mirage-tls (the tls extra)")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mirage.dns import Name, ResolveError, RRType

SERVER_NAME = "dns.example.test"


Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: Issuer | None, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), False
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A root CA and a server certificate for SERVER_NAME: (ca.pem, cert.pem, key.pem)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("mirage-dns test root", ca_key, None, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(SERVER_NAME, key, (ca, ca_key), ca=False)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(pem(ca))
    paths[1].write_bytes(pem(leaf))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return paths


@pytest.fixture(scope="module")
def dot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    """``mirage-dns serve --tls-cert``: (UDP/TCP port, TLS port, CA file)."""
    work = tmp_path_factory.mktemp("dot")
    ca, cert, key = make_pki(work)
    port, tls_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirage.dns", "serve", str(ZONE), "--port", str(port),
         "--tls-cert", str(cert), "--tls-key", str(key), "--tls-port", str(tls_port)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_dns(port, proc)
        yield port, tls_port, ca
    finally:
        _stop(proc)


def kdig(*args: str) -> str:
    path = shutil.which("kdig")
    if path is None:
        pytest.skip("needs kdig (Debian package knot-dnsutils)")
    done = subprocess.run([path, *args], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_kdig_over_tls(dot_server: tuple[int, int, Path]) -> None:
    _port, tls_port, ca = dot_server
    out = kdig("@127.0.0.1", "-p", str(tls_port), "+tls", "www.example.com", "A")
    assert "192.0.2.10" in out and "TLS" in out
    # with the chain checked against our root and the name
    out = kdig("@127.0.0.1", "-p", str(tls_port), f"+tls-ca={ca}",
               f"+tls-hostname={SERVER_NAME}", "www.example.com", "AAAA")  # fmt: skip
    assert "2001:db8::10" in out
    out = kdig("@127.0.0.1", "-p", str(tls_port), f"+tls-ca={ca}", "+tls-hostname=wrong.test",
               "+retry=0", "www.example.com", "A")  # fmt: skip
    assert "192.0.2.10" not in out  # the name does not match the certificate


def test_kdig_pipelines_over_one_tls_connection(dot_server: tuple[int, int, Path]) -> None:
    _port, tls_port, _ca = dot_server
    out = kdig("@127.0.0.1", "-p", str(tls_port), "+tls", "+keepopen", "www.example.com", "A",
               "mail.example.com", "A", "example.com", "MX")  # fmt: skip
    assert "192.0.2.10" in out and "10 mail.example.com." in out


def test_our_dot_resolver(dot_server: tuple[int, int, Path]) -> None:
    from cryptography import x509 as x509_

    from mirage.dns.dot import DotResolver
    from mirage.tls import TlsConfig
    from mirage.unix.stack import SocketStack

    _port, tls_port, ca = dot_server
    roots = tuple(x509_.load_pem_x509_certificates(ca.read_bytes()))

    async def main() -> tuple[list[str], list[str], int, str]:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        good = DotResolver(stack, [("127.0.0.1", tls_port)], TlsConfig(trust_store=roots),
                           server_name=SERVER_NAME)  # fmt: skip
        bad = DotResolver(stack, [("127.0.0.1", tls_port)], TlsConfig(trust_store=roots),
                          server_name="wrong.test", attempts=1)  # fmt: skip
        try:
            www = await good.getaddrinfo("www.example.com")
            answers = await asyncio.gather(*(
                good.query(Name.from_text(f"{label}.example.com."), RRType.A)
                for label in ("mail", "ns1", "ns2", "host3")
            ))  # fmt: skip
            addresses = [rr.rdata.to_text() for a in answers for rr in a.answer]
            try:
                await bad.getaddrinfo("www.example.com")
                failure = ""
            except ResolveError as exc:
                failure = str(exc)
            return www, addresses, good.connections, failure
        finally:
            await good.disconnect()
            await bad.disconnect()
            await stack.disconnect()

    www, addresses, connections, failure = asyncio.run(main())
    assert "192.0.2.10" in www and www[-1] == "2001:db8::10"
    assert len(addresses) == 4
    assert connections == 1  # one TLS connection, reused and pipelined (RFC 7858 3.4)
    assert failure  # the certificate is not for that name: no answer


def test_cli_query_over_tls(dot_server: tuple[int, int, Path]) -> None:
    _port, tls_port, ca = dot_server
    out = subprocess.run(
        [sys.executable, "-m", "mirage.dns", "query", "www.example.com", "A",
         f"@127.0.0.1:{tls_port}", "--tls", "--tls-ca", str(ca), "--tls-name", SERVER_NAME],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "192.0.2.10" in out.stdout


def test_kdig_padding_over_tls(dot_server: tuple[int, int, Path]) -> None:
    port, tls_port, _ca = dot_server
    # kdig pads its queries over TLS; answers come in blocks of 468 octets (RFC 8467)
    for name, rtype in (("www.example.com", "A"), ("example.com", "MX"), ("nope.example.com", "A")):
        out = kdig("@127.0.0.1", "-p", str(tls_port), "+tls", "+padding", name, rtype)
        assert "PADDING" in out, out
        received = [line for line in out.splitlines() if "Received" in line]
        assert received and int(received[0].split()[2]) % 468 == 0, out
    # over plain TCP the same padded query gets no padding (RFC 7830 section 6)
    out = kdig("@127.0.0.1", "-p", str(port), "+tcp", "+padding", "www.example.com", "A")
    assert "192.0.2.10" in out
    assert "PADDING" not in out
