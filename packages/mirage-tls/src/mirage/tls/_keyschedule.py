"""The TLS 1.3 key schedule (RFC 8446 section 7) and the handshake transcript.

Secrets move forward only: early secret (from the PSK or zeros) -> handshake secret
(with the (EC)DHE shared secret) -> master secret. Each stage derives its traffic
secrets from the transcript hash at the point RFC 8446 names.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

from ._constants import HandshakeType
from ._crypto import Aead, Suite, digest, hkdf_expand_label, hkdf_extract, hmac_digest

__all__ = ["KeySchedule", "Transcript", "traffic_aead"]


class Transcript:
    """The running hash of handshake messages; buffers until the hash is known."""

    __slots__ = ("_hash", "_pending", "messages")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._hash: hashes.Hash | None = None
        self.messages = bytearray()  # TLS 1.2 signs the messages themselves

    def start(self, algorithm: hashes.HashAlgorithm) -> None:
        self._hash = hashes.Hash(algorithm)
        for raw in self._pending:
            self._hash.update(raw)
        self._pending = []

    def add(self, raw: bytes) -> None:
        self.messages += raw
        if self._hash is None:
            self._pending.append(raw)
        else:
            self._hash.update(raw)

    def digest(self) -> bytes:
        assert self._hash is not None
        return self._hash.copy().finalize()

    def digest_with(self, algorithm: hashes.HashAlgorithm, extra: bytes) -> bytes:
        """The hash of what was added so far and ``extra``, without adding it."""
        if self._hash is None:
            h = hashes.Hash(algorithm)
            for raw in self._pending:
                h.update(raw)
        else:
            h = self._hash.copy()
        h.update(extra)
        return h.finalize()

    def restart_for_retry(self, algorithm: hashes.HashAlgorithm) -> None:
        """Replace ClientHello1 by its message_hash (RFC 8446 4.4.1)."""
        self.start(algorithm)
        ch1 = self.digest()
        self._hash = hashes.Hash(algorithm)
        self._hash.update(bytes([HandshakeType.message_hash, 0, 0, len(ch1)]) + ch1)


def traffic_aead(suite: Suite, secret: bytes) -> Aead:
    alg = suite.new_hash()
    key = hkdf_expand_label(alg, secret, b"key", b"", suite.key_len)
    iv = hkdf_expand_label(alg, secret, b"iv", b"", 12)
    return Aead(suite, key, iv)


def resumption_psk(suite: Suite, resumption_master: bytes, nonce: bytes) -> bytes:
    return hkdf_expand_label(
        suite.new_hash(), resumption_master, b"resumption", nonce, suite.hash_len
    )


def next_traffic_secret(suite: Suite, secret: bytes) -> bytes:
    return hkdf_expand_label(suite.new_hash(), secret, b"traffic upd", b"", suite.hash_len)


def finished_verify_data(suite: Suite, base_key: bytes, transcript_hash: bytes) -> bytes:
    alg = suite.new_hash()
    key = hkdf_expand_label(alg, base_key, b"finished", b"", suite.hash_len)
    return hmac_digest(alg, key, transcript_hash)


class KeySchedule:
    __slots__ = ("_alg", "_empty_hash", "_secret", "suite")

    def __init__(self, suite: Suite, psk: bytes | None = None) -> None:
        self.suite = suite
        self._alg = suite.new_hash()
        self._empty_hash = digest(self._alg, b"")
        self._secret = hkdf_extract(self._alg, b"", psk or bytes(suite.hash_len))

    def derive_secret(self, label: bytes, transcript_hash: bytes) -> bytes:
        return hkdf_expand_label(
            self._alg, self._secret, label, transcript_hash, self.suite.hash_len
        )

    def binder(self, transcript_hash: bytes) -> bytes:
        """The PSK binder over the truncated ClientHello (RFC 8446 4.2.11.2)."""
        binder_key = self.derive_secret(b"res binder", self._empty_hash)
        return finished_verify_data(self.suite, binder_key, transcript_hash)

    def _advance(self, ikm: bytes) -> None:
        derived = self.derive_secret(b"derived", self._empty_hash)
        self._secret = hkdf_extract(self._alg, derived, ikm)

    def enter_handshake(self, shared_secret: bytes) -> None:
        self._advance(shared_secret)

    def enter_master(self) -> None:
        self._advance(bytes(self.suite.hash_len))
