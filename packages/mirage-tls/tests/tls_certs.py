"""Test PKI made with cryptography: a root CA, an intermediate, leaves of each key type."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mirage.tls import CertifiedKey

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
NOW_TS = NOW.timestamp()


def new_key(kind: str) -> Any:
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ecdsa-p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    raise ValueError(kind)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign_hash(key: Any) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def make_ca(
    cn: str = "mirage test root",
    key: Any = None,
    issuer: tuple[x509.Certificate, Any] | None = None,
) -> tuple[x509.Certificate, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=30))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, _sign_hash(issuer_key)), key


def make_leaf(
    issuer: tuple[x509.Certificate, Any],
    names: tuple[str, ...] = ("localhost",),
    kind: str = "ecdsa-p256",
    client: bool = False,
    days: int = 365,
    not_before: datetime.datetime | None = None,
) -> tuple[x509.Certificate, Any]:
    key = new_key(kind)
    issuer_cert, issuer_key = issuer
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    start = not_before or NOW - datetime.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0] if names else "client"))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, _sign_hash(issuer_key)), key


@dataclass
class Pki:
    root: x509.Certificate
    root_key: Any
    intermediate: x509.Certificate
    intermediate_key: Any

    def leaf(
        self,
        names: tuple[str, ...] = ("localhost",),
        kind: str = "ecdsa-p256",
        client: bool = False,
        **kw: Any,
    ) -> CertifiedKey:
        cert, key = make_leaf((self.intermediate, self.intermediate_key), names, kind, client, **kw)
        return CertifiedKey((cert, self.intermediate), key)


def make_pki() -> Pki:
    root, root_key = make_ca()
    inter, inter_key = make_ca("mirage test intermediate", issuer=(root, root_key))
    return Pki(root, root_key, inter, inter_key)


def pem_chain(ck: CertifiedKey) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in ck.chain)


def pem_key(ck: CertifiedKey) -> bytes:
    return ck.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
