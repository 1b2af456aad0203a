"""TLS 1.2 handshakes of :class:`~mirage.tls.TlsConnection` (RFC 5246, RFC 7627,
RFC 5746, RFC 8422).

Full handshakes only, ECDHE with ECDSA, Ed25519 or RSA signatures and AEAD suites.
The extended master secret is required of the peer; secure renegotiation is
signalled but renegotiation is refused (a ``no_renegotiation`` warning). States:

- client: WAIT_CERT12 -> WAIT_SKE12 -> WAIT_SHD12 (CertificateRequest may come
  first) -> (we send [Certificate], ClientKeyExchange, [CertificateVerify],
  ChangeCipherSpec, Finished) WAIT_CCS12 -> WAIT_FINISHED12 -> CONNECTED;
- server: (ClientHello answered with ServerHello, Certificate, ServerKeyExchange,
  [CertificateRequest], ServerHelloDone) WAIT_CLIENT_CERT12 or WAIT_CKE12 ->
  [WAIT_CLIENT_CV12] -> WAIT_CLIENT_CCS12 -> WAIT_CLIENT_FINISHED12 -> (we send
  ChangeCipherSpec, Finished) CONNECTED.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from . import _messages as m
from . import _tls12 as t
from ._constants import (
    DOWNGRADE_TLS12,
    TLS1_2,
    TLS1_3,
    AlertDescription,
    AlertLevel,
    ContentType,
    HandshakeType,
)
from ._crypto import KeyShare, schemes_for_key, sign, verify
from ._errors import (
    CertificateRequired,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
    MissingExtension,
    NoApplicationProtocol,
    UnsupportedExtension,
)
from ._events import SessionTicket
from ._tickets import Session, TicketContents, open_ticket, seal_ticket
from ._x509 import load_chain, validate_chain

if TYPE_CHECKING:
    from ._config import CertifiedKey
    from ._connection import State, TlsConnection

__all__ = ["server_hello12"]

H = HandshakeType
SCSV = 0x00FF


def _signature_kind(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ecdsa"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ecdsa"  # RFC 8422: EdDSA certificates go with the ECDSA suites
    return "none"


def suites12(codes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(c for c in codes if c in t.SUITES12)


# ---------------------------------------------------------------------------
# client


def client_on_server_hello12(conn: TlsConnection, sh: m.ServerHello) -> State | None:
    from ._connection import State

    hello = conn._client_hello
    assert hello is not None
    if conn._hello_retry:
        raise IllegalParameter("a TLS 1.2 ServerHello after a HelloRetryRequest")
    if TLS1_3 in (hello.supported_versions or ()) and sh.random[-8:] == DOWNGRADE_TLS12:
        raise IllegalParameter("the TLS 1.3 downgrade sentinel in a TLS 1.2 ServerHello")
    if sh.cipher_suite not in hello.cipher_suites or sh.cipher_suite not in t.SUITES12:
        raise IllegalParameter("the server chose a cipher suite we did not offer")
    if sh.legacy_compression_method != 0:
        raise IllegalParameter("compression is not allowed")
    if sh.key_share is not None or sh.pre_shared_key is not None or sh.cookie is not None:
        raise UnsupportedExtension("a TLS 1.3 extension in a TLS 1.2 ServerHello")
    if sh.session_ticket and hello.session_ticket is None:
        raise UnsupportedExtension("session_ticket acknowledged though not offered")
    if not sh.extended_master_secret:
        raise HandshakeFailure("the server does not use the extended master secret")
    if sh.renegotiation_info is not None and sh.renegotiation_info != b"":
        raise HandshakeFailure("a non-empty renegotiation_info in the first handshake")
    if sh.alpn_protocol is not None and sh.alpn_protocol not in (hello.alpn_protocols or ()):
        raise IllegalParameter("the server chose an ALPN protocol we did not offer")
    if sh.ec_point_formats is not None and 0 not in sh.ec_point_formats:
        raise IllegalParameter("the server cannot read uncompressed points")
    suite = t.SUITES12[sh.cipher_suite]
    conn._version = TLS1_2
    conn._suite12 = suite
    conn._alpn = sh.alpn_protocol
    conn._server_random = sh.random
    conn._transcript.start(suite.new_hash())
    conn._add_transcript()
    session = conn._session
    if (
        session is not None
        and session.version == TLS1_2
        and hello.legacy_session_id
        and sh.legacy_session_id_echo == hello.legacy_session_id
    ):
        # RFC 5077 3.4: the echoed session id means the server accepted our ticket
        if sh.cipher_suite != session.cipher_suite:
            raise IllegalParameter("a resumed session with another cipher suite")
        conn._abbreviated = True
        conn._resumed = True
        conn._master = session.psk
        conn._peer_chain = session.peer_certificates
        client_write, server_write = t.key_block_aeads(suite, conn._master, hello.random, sh.random)
        conn._pending_read = server_write
        conn._pending_write = client_write
        return State.WAIT_CCS12
    return State.WAIT_CERT12


def client_on_certificate12(conn: TlsConnection, ders: tuple[bytes, ...]) -> State | None:
    if not ders:
        from ._errors import DecodeError

        raise DecodeError("the server sent no certificate")
    chain = load_chain(list(ders))
    conn._peer_chain = tuple(chain)
    conn._peer_public_key = chain[0].public_key()
    conn._add_transcript()
    assert conn._suite12 is not None
    if _signature_kind(conn._peer_public_key) != conn._suite12.signature:
        raise IllegalParameter("the certificate's key does not fit the cipher suite")
    if conn.config.verify_peer:
        validate_chain(chain, conn.config.trust_store, conn._now, conn.server_name)
    return None


def client_on_server_key_exchange(conn: TlsConnection, ske: t.ServerKeyExchange) -> State | None:
    hello = conn._client_hello
    assert hello is not None
    if ske.group not in conn.config.groups:
        raise IllegalParameter("the server chose a group we did not offer")
    if ske.scheme not in conn.config.signature_schemes:
        raise IllegalParameter("a ServerKeyExchange signed with a scheme we did not offer")
    signed = hello.random + conn._server_random + ske.params()
    verify(conn._peer_public_key, ske.scheme, ske.signature, signed, tls13=False)
    conn._peer_scheme = ske.scheme
    share = KeyShare(ske.group)
    conn._premaster = share.exchange(ske.public)
    conn._group = ske.group
    conn._key_shares = {ske.group: share}
    conn._add_transcript()
    return None


def client_on_certificate_request12(
    conn: TlsConnection, cr: t.CertificateRequest12
) -> State | None:
    conn._certificate_request12 = cr
    conn._add_transcript()
    return None


def client_on_server_hello_done(conn: TlsConnection, _: None) -> State | None:
    suite = conn._suite12
    hello = conn._client_hello
    assert suite is not None and hello is not None
    conn._add_transcript()
    cr = conn._certificate_request12
    creds: CertifiedKey | None = None
    if cr is not None:
        creds = conn._choose_credentials(None, cr.signature_algorithms, required=False, tls13=False)
        ders = tuple(c.public_bytes(Encoding.DER) for c in creds.chain) if creds else ()
        conn._send_handshake(H.certificate, t.push_certificate12(ders))
    share = conn._key_shares[conn._group or 0]
    conn._send_handshake(H.client_key_exchange, t.push_client_key_exchange(share.public))
    conn._key_shares = {}
    conn._master = t.master_secret(suite, conn._premaster, conn._transcript.digest())
    if creds is not None and cr is not None:
        scheme = next(
            s
            for s in schemes_for_key(creds.key, tls13=False)
            if s in cr.signature_algorithms and s in conn.config.signature_schemes
        )
        signature = sign(creds.key, scheme, bytes(conn._transcript.messages))
        conn._send_handshake(H.certificate_verify, t.push_digitally_signed(scheme, signature))
    client_write, server_write = t.key_block_aeads(
        suite, conn._master, hello.random, conn._server_random
    )
    conn._pending_read = server_write
    conn._out += conn._records.write(ContentType.change_cipher_spec, b"\x01")
    conn._records.set_write_key(client_write)
    verify_data = t.finished_data(
        suite, conn._master, b"client finished", conn._transcript.digest()
    )
    conn._send_handshake(H.finished, verify_data)
    from ._connection import State

    return State.WAIT_CCS12


def client_on_new_session_ticket12(conn: TlsConnection, nst: tuple[int, bytes]) -> State | None:
    conn._ticket12_lifetime, ticket = nst
    conn._ticket12 = ticket or None
    conn._add_transcript()
    return None


def client_on_finished12(conn: TlsConnection, verify_data: bytes) -> State | None:
    suite = conn._suite12
    assert suite is not None
    expected = t.finished_data(suite, conn._master, b"server finished", conn._transcript.digest())
    if not _equal(verify_data, expected):
        raise DecryptError("the server's Finished does not verify")
    conn._add_transcript()
    if conn._abbreviated:
        conn._out += conn._records.write(ContentType.change_cipher_spec, b"\x01")
        conn._records.set_write_key(conn._pending_write)
        mine = t.finished_data(suite, conn._master, b"client finished", conn._transcript.digest())
        conn._send_handshake(H.finished, mine)
    conn._complete()
    if conn._ticket12 is not None:
        conn._events.append(
            SessionTicket(
                Session(
                    server_name=conn.server_name,
                    cipher_suite=suite.code,
                    psk=conn._master,
                    ticket=conn._ticket12,
                    age_add=0,
                    lifetime=min(conn._ticket12_lifetime or 7200, 604800),
                    received_at=conn._now,
                    alpn_protocol=conn._alpn,
                    peer_certificates=conn._peer_chain,
                    version=TLS1_2,
                )
            )
        )
    return None


def on_change_cipher_spec12(conn: TlsConnection) -> None:
    """The peer's ChangeCipherSpec: its next records use the new keys."""
    from ._connection import State
    from ._errors import UnexpectedMessage

    waiting = {
        State.WAIT_CCS12: State.WAIT_FINISHED12,
        State.WAIT_CLIENT_CCS12: State.WAIT_CLIENT_FINISHED12,
    }
    if conn.state not in waiting:
        raise UnexpectedMessage("a ChangeCipherSpec out of place")
    conn._check_key_change_boundary()
    conn._records.set_read_key(conn._pending_read)
    conn.state = waiting[conn.state]


def refuse_renegotiation(conn: TlsConnection, _: object) -> State | None:
    """A HelloRequest (client) or a new ClientHello (server) after the handshake."""
    from ._errors import UnexpectedMessage

    if conn._version != TLS1_2:
        raise UnexpectedMessage("a hello after the TLS 1.3 handshake")
    conn._out += conn._records.write(
        ContentType.alert, bytes([AlertLevel.warning, AlertDescription.no_renegotiation])
    )
    return None


# ---------------------------------------------------------------------------
# server


def server_hello12(conn: TlsConnection, ch: m.ClientHello) -> State:
    from ._connection import State

    cfg = conn.config
    if conn.state is State.WAIT_CH2:
        raise IllegalParameter("TLS 1.2 offered only after a HelloRetryRequest")
    if SCSV not in ch.cipher_suites and ch.renegotiation_info is None:
        raise HandshakeFailure("the client does not signal secure renegotiation")
    if ch.renegotiation_info:
        raise HandshakeFailure("a non-empty renegotiation_info in the first handshake")
    if not ch.extended_master_secret:
        raise HandshakeFailure("the client does not offer the extended master secret")
    if 0 not in ch.legacy_compression_methods:
        raise IllegalParameter("the client does not offer the null compression method")
    if ch.ec_point_formats is not None and 0 not in ch.ec_point_formats:
        raise IllegalParameter("the client cannot read uncompressed points")
    if ch.signature_algorithms is None:
        raise MissingExtension("the ClientHello has no signature_algorithms")
    offered = [c for c in suites12(tuple(cfg.cipher_suites)) if c in ch.cipher_suites]
    if not offered:
        raise HandshakeFailure("no TLS 1.2 cipher suite in common")
    kinds = {t.SUITES12[c].signature for c in offered}
    usable = [
        c
        for c in cfg.certificates
        if _signature_kind(c.key) in kinds
        and any(
            s in ch.signature_algorithms and s in cfg.signature_schemes
            for s in schemes_for_key(c.key, tls13=False)
        )
    ]
    creds = next((c for c in usable if ch.server_name and c.matches(ch.server_name)), None)
    creds = creds or (usable[0] if usable else None)
    if creds is None:
        raise HandshakeFailure("no certificate fits the client's suites and signature algorithms")
    suite = t.SUITES12[
        next(c for c in offered if t.SUITES12[c].signature == _signature_kind(creds.key))
    ]
    groups = ch.supported_groups or ()
    group = next((g for g in cfg.groups if g in groups), None)
    if group is None:
        raise HandshakeFailure("no key-exchange group in common")
    if ch.alpn_protocols is not None and cfg.alpn_protocols:
        conn._alpn = next((p for p in cfg.alpn_protocols if p in ch.alpn_protocols), None)
        if conn._alpn is None:
            raise NoApplicationProtocol("no ALPN protocol in common")
    conn._version = TLS1_2
    conn.server_name = ch.server_name
    random = os.urandom(32)
    if TLS1_3 in cfg.versions:
        random = random[:24] + DOWNGRADE_TLS12
    conn._server_random = random
    resumed = _resumable(conn, ch, offered)
    if resumed is not None:
        return _resume12(conn, ch, resumed)
    conn._suite12 = suite
    conn._group = group
    conn._credentials = creds
    conn._transcript.start(suite.new_hash())
    conn._add_transcript()
    conn._ticket12 = b"" if cfg.ticket_key is not None and ch.session_ticket is not None else None
    sh = m.ServerHello(
        random=random,
        cipher_suite=suite.code,
        alpn_protocol=conn._alpn,
        extended_master_secret=True,
        renegotiation_info=b"",
        ec_point_formats=b"\x00" if ch.ec_point_formats is not None else None,
        session_ticket=conn._ticket12 is not None,
    )
    conn._send_handshake(H.server_hello, m.push_server_hello(sh))
    ders = tuple(c.public_bytes(Encoding.DER) for c in creds.chain)
    conn._send_handshake(H.certificate, t.push_certificate12(ders))
    share = KeyShare(group)
    conn._key_shares = {group: share}
    scheme = next(
        s
        for s in schemes_for_key(creds.key, tls13=False)
        if s in ch.signature_algorithms and s in cfg.signature_schemes
    )
    unsigned = t.ServerKeyExchange(group, share.public, scheme, b"")
    signature = sign(creds.key, scheme, ch.random + random + unsigned.params())
    ske = t.ServerKeyExchange(group, share.public, scheme, signature)
    conn._send_handshake(H.server_key_exchange, t.push_server_key_exchange(ske))
    requested = cfg.request_client_certificate or cfg.require_client_certificate
    if requested:
        cr = t.CertificateRequest12(
            b"\x01\x40", tuple(cfg.signature_schemes)
        )  # rsa_sign, ecdsa_sign
        conn._send_handshake(H.certificate_request, t.push_certificate_request12(cr))
    conn._send_handshake(H.server_hello_done, b"")
    return State.WAIT_CLIENT_CERT12 if requested else State.WAIT_CKE12


def _resumable(conn: TlsConnection, ch: m.ClientHello, offered: list[int]) -> TicketContents | None:
    key = conn.config.ticket_key
    # A client may present its ticket with an empty session id (RFC 5077 3.4, as
    # tlslite-ng does); it then tells resumption by our ChangeCipherSpec.
    if key is None or not ch.session_ticket:
        return None
    contents = open_ticket(key, ch.session_ticket)
    if contents is None or contents.version != TLS1_2 or contents.cipher_suite not in offered:
        return None
    if not 0 <= conn._now - contents.issued_at < contents.lifetime:
        return None
    if contents.server_name != ch.server_name:
        return None
    return contents


def _resume12(conn: TlsConnection, ch: m.ClientHello, contents: TicketContents) -> State:
    """The abbreviated handshake: ServerHello echoing the session id, then at once
    ChangeCipherSpec and Finished (RFC 5077 3.1)."""
    from ._connection import State

    suite = t.SUITES12[contents.cipher_suite]
    conn._suite12 = suite
    conn._abbreviated = True
    conn._resumed = True
    conn._master = contents.psk
    conn._transcript.start(suite.new_hash())
    conn._add_transcript()
    sh = m.ServerHello(
        random=conn._server_random,
        cipher_suite=suite.code,
        legacy_session_id_echo=ch.legacy_session_id,
        alpn_protocol=conn._alpn,
        extended_master_secret=True,
        renegotiation_info=b"",
        ec_point_formats=b"\x00" if ch.ec_point_formats is not None else None,
    )
    conn._send_handshake(H.server_hello, m.push_server_hello(sh))
    client_write, server_write = t.key_block_aeads(
        suite, conn._master, ch.random, conn._server_random
    )
    conn._pending_read = client_write
    conn._out += conn._records.write(ContentType.change_cipher_spec, b"\x01")
    conn._records.set_write_key(server_write)
    mine = t.finished_data(suite, conn._master, b"server finished", conn._transcript.digest())
    conn._send_handshake(H.finished, mine)
    return State.WAIT_CLIENT_CCS12


def server_on_certificate12(conn: TlsConnection, ders: tuple[bytes, ...]) -> State | None:
    from ._connection import State

    conn._add_transcript()
    if not ders:
        if conn.config.require_client_certificate:
            raise CertificateRequired("the client sent no certificate")
        return State.WAIT_CKE12
    chain = load_chain(list(ders))
    conn._peer_chain = tuple(chain)
    conn._peer_public_key = chain[0].public_key()
    validate_chain(chain, conn.config.trust_store, conn._now, None)
    return None


def server_on_client_key_exchange(conn: TlsConnection, public: bytes) -> State | None:
    from ._connection import State

    suite = conn._suite12
    hello = conn._client_hello
    assert suite is not None and hello is not None
    share = conn._key_shares[conn._group or 0]
    premaster = share.exchange(public)
    conn._key_shares = {}
    conn._add_transcript()
    conn._master = t.master_secret(suite, premaster, conn._transcript.digest())
    client_write, server_write = t.key_block_aeads(
        suite, conn._master, hello.random, conn._server_random
    )
    conn._pending_read = client_write
    conn._pending_write = server_write
    return State.WAIT_CLIENT_CV12 if conn._peer_chain else State.WAIT_CLIENT_CCS12


def server_on_certificate_verify12(conn: TlsConnection, signed: tuple[int, bytes]) -> State | None:
    scheme, signature = signed
    if scheme not in conn.config.signature_schemes:
        raise IllegalParameter("a CertificateVerify with a scheme we did not offer")
    verify(conn._peer_public_key, scheme, signature, bytes(conn._transcript.messages), tls13=False)
    conn._add_transcript()
    return None


def server_on_finished12(conn: TlsConnection, verify_data: bytes) -> State | None:
    suite = conn._suite12
    assert suite is not None
    expected = t.finished_data(suite, conn._master, b"client finished", conn._transcript.digest())
    if not _equal(verify_data, expected):
        raise DecryptError("the client's Finished does not verify")
    conn._add_transcript()
    if conn._abbreviated:
        conn._complete()
        return None
    if conn._ticket12 is not None:
        key = conn.config.ticket_key
        assert key is not None
        lifetime = conn.config.ticket_lifetime
        contents = TicketContents(
            TLS1_2, suite.code, conn._master, conn._now, 0, lifetime, conn.server_name, conn._alpn
        )
        nst = t.push_new_session_ticket12(lifetime, seal_ticket(key, contents))
        conn._send_handshake(H.new_session_ticket, nst)
    conn._out += conn._records.write(ContentType.change_cipher_spec, b"\x01")
    conn._records.set_write_key(conn._pending_write)
    mine = t.finished_data(suite, conn._master, b"server finished", conn._transcript.digest())
    conn._send_handshake(H.finished, mine)
    conn._complete()
    return None


def _equal(a: bytes, b: bytes) -> bool:
    from cryptography.hazmat.primitives import constant_time

    return constant_time.bytes_eq(a, b)


PULLERS12 = {
    H.client_hello: m.pull_client_hello,
    H.server_hello: m.pull_server_hello,
    H.certificate: t.pull_certificate12,
    H.server_key_exchange: t.pull_server_key_exchange,
    H.certificate_request: t.pull_certificate_request12,
    H.server_hello_done: t.pull_empty,
    H.client_key_exchange: t.pull_client_key_exchange,
    H.certificate_verify: t.pull_digitally_signed,
    H.finished: t.pull_finished12,
    H.new_session_ticket: t.pull_new_session_ticket12,
    0: t.pull_empty,  # hello_request
}
