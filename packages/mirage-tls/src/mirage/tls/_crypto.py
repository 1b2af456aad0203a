"""Cryptographic parameters: cipher suites, key-exchange groups, signature schemes and
the TLS 1.3 key schedule's building blocks.

Every primitive (AEAD, HMAC, HKDF-Expand, ECDH, signatures) comes from the
``cryptography`` package; this module only chooses and combines them as RFC 8446 says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ._constants import CipherSuite, NamedGroup, SignatureScheme
from ._errors import BadRecordMac, DecryptError, IllegalParameter

__all__ = [
    "SUITES",
    "Suite",
    "KeyShare",
    "GROUPS",
    "hkdf_extract",
    "hkdf_expand_label",
    "sign",
    "verify",
    "schemes_for_key",
]

PrivateKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


@dataclass(frozen=True, slots=True)
class Suite:
    """A TLS 1.3 cipher suite: its hash and AEAD, with their lengths."""

    code: CipherSuite
    hash: type[hashes.HashAlgorithm]
    hash_len: int
    key_len: int
    aead: type[AESGCM] | type[ChaCha20Poly1305]

    def new_hash(self) -> hashes.HashAlgorithm:
        return self.hash()


SUITES: dict[int, Suite] = {
    CipherSuite.TLS_AES_128_GCM_SHA256: Suite(
        CipherSuite.TLS_AES_128_GCM_SHA256, hashes.SHA256, 32, 16, AESGCM
    ),
    CipherSuite.TLS_AES_256_GCM_SHA384: Suite(
        CipherSuite.TLS_AES_256_GCM_SHA384, hashes.SHA384, 48, 32, AESGCM
    ),
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: Suite(
        CipherSuite.TLS_CHACHA20_POLY1305_SHA256, hashes.SHA256, 32, 32, ChaCha20Poly1305
    ),
}


# ---------------------------------------------------------------------------
# HKDF (RFC 5869) as used by RFC 8446 section 7.1


def hkdf_extract(algorithm: hashes.HashAlgorithm, salt: bytes, ikm: bytes) -> bytes:
    h = hmac.HMAC(salt or bytes(algorithm.digest_size), algorithm)
    h.update(ikm)
    return h.finalize()


def hkdf_expand_label(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(algorithm, length, info).derive(secret)


def hmac_digest(algorithm: hashes.HashAlgorithm, key: bytes, data: bytes) -> bytes:
    h = hmac.HMAC(key, algorithm)
    h.update(data)
    return h.finalize()


def digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


# ---------------------------------------------------------------------------
# AEAD


class Aead:
    """One direction's record protection: key, static IV and the sequence number."""

    __slots__ = ("_aead", "_iv", "seq")

    def __init__(self, suite: Suite, key: bytes, iv: bytes) -> None:
        self._aead: Any = suite.aead(key)
        self._iv = int.from_bytes(iv, "big")
        self.seq = 0

    def _nonce(self) -> bytes:
        # RFC 8446 5.3: the 64-bit sequence number, left-padded to the IV's length,
        # XORed with the static IV.
        nonce = (self._iv ^ self.seq).to_bytes(12, "big")
        self.seq += 1
        return nonce

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        return bytes(self._aead.encrypt(self._nonce(), plaintext, aad))

    def open(self, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return bytes(self._aead.decrypt(self._nonce(), ciphertext, aad))
        except InvalidTag:
            raise BadRecordMac("a record failed authentication") from None


class Aead12:
    """TLS 1.2 record protection (RFC 5288 for AES-GCM, RFC 7905 for ChaCha20):
    the additional data is seq || type || version || length; AES-GCM carries an
    8-byte explicit nonce (our sequence number) before the ciphertext."""

    __slots__ = ("_aead", "_explicit", "_iv", "seq")

    def __init__(self, aead: Any, iv: bytes, explicit_nonce: bool) -> None:
        self._aead = aead
        self._iv = iv
        self._explicit = explicit_nonce
        self.seq = 0

    def _nonce(self, explicit: bytes) -> bytes:
        if self._explicit:
            return self._iv + explicit
        return (int.from_bytes(self._iv, "big") ^ self.seq).to_bytes(12, "big")

    def seal(self, content_type: int, plaintext: bytes) -> bytes:
        seq = self.seq.to_bytes(8, "big")
        aad = seq + bytes([content_type, 3, 3]) + len(plaintext).to_bytes(2, "big")
        out = bytes(self._aead.encrypt(self._nonce(seq), plaintext, aad))
        self.seq += 1
        return seq + out if self._explicit else out

    def open(self, content_type: int, fragment: bytes) -> bytes:
        if self._explicit:
            explicit, fragment = fragment[:8], fragment[8:]
            if len(explicit) < 8:
                raise BadRecordMac("a record shorter than its explicit nonce")
        else:
            explicit = b""
        length = len(fragment) - 16
        if length < 0:
            raise BadRecordMac("a record shorter than its tag")
        aad = self.seq.to_bytes(8, "big") + bytes([content_type, 3, 3]) + length.to_bytes(2, "big")
        try:
            out = bytes(self._aead.decrypt(self._nonce(explicit), fragment, aad))
        except InvalidTag:
            raise BadRecordMac("a record failed authentication") from None
        self.seq += 1
        return out


# ---------------------------------------------------------------------------
# Key exchange


class KeyShare:
    """Our ephemeral key for one group; ``public`` goes into key_share."""

    def __init__(self, group: int) -> None:
        self.group = group
        self._key: Any
        if group == NamedGroup.x25519:
            self._key = x25519.X25519PrivateKey.generate()
            self.public = self._key.public_key().public_bytes_raw()
        elif group == NamedGroup.x448:
            self._key = x448.X448PrivateKey.generate()
            self.public = self._key.public_key().public_bytes_raw()
        else:
            self._key = ec.generate_private_key(_CURVES[group]())
            self.public = self._key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )

    def exchange(self, peer: bytes) -> bytes:
        """The shared secret; an invalid peer share is ``illegal_parameter``."""
        try:
            if self.group == NamedGroup.x25519:
                if len(peer) != 32:
                    raise ValueError("length")
                return bytes(self._key.exchange(x25519.X25519PublicKey.from_public_bytes(peer)))
            if self.group == NamedGroup.x448:
                if len(peer) != 56:
                    raise ValueError("length")
                return bytes(self._key.exchange(x448.X448PublicKey.from_public_bytes(peer)))
            if not peer or peer[0] != 4:
                raise ValueError("not an uncompressed point")
            public = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[self.group](), peer)
            return bytes(self._key.exchange(ec.ECDH(), public))
        except ValueError:
            raise IllegalParameter("an invalid key share") from None


_CURVES: dict[int, Callable[[], ec.EllipticCurve]] = {
    NamedGroup.secp256r1: ec.SECP256R1,
    NamedGroup.secp384r1: ec.SECP384R1,
    NamedGroup.secp521r1: ec.SECP521R1,
}

GROUPS: tuple[int, ...] = (
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
    NamedGroup.x448,
)


# ---------------------------------------------------------------------------
# Signatures

_HASHES: dict[int, Callable[[], hashes.HashAlgorithm]] = {
    SignatureScheme.rsa_pkcs1_sha256: hashes.SHA256,
    SignatureScheme.rsa_pkcs1_sha384: hashes.SHA384,
    SignatureScheme.rsa_pkcs1_sha512: hashes.SHA512,
    SignatureScheme.ecdsa_secp256r1_sha256: hashes.SHA256,
    SignatureScheme.ecdsa_secp384r1_sha384: hashes.SHA384,
    SignatureScheme.ecdsa_secp521r1_sha512: hashes.SHA512,
    SignatureScheme.rsa_pss_rsae_sha256: hashes.SHA256,
    SignatureScheme.rsa_pss_rsae_sha384: hashes.SHA384,
    SignatureScheme.rsa_pss_rsae_sha512: hashes.SHA512,
    SignatureScheme.rsa_pss_pss_sha256: hashes.SHA256,
    SignatureScheme.rsa_pss_pss_sha384: hashes.SHA384,
    SignatureScheme.rsa_pss_pss_sha512: hashes.SHA512,
}

_ECDSA_CURVE = {
    SignatureScheme.ecdsa_secp256r1_sha256: "secp256r1",
    SignatureScheme.ecdsa_secp384r1_sha384: "secp384r1",
    SignatureScheme.ecdsa_secp521r1_sha512: "secp521r1",
}

PSS_SCHEMES = frozenset(
    {
        SignatureScheme.rsa_pss_rsae_sha256,
        SignatureScheme.rsa_pss_rsae_sha384,
        SignatureScheme.rsa_pss_rsae_sha512,
        SignatureScheme.rsa_pss_pss_sha256,
        SignatureScheme.rsa_pss_pss_sha384,
        SignatureScheme.rsa_pss_pss_sha512,
    }
)
PKCS1_SCHEMES = frozenset(
    {
        SignatureScheme.rsa_pkcs1_sha256,
        SignatureScheme.rsa_pkcs1_sha384,
        SignatureScheme.rsa_pkcs1_sha512,
    }
)

# What we offer and accept, most preferred first.
SIGNATURE_SCHEMES: tuple[int, ...] = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.ed25519,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pss_pss_sha256,
    SignatureScheme.rsa_pss_pss_sha384,
    SignatureScheme.rsa_pss_pss_sha512,
    SignatureScheme.ecdsa_secp521r1_sha512,
    SignatureScheme.ed448,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)


def schemes_for_key(key: object, tls13: bool = True) -> tuple[int, ...]:
    """The schemes a private or public key can sign or verify with, preferred first.

    TLS 1.3 binds an ECDSA scheme to its curve; in TLS 1.2 the scheme names only the
    hash (RFC 5246 7.4.1.4.1), so any ECDSA hash goes with any curve there, the
    curve's own first."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        name = key.curve.name
        own = tuple(s for s, c in _ECDSA_CURVE.items() if c == name)
        if tls13:
            return own
        return own + tuple(s for s in _ECDSA_CURVE if s not in own)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return (SignatureScheme.ed25519,)
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return (SignatureScheme.ed448,)
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        pss = (
            SignatureScheme.rsa_pss_rsae_sha256,
            SignatureScheme.rsa_pss_rsae_sha384,
            SignatureScheme.rsa_pss_rsae_sha512,
        )
        return pss if tls13 else (*pss, *sorted(PKCS1_SCHEMES))
    return ()


def sign(key: PrivateKey, scheme: int, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(data)
    algorithm = _HASHES[scheme]()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    if scheme in PSS_SCHEMES:
        pad: padding.AsymmetricPadding = padding.PSS(padding.MGF1(algorithm), algorithm.digest_size)
    else:
        pad = padding.PKCS1v15()
    return key.sign(data, pad, algorithm)


def verify(
    public_key: object, scheme: int, signature: bytes, data: bytes, tls13: bool = True
) -> None:
    """Raises ``illegal_parameter`` for a scheme that does not fit the key and
    ``decrypt_error`` for a signature that does not verify."""
    if scheme not in schemes_for_key(public_key, tls13) and not (
        scheme in PSS_SCHEMES and isinstance(public_key, rsa.RSAPublicKey)
    ):
        raise IllegalParameter(f"signature scheme {scheme:#06x} does not fit the certificate's key")
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
            return
        algorithm = _HASHES[scheme]()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            if scheme in PSS_SCHEMES:
                public_key.verify(
                    signature,
                    data,
                    padding.PSS(padding.MGF1(algorithm), algorithm.digest_size),
                    algorithm,
                )
            else:
                public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            raise IllegalParameter("a certificate key we cannot verify with")
    except InvalidSignature:
        raise DecryptError("the handshake signature does not verify") from None
    except ValueError:
        raise DecryptError("a malformed handshake signature") from None
