"""What a connection may negotiate and with which credentials."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ._constants import TLS1_2, TLS1_3, CipherSuite, NamedGroup
from ._crypto import GROUPS, SIGNATURE_SCHEMES, PrivateKey
from ._tickets import ReplayCache

__all__ = ["CertifiedKey", "TlsConfig", "DEFAULT_CIPHER_SUITES"]

DEFAULT_CIPHER_SUITES: tuple[int, ...] = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    # TLS 1.2: ECDHE only, AEAD only
    0xC02B,  # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    0xC02F,  # TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    0xC02C,  # TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    0xC030,  # TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    0xCCA9,  # TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    0xCCA8,  # TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
)


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A certificate chain (leaf first) and the leaf's private key."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateKey

    @classmethod
    def from_pem(
        cls, chain_pem: bytes, key_pem: bytes, password: bytes | None = None
    ) -> CertifiedKey:
        chain = tuple(x509.load_pem_x509_certificates(chain_pem))
        key: Any = serialization.load_pem_private_key(key_pem, password)
        return cls(chain, key)

    def names(self) -> tuple[str, ...]:
        """The DNS names and IP addresses of the leaf (subjectAltName)."""
        try:
            san = self.chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return ()
        dns = san.value.get_values_for_type(x509.DNSName)
        ips = [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)]
        return (*dns, *ips)

    def matches(self, server_name: str) -> bool:
        name = server_name.lower().rstrip(".")
        for pattern in self.names():
            p = pattern.lower()
            if p == name:
                return True
            if p.startswith("*.") and "." in name:
                head, _, rest = name.partition(".")
                if head and rest == p[2:]:
                    return True
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Settings shared by many connections.

    - ``certificates``: a server's chains, chosen by the client's server name (the
      first whose subjectAltName matches, else the first that fits the client's
      signature algorithms); a client's certificate for client authentication.
    - ``trust_store``: root certificates that peers' chains must lead to.
      ``verify_peer`` (clients: on by default) checks the server's chain and name;
      on a server, ``request_client_certificate``/``require_client_certificate``
      ask for and check the client's chain.
    - ``alpn_protocols``: in preference order (a server picks its first that the
      client offers; no overlap is ``no_application_protocol``).
    - ``groups``: the key-exchange groups we accept, preferred first;
      ``key_share_groups`` the ones a client sends a share for in its first hello.
    - ``padding``: zero bytes added to each protected record (TLS 1.3).
    - ``ticket_key`` (32 bytes): a server with one issues TLS 1.3 session tickets
      (valid ``ticket_lifetime`` seconds) and resumes sessions from them.
    - ``max_early_data`` and ``replay_cache``: a server with both (and a
      ``ticket_key``) accepts up to that many bytes of 0-RTT data on a resumed
      session, once per ticket and only from a client whose ticket age agrees with
      ours within 10 s. Off by default (0).
    - ``versions``: TLS1_3 (0x0304) and/or TLS1_2 (0x0303); TLS 1.2 uses only the
      ECDHE AEAD suites of ``cipher_suites`` and requires the extended master secret.
    """

    certificates: tuple[CertifiedKey, ...] = ()
    trust_store: tuple[x509.Certificate, ...] = ()
    verify_peer: bool = True
    request_client_certificate: bool = False
    require_client_certificate: bool = False
    alpn_protocols: tuple[bytes, ...] = ()
    cipher_suites: tuple[int, ...] = DEFAULT_CIPHER_SUITES
    groups: tuple[int, ...] = GROUPS
    key_share_groups: tuple[int, ...] = (NamedGroup.x25519,)
    signature_schemes: tuple[int, ...] = SIGNATURE_SCHEMES
    padding: int = 0
    record_size_limit: int | None = None
    middlebox_compatibility: bool = False
    versions: tuple[int, ...] = (TLS1_3, TLS1_2)
    ticket_key: bytes | None = None
    ticket_lifetime: int = 7200
    max_early_data: int = 0
    replay_cache: ReplayCache | None = None
