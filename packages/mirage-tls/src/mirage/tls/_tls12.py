"""TLS 1.2 (RFC 5246) pieces: ECDHE suites, the PRF, key derivation with the
extended master secret (RFC 7627) and the 1.2-only handshake messages.

Only forward-secret AEAD suites are offered: ECDHE with ECDSA or RSA signatures and
AES-GCM (RFC 5289) or ChaCha20-Poly1305 (RFC 7905). The PRF is HMAC (from
``cryptography``) iterated as RFC 5246 section 5 says.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ._buffer import Reader, Writer
from ._crypto import Aead12, hmac_digest
from ._errors import DecodeError, IllegalParameter

__all__ = [
    "SUITES12",
    "Suite12",
    "ServerKeyExchange",
    "prf",
    "master_secret",
    "key_block_aeads",
]


@dataclass(frozen=True, slots=True)
class Suite12:
    """A TLS 1.2 ECDHE cipher suite: its signature type, PRF hash and AEAD."""

    code: int
    name: str
    signature: str  # "ecdsa" or "rsa"
    hash: type[hashes.HashAlgorithm]
    key_len: int
    chacha: bool

    def new_hash(self) -> hashes.HashAlgorithm:
        return self.hash()


SUITES12: dict[int, Suite12] = {
    s.code: s
    for s in (
        Suite12(
            0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ecdsa", hashes.SHA256, 16, False
        ),
        Suite12(
            0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ecdsa", hashes.SHA384, 32, False
        ),
        Suite12(
            0xCCA9,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "ecdsa",
            hashes.SHA256,
            32,
            True,
        ),
        Suite12(0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "rsa", hashes.SHA256, 16, False),
        Suite12(0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "rsa", hashes.SHA384, 32, False),
        Suite12(
            0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "rsa", hashes.SHA256, 32, True
        ),
    )
}


def prf(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, seed: bytes, length: int
) -> bytes:
    """P_hash(secret, label + seed) of RFC 5246 section 5, ``length`` bytes."""
    seed = label + seed
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac_digest(algorithm, secret, a)
        out += hmac_digest(algorithm, secret, a + seed)
    return bytes(out[:length])


def master_secret(suite: Suite12, premaster: bytes, session_hash: bytes) -> bytes:
    """The extended master secret (RFC 7627 section 4)."""
    return prf(suite.new_hash(), premaster, b"extended master secret", session_hash, 48)


def key_block_aeads(
    suite: Suite12, master: bytes, client_random: bytes, server_random: bytes
) -> tuple[Aead12, Aead12]:
    """(client write, server write) record protection."""
    iv_len = 12 if suite.chacha else 4
    block = prf(
        suite.new_hash(),
        master,
        b"key expansion",
        server_random + client_random,
        2 * suite.key_len + 2 * iv_len,
    )
    k = suite.key_len
    ckey, skey = block[:k], block[k : 2 * k]
    civ, siv = block[2 * k : 2 * k + iv_len], block[2 * k + iv_len :]
    cls = ChaCha20Poly1305 if suite.chacha else AESGCM
    return (
        Aead12(cls(ckey), civ, not suite.chacha),
        Aead12(cls(skey), siv, not suite.chacha),
    )


def finished_data(suite: Suite12, master: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    return prf(suite.new_hash(), master, label, transcript_hash, 12)


# ---------------------------------------------------------------------------
# Messages


def pull_certificate12(body: bytes) -> tuple[bytes, ...]:
    r = Reader(body)
    certs = r.vector(3, lambda x: x.opaque(3, 1))
    r.finish()
    return tuple(certs)


def push_certificate12(ders: tuple[bytes, ...]) -> bytes:
    w = Writer()
    with w.block(3):
        for d in ders:
            w.opaque(3, d)
    return w.getvalue()


@dataclass(frozen=True, slots=True)
class ServerKeyExchange:
    """A TLS 1.2 ServerKeyExchange message: the ECDHE group and public key, and their signature."""

    group: int
    public: bytes
    scheme: int
    signature: bytes

    def params(self) -> bytes:
        return b"\x03" + self.group.to_bytes(2, "big") + bytes([len(self.public)]) + self.public


def pull_server_key_exchange(body: bytes) -> ServerKeyExchange:
    r = Reader(body)
    if r.u8() != 3:
        raise IllegalParameter("only named curves are supported")
    group = r.u16()
    public = r.opaque(1, 1)
    scheme = r.u16()
    signature = r.opaque(2, 1)
    r.finish()
    return ServerKeyExchange(group, public, scheme, signature)


def push_server_key_exchange(m: ServerKeyExchange) -> bytes:
    w = Writer()
    w.raw(m.params())
    w.u16(m.scheme)
    w.opaque(2, m.signature)
    return w.getvalue()


def pull_client_key_exchange(body: bytes) -> bytes:
    r = Reader(body)
    public = r.opaque(1, 1)
    r.finish()
    return public


def push_client_key_exchange(public: bytes) -> bytes:
    return bytes([len(public)]) + public


@dataclass(frozen=True, slots=True)
class CertificateRequest12:
    """A TLS 1.2 CertificateRequest message."""

    certificate_types: bytes
    signature_algorithms: tuple[int, ...]
    authorities: tuple[bytes, ...] = ()


def pull_certificate_request12(body: bytes) -> CertificateRequest12:
    r = Reader(body)
    types = r.opaque(1, 1)
    algs = tuple(r.vector(2, Reader.u16, 2))
    cas = tuple(r.vector(2, lambda x: x.opaque(2, 1)))
    r.finish()
    return CertificateRequest12(types, algs, cas)


def push_certificate_request12(m: CertificateRequest12) -> bytes:
    w = Writer()
    w.opaque(1, m.certificate_types)
    with w.block(2):
        for a in m.signature_algorithms:
            w.u16(a)
    with w.block(2):
        for ca in m.authorities:
            w.opaque(2, ca)
    return w.getvalue()


def pull_digitally_signed(body: bytes) -> tuple[int, bytes]:
    r = Reader(body)
    scheme = r.u16()
    sig = r.opaque(2, 1)
    r.finish()
    return scheme, sig


def push_digitally_signed(scheme: int, signature: bytes) -> bytes:
    return scheme.to_bytes(2, "big") + len(signature).to_bytes(2, "big") + signature


def pull_empty(body: bytes) -> None:
    if body:
        raise DecodeError("a message that must be empty is not")


def pull_finished12(body: bytes) -> bytes:
    if len(body) != 12:
        raise DecodeError("a TLS 1.2 Finished is 12 bytes")
    return body


def pull_new_session_ticket12(body: bytes) -> tuple[int, bytes]:
    """(lifetime hint, ticket) of a TLS 1.2 NewSessionTicket (RFC 5077)."""
    r = Reader(body)
    lifetime = r.uint(4)
    ticket = r.opaque(2)
    r.finish()
    return lifetime, ticket


def push_new_session_ticket12(lifetime: int, ticket: bytes) -> bytes:
    return lifetime.to_bytes(4, "big") + len(ticket).to_bytes(2, "big") + ticket
