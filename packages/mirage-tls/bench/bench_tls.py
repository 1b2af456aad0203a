"""mirage-tls beside Python's ssl module (OpenSSL), in memory, in the same run.

- full TLS 1.3 handshakes per second (X25519, ECDSA P-256 certificate, AES-128-GCM):
  client and server both ours vs both OpenSSL; and our server vs OpenSSL's server
  behind the same OpenSSL client;
- bulk throughput of an established connection, 16 KiB records, AES-128-GCM, one
  direction (seal + open);
- memory per idle established connection pair (resident set growth).

Usage: python bench_tls.py [--seconds S]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirage.tls import (
    CertifiedKey,
    CipherSuite,
    NamedGroup,
    TlsConfig,
    TlsConnection,
)

SUITE = CipherSuite.TLS_AES_128_GCM_SHA256
RECORD = 16 * 1024


def make_credentials(tmp: Path) -> tuple[CertifiedKey, x509.Certificate, Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench root")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain_path, key_path, root_path = tmp / "chain.pem", tmp / "key.pem", tmp / "root.pem"
    chain_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    root_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return CertifiedKey((leaf,), key), ca, chain_path, key_path, root_path


class Setup:
    def __init__(self, tmp: Path) -> None:
        creds, root, chain, key, rootfile = make_credentials(tmp)
        self.server_config = TlsConfig(
            certificates=(creds,), cipher_suites=(SUITE,), groups=(NamedGroup.x25519,)
        )
        self.client_config = TlsConfig(
            trust_store=(root,), cipher_suites=(SUITE,), groups=(NamedGroup.x25519,)
        )
        self.ssl_server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_server.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ssl_server.load_cert_chain(chain, key)
        self.ssl_server.num_tickets = 0  # we send no tickets either
        self.ssl_client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ssl_client.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ssl_client.load_verify_locations(rootfile)


# -- one handshake of each kind, returning the connected pair


def ours_pair(s: Setup) -> tuple[TlsConnection, TlsConnection]:
    client = TlsConnection(s.client_config, server_name="localhost")
    server = TlsConnection(s.server_config, server_side=True)
    client.start()
    now = time.time()
    server.receive_data(client.data_to_send(), now)
    client.receive_data(server.data_to_send(), now)
    server.receive_data(client.data_to_send(), now)
    return client, server


def _ssl_drive(client: Any, c_in: Any, c_out: Any, server: Any, *bios: Any) -> None:
    s_in, s_out = bios
    for _ in range(6):
        for obj in (client, server):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())


def ssl_pair(s: Setup) -> tuple[Any, Any, Any, Any, Any, Any]:
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = s.ssl_client.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = s.ssl_server.wrap_bio(s_in, s_out, server_side=True)
    _ssl_drive(client, c_in, c_out, server, s_in, s_out)
    return client, c_in, c_out, server, s_in, s_out


def ssl_client_our_server(s: Setup) -> None:
    c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = s.ssl_client.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = TlsConnection(s.server_config, server_side=True)
    now = time.time()
    for _ in range(4):
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        server.receive_data(c_out.read(), now)
        c_in.write(server.data_to_send())
    server.receive_data(c_out.read(), now)
    assert server.handshake_complete


def ssl_client_ssl_server(s: Setup) -> None:
    ssl_pair(s)


def rate(fn: Any, seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def bulk_ours(s: Setup, total: int) -> float:
    client, server = ours_pair(s)
    chunk = b"\x5a" * RECORD
    now = time.time()
    start = time.perf_counter()
    for _ in range(total // RECORD):
        client.send(chunk)
        server.receive_data(client.data_to_send(), now)
        while server.next_event() is not None:
            pass
    return total / (time.perf_counter() - start) / 1e6


def bulk_ssl(s: Setup, total: int) -> float:
    client, _c_in, c_out, server, s_in, _ = ssl_pair(s)
    chunk = b"\x5a" * RECORD
    start = time.perf_counter()
    for _ in range(total // RECORD):
        client.write(chunk)
        s_in.write(c_out.read())
        got = 0
        while got < RECORD:
            got += len(server.read(RECORD))
    return total / (time.perf_counter() - start) / 1e6


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def memory_per_pair(make: Any, n: int) -> float:
    gc.collect()
    before = rss_kib()
    keep = [make() for _ in range(n)]
    gc.collect()
    after = rss_kib()
    del keep
    return (after - before) / n


def best_of(rounds: int, *fns: Any) -> list[float]:
    """Each measurement ``rounds`` times, interleaved (the machine may be shared);
    the best of each."""
    best = [0.0] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = max(best[i], fn())
    return best


def show(what: str, ours: float, theirs: float) -> None:
    ratio = ours / theirs
    print(f"{what:34} mirage-tls {ours:8.1f}   ssl (OpenSSL) {theirs:8.1f}   ratio {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement round")
    parser.add_argument("--megabytes", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sec, rounds = args.seconds, args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        s = Setup(Path(tmp))
        print("TLS 1.3, X25519, ECDSA P-256, TLS_AES_128_GCM_SHA256, in memory, one process")
        ours, theirs = best_of(
            rounds, lambda: rate(lambda: ours_pair(s), sec), lambda: rate(lambda: ssl_pair(s), sec)
        )
        show("handshakes/s, client and server:", ours, theirs)
        ours, theirs = best_of(
            rounds,
            lambda: rate(lambda: ssl_client_our_server(s), sec),
            lambda: rate(lambda: ssl_client_ssl_server(s), sec),
        )
        show("handshakes/s, server (ssl client):", ours, theirs)
        total = args.megabytes << 20
        ours, theirs = best_of(rounds, lambda: bulk_ours(s, total), lambda: bulk_ssl(s, total))
        show("bulk MB/s, 16 KiB records:", ours, theirs)
        n = 200
        ours = memory_per_pair(lambda: ours_pair(s), n)
        theirs = memory_per_pair(lambda: ssl_pair(s), n)
        show("KiB per idle connection pair:", ours, theirs)


if __name__ == "__main__":
    main()
