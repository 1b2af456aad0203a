"""The TLS 1.3 engine: one connection, client or server, without I/O.

Theory of operation. Bytes from the transport go to :meth:`receive_data` (with the
time, used to check certificates); events come out of :meth:`next_event`; bytes for
the transport come out of :meth:`data_to_send`. A client starts with
:meth:`start`, which queues its ClientHello. Application data goes in with
:meth:`send` once :class:`HandshakeComplete` has been seen; :meth:`key_update` and
:meth:`close` (close_notify, a half close) act on the sending side.

Handshake messages move the connection between states (RFC 8446 appendix A). The
tables ``_CLIENT`` and ``_SERVER`` map ``(state, message type)`` to the handler and
the next state (a handler may return another state where the protocol branches).
A message that has no entry is ``unexpected_message``. Any alert we raise is queued
for the peer (protected with the current key), the connection moves to ``FAILED``
for good and the alert is raised from :meth:`receive_data`. A fatal alert from the
peer raises :class:`PeerAlert`. No exception other than the package's own leaves.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from enum import Enum, auto
from typing import Any

from cryptography import x509

from . import _handshake12 as h12
from . import _messages as m
from ._config import CertifiedKey, TlsConfig
from ._constants import (
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    HRR_RANDOM,
    TLS1_2,
    TLS1_3,
    AlertDescription,
    AlertLevel,
    ContentType,
    HandshakeType,
    PskKeyExchangeMode,
)
from ._crypto import SUITES, Aead12, KeyShare, Suite, schemes_for_key, sign, verify
from ._errors import (
    CertificateRequired,
    DecodeError,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
    InternalError,
    MissingExtension,
    NoApplicationProtocol,
    PeerAlert,
    ProtocolVersion,
    TlsAlert,
    TlsError,
    TlsUsageError,
    UnexpectedMessage,
    UnsupportedExtension,
)
from ._events import (
    ConnectionClosed,
    DataReceived,
    EarlyDataReceived,
    Event,
    HandshakeComplete,
    KeysUpdated,
    SessionTicket,
)
from ._keyschedule import (
    KeySchedule,
    Transcript,
    finished_verify_data,
    next_traffic_secret,
    resumption_psk,
    traffic_aead,
)
from ._record import RecordLayer
from ._tickets import Session, TicketContents, open_ticket, seal_ticket
from ._tls12 import SUITES12, CertificateRequest12, Suite12
from ._x509 import load_chain, validate_chain

__all__ = ["State", "TlsConnection"]

MAX_HANDSHAKE_MESSAGE = 1 << 17


class State(Enum):
    START = auto()
    # client
    WAIT_SH = auto()
    WAIT_EE = auto()
    WAIT_CERT_CR = auto()
    WAIT_CERT = auto()
    WAIT_CV = auto()
    WAIT_FINISHED = auto()
    # server
    WAIT_CH = auto()
    WAIT_CH2 = auto()
    WAIT_CLIENT_CERT = auto()
    WAIT_CLIENT_CV = auto()
    WAIT_CLIENT_FINISHED = auto()
    WAIT_EOED = auto()  # accepted 0-RTT data, until EndOfEarlyData
    # TLS 1.2 (see _handshake12)
    WAIT_CERT12 = auto()
    WAIT_SKE12 = auto()
    WAIT_SHD12 = auto()
    WAIT_CCS12 = auto()
    WAIT_FINISHED12 = auto()
    WAIT_CLIENT_CERT12 = auto()
    WAIT_CKE12 = auto()
    WAIT_CLIENT_CV12 = auto()
    WAIT_CLIENT_CCS12 = auto()
    WAIT_CLIENT_FINISHED12 = auto()
    # both
    CONNECTED = auto()
    CLOSED = auto()  # closed by us before the handshake ended
    FAILED = auto()


H = HandshakeType
Handler = Callable[["TlsConnection", Any], "State | None"]


def _cv_content(server: bool, transcript_hash: bytes) -> bytes:
    context = (
        b"TLS 1.3, server CertificateVerify" if server else b"TLS 1.3, client CertificateVerify"
    )
    return b" " * 64 + context + b"\x00" + transcript_hash


class TlsConnection:
    def __init__(
        self,
        config: TlsConfig,
        *,
        server_side: bool = False,
        server_name: str | None = None,
        session: Session | None = None,
    ) -> None:
        self.config = config
        self.server_side = server_side
        self.server_name = server_name
        if not server_side and config.verify_peer and server_name is None:
            raise TlsUsageError("a client that verifies the server needs its server_name")
        self.state = State.WAIT_CH if server_side else State.START
        self._records = RecordLayer()
        self._records.padding = config.padding
        if server_side:
            self._records.record_version = 0x0303
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._hs_buf = bytearray()
        self._transcript = Transcript()
        self._suite: Suite | None = None
        self._schedule: KeySchedule | None = None
        self._key_shares: dict[int, KeyShare] = {}
        self._client_hello: m.ClientHello | None = None
        self._hello_retry = False
        self._group: int | None = None
        self._alpn: bytes | None = None
        self._peer_chain: tuple[x509.Certificate, ...] = ()
        self._peer_public_key: object = None
        self._peer_scheme: int | None = None
        self._certificate_requested: m.CertificateRequest | None = None
        self._credentials: CertifiedKey | None = None
        self._c_hs = self._s_hs = self._c_ap = self._s_ap = b""
        self._ccs_seen = False
        self._now = 0.0
        self._pending_raw = b""
        # resumption
        self._session = session
        self._offered_psk = False
        self._resumed = False
        self._res_master = b""
        self._tickets_sent = 0
        self._ticket_contents: TicketContents | None = None
        self._early_budget = 0
        # TLS 1.2
        self._version: int | None = None
        self._suite12: Suite12 | None = None
        self._server_random = b""
        self._premaster = b""
        self._master = b""
        self._pending_read: Aead12 | None = None
        self._pending_write: Aead12 | None = None
        self._certificate_request12: CertificateRequest12 | None = None
        self._abbreviated = False  # a TLS 1.2 session resumed from a ticket
        self._ticket12: bytes | None = None
        self._ticket12_lifetime = 0
        self.read_closed = False
        self.write_closed = False
        self.handshake_complete = False

    # ------------------------------------------------------------------
    # public API

    def start(self, now: float | None = None) -> None:
        """A client queues its ClientHello; ``now`` (POSIX time) dates the age of a
        session ticket, when the connection resumes one."""
        if self.server_side or self.state is not State.START:
            raise TlsUsageError("start() is for a client that has not started")
        if now is not None:
            self._now = now
        if self._session is not None and not self._session.valid_at(self._now):
            self._session = None
        self._guard(self._send_client_hello)
        self.state = State.WAIT_SH

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the transport; ``now`` is POSIX time, for certificate checks."""
        if self.state is State.FAILED:
            raise TlsUsageError("the connection has failed")
        if self.state is State.CLOSED:
            return
        self._now = now
        self._records.feed(data)
        self._guard(self._drain_records)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def send(self, data: bytes) -> None:
        """Queue application data (after the handshake, before :meth:`close`)."""
        if self.state is not State.CONNECTED:
            raise TlsUsageError(f"cannot send application data in state {self.state.name}")
        if self.write_closed:
            raise TlsUsageError("the connection was closed for sending")
        if data:
            self._out += self._records.write(ContentType.application_data, data)

    def key_update(self, request_peer: bool = True) -> None:
        """Move our sending side to new keys; ask the peer to do the same."""
        if self.state is not State.CONNECTED or self.write_closed:
            raise TlsUsageError("KeyUpdate needs an open, established connection")
        if self._version == TLS1_2:
            raise TlsUsageError("TLS 1.2 has no KeyUpdate")
        self._send_key_update(request_peer)

    def close(self) -> None:
        """Send close_notify: we will send no more.

        After the handshake (for a server: once its Finished is sent) this is a half
        close and the peer may go on sending. Earlier, it abandons the handshake:
        the connection moves to ``CLOSED`` and ignores what arrives.
        """
        if self.write_closed or self.state in (State.FAILED, State.CLOSED):
            return
        self.write_closed = True
        self._out += self._records.write(ContentType.alert, bytes([1, 0]))
        if self.state not in _HALF_CLOSABLE:
            self.state = State.CLOSED

    @property
    def alpn_protocol(self) -> bytes | None:
        return self._alpn

    @property
    def peer_certificates(self) -> tuple[x509.Certificate, ...]:
        return self._peer_chain

    # ------------------------------------------------------------------
    # error handling

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except TlsAlert as e:
            self._fail(e.description)
            raise
        except PeerAlert:
            self.state = State.FAILED
            raise
        except TlsError:
            raise
        except Exception as e:  # a bug of ours must not leave as a foreign exception
            self._fail(AlertDescription.internal_error)
            raise InternalError(f"internal error: {e!r}") from e

    def _fail(self, description: AlertDescription) -> None:
        if self.state is not State.FAILED:
            self.state = State.FAILED
            try:
                self._out += self._records.write(
                    ContentType.alert, bytes([AlertLevel.fatal, description])
                )
            except Exception:
                pass

    # ------------------------------------------------------------------
    # records

    def _drain_records(self) -> None:
        while self.state is not State.FAILED:
            record = self._records.next_record()
            if record is None:
                return
            ctype, fragment = record
            if ctype == ContentType.handshake:
                self._on_handshake_record(fragment)
            elif ctype == ContentType.alert:
                self._on_alert(fragment)
            elif ctype == ContentType.change_cipher_spec:
                self._on_ccs(fragment)
            elif ctype == ContentType.application_data and self.state is State.WAIT_EOED:
                self._early_budget -= len(fragment)
                if self._early_budget < 0:
                    raise UnexpectedMessage("more early data than the server allows")
                if fragment:
                    self._events.append(EarlyDataReceived(fragment))
            elif ctype == ContentType.application_data:
                if self.state is not State.CONNECTED:
                    raise UnexpectedMessage("application data during the handshake")
                if self._hs_buf:
                    raise UnexpectedMessage("application data inside a handshake message")
                if not self.read_closed and fragment:
                    self._events.append(DataReceived(fragment))
            else:
                raise UnexpectedMessage(f"record type {ctype}")

    def _on_ccs(self, fragment: bytes) -> None:
        # RFC 8446 5: a single change_cipher_spec of value 1 may appear during the
        # handshake (middlebox compatibility) and is dropped.
        if self._version == TLS1_2 and fragment == b"\x01":
            h12.on_change_cipher_spec12(self)
            return
        if fragment != b"\x01" or self.handshake_complete or self._ccs_seen:
            raise UnexpectedMessage("a change_cipher_spec record where none may be")
        if self.state in (State.START, State.WAIT_CH) and not self._client_hello:
            raise UnexpectedMessage("change_cipher_spec before the ClientHello")
        self._ccs_seen = True

    def _on_alert(self, fragment: bytes) -> None:
        if len(fragment) != 2:
            raise DecodeError("an alert record is 2 bytes")
        if self._hs_buf:
            raise UnexpectedMessage("an alert inside a handshake message")
        level, description = fragment
        if description == AlertDescription.close_notify:
            if not self.read_closed:
                self.read_closed = True
                self._events.append(ConnectionClosed())
            return
        if description == AlertDescription.user_canceled:
            return
        if self._version == TLS1_2 and level == AlertLevel.warning:
            return  # e.g. no_renegotiation
        self.state = State.FAILED
        raise PeerAlert(description, level)

    def _on_handshake_record(self, fragment: bytes) -> None:
        if not fragment:
            raise UnexpectedMessage("an empty handshake record")
        if self.read_closed:
            raise UnexpectedMessage("a handshake message after close_notify")
        self._hs_buf += fragment
        while True:
            if len(self._hs_buf) >= 4:
                length = int.from_bytes(self._hs_buf[1:4], "big")
                if length > MAX_HANDSHAKE_MESSAGE:
                    raise DecodeError(f"a handshake message of {length} bytes")
            message = m.pull_handshake(self._hs_buf)
            if message is None:
                return
            msg_type, body, raw = message
            self._dispatch(msg_type, body, raw)
            if self.state is State.FAILED:
                return

    def _dispatch(self, msg_type: int, body: bytes, raw: bytes) -> None:
        table = _SERVER if self.server_side else _CLIENT
        entry = table.get((self.state, msg_type))
        if entry is None:
            try:
                name = HandshakeType(msg_type).name
            except ValueError:
                name = str(msg_type)
            raise UnexpectedMessage(f"handshake message {name} in state {self.state.name}")
        handler, next_state = entry
        puller = (h12.PULLERS12 if self._version == TLS1_2 else m.PULLERS)[msg_type]
        message = puller(body)
        # Every message but the post-handshake ones enters the transcript; the
        # handler sees the transcript before its own message where it needs it.
        self._pending_raw = raw
        new_state = handler(self, message)
        self.state = new_state or next_state

    def _add_transcript(self) -> None:
        self._transcript.add(self._pending_raw)

    def _send_handshake(self, msg_type: int, body: bytes) -> None:
        raw = m.push_handshake(msg_type, body)
        self._transcript.add(raw)
        self._out += self._records.write(ContentType.handshake, raw)

    def _check_key_change_boundary(self) -> None:
        # RFC 8446 5.1: handshake messages may not span a change of keys.
        if self._hs_buf:
            raise UnexpectedMessage("handshake data left over at a key change")

    # ------------------------------------------------------------------
    # client

    def _send_client_hello(
        self, cookie: bytes | None = None, retry_group: int | None = None
    ) -> None:
        cfg = self.config
        if retry_group is None:
            self._key_shares = {g: KeyShare(g) for g in cfg.key_share_groups if g in cfg.groups}
        else:
            self._key_shares = {retry_group: KeyShare(retry_group)}
        previous = self._client_hello
        resuming12 = self._session is not None and self._session.version == TLS1_2
        session_id = (
            previous.legacy_session_id
            if previous is not None
            else (os.urandom(32) if cfg.middlebox_compatibility or resuming12 else b"")
        )
        # offer a version only with at least one of its suites
        versions = tuple(
            v
            for v, table in ((TLS1_3, SUITES), (TLS1_2, SUITES12))
            if v in cfg.versions and any(c in table for c in cfg.cipher_suites)
        )
        tls12 = TLS1_2 in versions
        suites = tuple(
            c
            for c in cfg.cipher_suites
            if (c in SUITES and TLS1_3 in versions) or (c in SUITES12 and tls12)
        )
        if tls12:
            suites += (h12.SCSV,)
        if not suites or not versions:
            raise TlsUsageError("no protocol version or cipher suite is enabled")
        if TLS1_3 not in versions:
            self._key_shares = {}
        hello = m.ClientHello(
            random=previous.random if previous is not None else os.urandom(32),
            legacy_session_id=session_id,
            cipher_suites=suites,
            ec_point_formats=b"\x00" if tls12 else None,
            extended_master_secret=tls12,
            session_ticket=self._ticket_extension() if tls12 else None,
            server_name=self.server_name
            if self.server_name and not _is_ip(self.server_name)
            else None,
            supported_groups=tuple(cfg.groups),
            signature_algorithms=tuple(cfg.signature_schemes),
            key_share=tuple(m.KeyShareEntry(g, k.public) for g, k in self._key_shares.items())
            if TLS1_3 in versions
            else None,
            supported_versions=versions,
            psk_key_exchange_modes=(PskKeyExchangeMode.psk_dhe_ke,) if TLS1_3 in versions else None,
            alpn_protocols=tuple(cfg.alpn_protocols) or None,
            cookie=cookie,
            record_size_limit=cfg.record_size_limit,
        )
        hello = self._add_psk(hello)
        self._client_hello = hello
        self._send_handshake(H.client_hello, m.push_client_hello(hello))
        self._records.record_version = 0x0303

    def _ticket_extension(self) -> bytes:
        """The TLS 1.2 session_ticket extension: our 1.2 ticket, or empty to ask."""
        session = self._session
        if session is not None and session.version == TLS1_2:
            return session.ticket
        return b""

    def _add_psk(self, hello: m.ClientHello) -> m.ClientHello:
        """Offer the session's ticket, with its binder, if the hello can carry it."""
        session = self._session
        if session is None or TLS1_3 not in (hello.supported_versions or ()):
            return hello
        if session.version != TLS1_3:
            return hello
        ticket_suite = SUITES.get(session.cipher_suite)
        if ticket_suite is None or session.cipher_suite not in hello.cipher_suites:
            return hello
        if self._suite is not None and self._suite.hash is not ticket_suite.hash:
            return hello  # after a HelloRetryRequest for a suite of another hash
        identity = (session.ticket, session.obfuscated_age(self._now))
        hello = replace(
            hello,
            pre_shared_key=m.OfferedPsks((identity,), (bytes(ticket_suite.hash_len),)),
            psk_key_exchange_modes=(PskKeyExchangeMode.psk_dhe_ke,),
        )
        raw = m.push_handshake(H.client_hello, m.push_client_hello(hello))
        truncated = raw[: len(raw) - (3 + ticket_suite.hash_len)]
        th = self._transcript.digest_with(ticket_suite.new_hash(), truncated)
        binder = KeySchedule(ticket_suite, session.psk).binder(th)
        self._offered_psk = True
        return replace(hello, pre_shared_key=m.OfferedPsks((identity,), (binder,)))

    def _client_on_server_hello(self, sh: m.ServerHello) -> State | None:
        hello = self._client_hello
        assert hello is not None
        if sh.supported_version is None:
            if sh.legacy_version == TLS1_2 and TLS1_2 in (hello.supported_versions or ()):
                return h12.client_on_server_hello12(self, sh)
            if sh.random[-8:] in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
                raise IllegalParameter("a downgrade sentinel in the ServerHello")
            raise ProtocolVersion("the server offers no version we support")
        if sh.supported_version != TLS1_3 or TLS1_3 not in (hello.supported_versions or ()):
            raise IllegalParameter(f"the server chose version {sh.supported_version:#06x}")
        if sh.legacy_version != 0x0303 or sh.legacy_compression_method != 0:
            raise IllegalParameter("legacy fields of the ServerHello are wrong")
        if sh.legacy_session_id_echo != hello.legacy_session_id:
            raise IllegalParameter("the ServerHello does not echo our session id")
        if sh.cipher_suite not in hello.cipher_suites or sh.cipher_suite not in SUITES:
            raise IllegalParameter("the server chose a cipher suite we did not offer")
        if self._suite is not None and self._suite.code != sh.cipher_suite:
            raise IllegalParameter("the cipher suite changed after HelloRetryRequest")
        suite = SUITES[sh.cipher_suite]
        if sh.is_hello_retry_request:
            return self._client_on_hello_retry(sh, suite)
        psk: bytes | None = None
        if sh.pre_shared_key is not None:
            session = self._session
            if not self._offered_psk or sh.pre_shared_key != 0 or session is None:
                raise IllegalParameter("the server chose a PSK we did not offer")
            if SUITES[session.cipher_suite].hash is not suite.hash:
                raise IllegalParameter("the server resumed with a suite of another hash")
            psk = session.psk
            self._resumed = True
            self._peer_chain = session.peer_certificates
        if sh.cookie is not None or sh.selected_group is not None or sh.other_extensions:
            raise UnsupportedExtension("an extension a ServerHello may not carry")
        if sh.alpn_protocol is not None or sh.extended_master_secret or sh.session_ticket:
            raise UnsupportedExtension("a TLS 1.2 extension in a TLS 1.3 ServerHello")
        if sh.renegotiation_info is not None or sh.ec_point_formats is not None:
            raise UnsupportedExtension("a TLS 1.2 extension in a TLS 1.3 ServerHello")
        if sh.key_share is None:
            raise MissingExtension("the ServerHello has no key_share")
        share = self._key_shares.get(sh.key_share.group)
        if share is None:
            raise IllegalParameter("the server's key share is for a group we did not offer")
        self._suite = suite
        self._group = share.group
        if not self._hello_retry:
            self._transcript.start(suite.new_hash())
        self._add_transcript()
        self._check_key_change_boundary()
        schedule = KeySchedule(suite, psk)
        schedule.enter_handshake(share.exchange(sh.key_share.key_exchange))
        th = self._transcript.digest()
        self._c_hs = schedule.derive_secret(b"c hs traffic", th)
        self._s_hs = schedule.derive_secret(b"s hs traffic", th)
        self._schedule = schedule
        self._records.set_read_key(traffic_aead(suite, self._s_hs))
        self._key_shares = {}
        return None

    def _client_on_hello_retry(self, hrr: m.ServerHello, suite: Suite) -> State:
        if self._hello_retry:
            raise UnexpectedMessage("a second HelloRetryRequest")
        hello = self._client_hello
        assert hello is not None
        group = hrr.selected_group
        if hrr.key_share is not None:
            raise IllegalParameter("a HelloRetryRequest with a full key share")
        if group is None and hrr.cookie is None:
            raise IllegalParameter("a HelloRetryRequest that would change nothing")
        if group is not None and (
            group not in (hello.supported_groups or ()) or group in self._key_shares
        ):
            raise IllegalParameter("the HelloRetryRequest asks for a group we cannot use")
        if hrr.pre_shared_key is not None or hrr.other_extensions or hrr.alpn_protocol:
            raise UnsupportedExtension("an extension a HelloRetryRequest may not carry")
        self._hello_retry = True
        self._suite = suite
        self._transcript.restart_for_retry(suite.new_hash())
        self._add_transcript()
        self._send_client_hello(
            cookie=hrr.cookie,
            retry_group=group if group is not None else next(iter(self._key_shares)),
        )
        return State.WAIT_SH

    def _client_on_encrypted_extensions(self, ee: m.EncryptedExtensions) -> State | None:
        hello = self._client_hello
        assert hello is not None
        if ee.alpn_protocol is not None and ee.alpn_protocol not in (hello.alpn_protocols or ()):
            raise IllegalParameter("the server chose an ALPN protocol we did not offer")
        if ee.early_data:
            raise UnsupportedExtension("early_data accepted though not offered")
        if ee.server_name_ack and hello.server_name is None:
            raise UnsupportedExtension("server_name acknowledged though not sent")
        if ee.record_size_limit is not None:
            if ee.record_size_limit < 64:
                raise IllegalParameter("record_size_limit below 64")
            self._records.write_limit = min(self._records.write_limit, ee.record_size_limit - 1)
        self._alpn = ee.alpn_protocol
        self._add_transcript()
        return State.WAIT_FINISHED if self._resumed else None

    def _client_on_certificate_request(self, cr: m.CertificateRequest) -> State | None:
        if cr.context:
            raise IllegalParameter("a handshake CertificateRequest with a context")
        self._certificate_requested = cr
        self._add_transcript()
        return None

    def _on_certificate(self, cert: m.Certificate) -> State | None:
        if cert.context:
            raise IllegalParameter("a Certificate with a context in the handshake")
        if not cert.entries:
            if not self.server_side:
                raise DecodeError("the server sent no certificate")
            if self.config.require_client_certificate:
                raise CertificateRequired("the client sent no certificate")
            self._add_transcript()
            return State.WAIT_CLIENT_FINISHED
        chain = load_chain([e.cert_data for e in cert.entries])
        self._peer_chain = tuple(chain)
        self._peer_public_key = chain[0].public_key()
        self._add_transcript()
        if self.config.verify_peer or self.server_side:
            validate_chain(
                chain,
                self.config.trust_store,
                self._now,
                None if self.server_side else self.server_name,
            )
        return None

    def _on_certificate_verify(self, cv: m.CertificateVerify) -> State | None:
        own = self.config.signature_schemes
        if cv.algorithm not in own:
            raise IllegalParameter("a CertificateVerify with a scheme we did not offer")
        th = self._transcript.digest()
        verify(
            self._peer_public_key, cv.algorithm, cv.signature, _cv_content(not self.server_side, th)
        )
        self._peer_scheme = cv.algorithm
        self._add_transcript()
        return None

    def _client_on_finished(self, fin: m.Finished) -> State | None:
        suite, schedule = self._suite, self._schedule
        assert suite is not None and schedule is not None
        expected = finished_verify_data(suite, self._s_hs, self._transcript.digest())
        if not _equal(fin.verify_data, expected):
            raise DecryptError("the server's Finished does not verify")
        self._add_transcript()
        self._check_key_change_boundary()
        schedule.enter_master()
        th = self._transcript.digest()
        self._c_ap = schedule.derive_secret(b"c ap traffic", th)
        self._s_ap = schedule.derive_secret(b"s ap traffic", th)
        self._records.set_read_key(traffic_aead(suite, self._s_ap))
        # our second flight, under the client handshake key
        if self._ccs_needed():
            self._out += self._records.write(ContentType.change_cipher_spec, b"\x01")
        self._records.set_write_key(traffic_aead(suite, self._c_hs))
        if self._certificate_requested is not None:
            self._send_own_certificate(self._certificate_requested.signature_algorithms)
        verify_data = finished_verify_data(suite, self._c_hs, self._transcript.digest())
        self._send_handshake(H.finished, m.push_finished(m.Finished(verify_data)))
        self._records.set_write_key(traffic_aead(suite, self._c_ap))
        self._res_master = schedule.derive_secret(b"res master", self._transcript.digest())
        self._complete()
        return None

    def _ccs_needed(self) -> bool:
        return bool(self._client_hello and self._client_hello.legacy_session_id)

    def _send_own_certificate(self, peer_schemes: tuple[int, ...]) -> None:
        creds = self._choose_credentials(None, peer_schemes, required=False)
        if creds is None:
            self._send_handshake(H.certificate, m.push_certificate(m.Certificate()))
            return
        self._credentials = creds
        self._send_certificate_and_verify(creds, peer_schemes)

    def _send_certificate_and_verify(
        self, creds: CertifiedKey, peer_schemes: tuple[int, ...]
    ) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding

        entries = tuple(m.CertificateEntry(c.public_bytes(Encoding.DER)) for c in creds.chain)
        self._send_handshake(H.certificate, m.push_certificate(m.Certificate(b"", entries)))
        scheme = next(s for s in schemes_for_key(creds.key) if s in peer_schemes)
        content = _cv_content(self.server_side, self._transcript.digest())
        signature = sign(creds.key, scheme, content)
        self._send_handshake(
            H.certificate_verify, m.push_certificate_verify(m.CertificateVerify(scheme, signature))
        )

    def _choose_credentials(
        self,
        server_name: str | None,
        peer_schemes: tuple[int, ...],
        required: bool = True,
        tls13: bool = True,
    ) -> CertifiedKey | None:
        usable = [
            c
            for c in self.config.certificates
            if any(
                s in peer_schemes and s in self.config.signature_schemes
                for s in schemes_for_key(c.key, tls13)
            )
        ]
        if server_name is not None:
            for c in usable:
                if c.matches(server_name):
                    return c
        if usable:
            return usable[0]
        if required:
            raise HandshakeFailure("no certificate fits the client's signature algorithms")
        return None

    def _complete(self) -> None:
        self.handshake_complete = True
        self._events.append(
            HandshakeComplete(
                version=self._version or TLS1_3,
                cipher_suite=self._suite12.code
                if self._suite12
                else (self._suite.code if self._suite else 0),
                group=self._group,
                alpn_protocol=self._alpn,
                server_name=self.server_name,
                peer_certificates=self._peer_chain,
                signature_scheme=self._peer_scheme,
                hello_retry=self._hello_retry,
                resumed=self._resumed,
            )
        )

    # ------------------------------------------------------------------
    # server

    def _server_on_client_hello(self, ch: m.ClientHello) -> State | None:
        cfg = self.config
        retry = self.state is State.WAIT_CH2
        first = self._client_hello
        if retry:
            assert first is not None
            if ch.random != first.random or ch.legacy_session_id != first.legacy_session_id:
                raise IllegalParameter("the second ClientHello changed fields it may not")
            if ch.cipher_suites != first.cipher_suites:
                raise IllegalParameter("the second ClientHello changed its cipher suites")
        self._client_hello = ch
        versions = ch.supported_versions
        if versions is None or TLS1_3 not in versions or TLS1_3 not in cfg.versions:
            offers12 = TLS1_2 in versions if versions is not None else ch.legacy_version >= TLS1_2
            if offers12 and TLS1_2 in cfg.versions and not retry:
                return h12.server_hello12(self, ch)
            raise ProtocolVersion("no protocol version in common")
        if ch.legacy_version < 0x0303:
            raise ProtocolVersion("a legacy_version below TLS 1.2 with TLS 1.3 offered")
        if ch.legacy_compression_methods != b"\x00":
            raise IllegalParameter("TLS 1.3 allows only the null compression method")
        if ch.early_data and ch.pre_shared_key is None:
            raise IllegalParameter("early_data offered without a PSK")
        suite_code = next(
            (s for s in cfg.cipher_suites if s in ch.cipher_suites and s in SUITES), None
        )
        if suite_code is None:
            raise HandshakeFailure("no cipher suite in common")
        suite = SUITES[suite_code]
        if ch.signature_algorithms is None:
            raise MissingExtension("the ClientHello has no signature_algorithms")
        if ch.supported_groups is None or ch.key_share is None:
            raise MissingExtension("the ClientHello has no supported_groups or key_share")
        shares = ch.key_share
        offered_groups = [e.group for e in shares]
        if len(set(offered_groups)) != len(offered_groups):
            raise IllegalParameter("two key shares for one group")
        if any(g not in ch.supported_groups for g in offered_groups):
            raise IllegalParameter("a key share for a group not in supported_groups")
        chosen = next((e for g in cfg.groups for e in shares if e.group == g), None)
        if retry and (chosen is None or len(shares) != 1 or chosen.group != self._group):
            raise IllegalParameter("the second ClientHello lacks the requested key share")
        if chosen is None:
            group = next((g for g in cfg.groups if g in ch.supported_groups), None)
            if group is None:
                raise HandshakeFailure("no key-exchange group in common")
            return self._send_hello_retry(ch, suite, group)
        # ALPN
        if ch.alpn_protocols is not None and cfg.alpn_protocols:
            self._alpn = next((p for p in cfg.alpn_protocols if p in ch.alpn_protocols), None)
            if self._alpn is None:
                raise NoApplicationProtocol("no ALPN protocol in common")
        self.server_name = ch.server_name
        psk = self._accept_psk(ch, suite)
        accept_early = ch.early_data and not retry and self._accept_early_data(ch, suite)
        if ch.early_data and not accept_early:
            # 0-RTT refused: its records are skipped (RFC 8446 4.2.10).
            self._records.skip_early_data = max(cfg.max_early_data, 1 << 14) + 256
        creds = self._choose_credentials(ch.server_name, ch.signature_algorithms)
        assert creds is not None
        self._credentials = creds
        if ch.record_size_limit is not None:
            if ch.record_size_limit < 64:
                raise IllegalParameter("record_size_limit below 64")
            self._records.write_limit = min(self._records.write_limit, ch.record_size_limit - 1)
        # ServerHello
        self._suite = suite
        self._group = chosen.group
        if not retry:
            self._transcript.start(suite.new_hash())
        self._add_transcript()
        hello_hash = self._transcript.digest()
        share = KeyShare(chosen.group)
        shared = share.exchange(chosen.key_exchange)
        sh = m.ServerHello(
            random=os.urandom(32),
            cipher_suite=suite.code,
            legacy_session_id_echo=ch.legacy_session_id,
            supported_version=TLS1_3,
            key_share=m.KeyShareEntry(chosen.group, share.public),
            pre_shared_key=0 if psk is not None else None,
        )
        self._check_key_change_boundary()
        self._send_handshake(H.server_hello, m.push_server_hello(sh))
        if ch.legacy_session_id and not retry:
            self._out += self._records.write(ContentType.change_cipher_spec, b"\x01")
        schedule = KeySchedule(suite, psk)
        early_key = schedule.derive_secret(b"c e traffic", hello_hash) if accept_early else b""
        schedule.enter_handshake(shared)
        th = self._transcript.digest()
        self._c_hs = schedule.derive_secret(b"c hs traffic", th)
        self._s_hs = schedule.derive_secret(b"s hs traffic", th)
        self._schedule = schedule
        self._records.set_write_key(traffic_aead(suite, self._s_hs))
        if accept_early:
            self._records.set_read_key(traffic_aead(suite, early_key))
            self._early_budget = cfg.max_early_data
        else:
            self._records.set_read_key(traffic_aead(suite, self._c_hs))
        ee = m.EncryptedExtensions(
            alpn_protocol=self._alpn,
            server_name_ack=ch.server_name is not None and creds.matches(ch.server_name),
            record_size_limit=cfg.record_size_limit if ch.record_size_limit is not None else None,
            early_data=accept_early,
        )
        if ee.record_size_limit is not None:
            self._records.read_limit = min(self._records.read_limit, ee.record_size_limit - 1)
        self._send_handshake(H.encrypted_extensions, m.push_encrypted_extensions(ee))
        if psk is None and (cfg.request_client_certificate or cfg.require_client_certificate):
            cr = m.CertificateRequest(b"", tuple(cfg.signature_schemes))
            self._certificate_requested = cr
            self._send_handshake(H.certificate_request, m.push_certificate_request(cr))
        if psk is None:
            self._send_certificate_and_verify(creds, ch.signature_algorithms)
        verify_data = finished_verify_data(suite, self._s_hs, self._transcript.digest())
        self._send_handshake(H.finished, m.push_finished(m.Finished(verify_data)))
        schedule.enter_master()
        th = self._transcript.digest()
        self._c_ap = schedule.derive_secret(b"c ap traffic", th)
        self._s_ap = schedule.derive_secret(b"s ap traffic", th)
        self._records.set_write_key(traffic_aead(suite, self._s_ap))
        if accept_early:
            return State.WAIT_EOED
        if self._certificate_requested is not None:
            return State.WAIT_CLIENT_CERT
        return State.WAIT_CLIENT_FINISHED

    def _accept_early_data(self, ch: m.ClientHello, suite: Suite) -> bool:
        """0-RTT on this resumption: enabled, same suite and ALPN as the ticket's,
        a ticket age that agrees with ours, a ticket not used for 0-RTT before."""
        cfg, contents, offered = self.config, self._ticket_contents, ch.pre_shared_key
        if cfg.max_early_data <= 0 or cfg.replay_cache is None or not self._resumed:
            return False
        if contents is None or offered is None:
            return False
        if contents.cipher_suite != suite.code or contents.alpn_protocol != self._alpn:
            return False
        client_age = ((offered.identities[0][1] - contents.age_add) % (1 << 32)) / 1000
        if abs(client_age - (self._now - contents.issued_at)) > 10:
            return False
        until = contents.issued_at + contents.lifetime
        return cfg.replay_cache.first_use(offered.identities[0][0], self._now, until)

    def _server_on_end_of_early_data(self, _: None) -> State | None:
        suite = self._suite
        assert suite is not None
        self._add_transcript()
        self._check_key_change_boundary()
        self._records.set_read_key(traffic_aead(suite, self._c_hs))
        return None

    def _accept_psk(self, ch: m.ClientHello, suite: Suite) -> bytes | None:
        """The PSK of the client's first ticket if we can resume from it; a wrong
        binder is ``decrypt_error``; any other problem means a full handshake."""
        key = self.config.ticket_key
        offered = ch.pre_shared_key
        if key is None or offered is None:
            return None
        if PskKeyExchangeMode.psk_dhe_ke not in (ch.psk_key_exchange_modes or ()):
            return None
        contents = open_ticket(key, offered.identities[0][0])
        if contents is None or contents.version != TLS1_3 or contents.cipher_suite not in SUITES:
            return None
        if not 0 <= self._now - contents.issued_at < contents.lifetime:
            return None
        if SUITES[contents.cipher_suite].hash is not suite.hash:
            return None
        if contents.server_name != ch.server_name:
            return None
        binders_length = 2 + sum(1 + len(b) for b in offered.binders)
        raw = self._pending_raw
        th = self._transcript.digest_with(suite.new_hash(), raw[: len(raw) - binders_length])
        expected = KeySchedule(suite, contents.psk).binder(th)
        if not _equal(offered.binders[0], expected):
            raise DecryptError("the PSK binder does not verify")
        self._resumed = True
        self._ticket_contents = contents
        return contents.psk

    def _send_ticket(self) -> None:
        suite, key, schedule = self._suite, self.config.ticket_key, self._schedule
        assert suite is not None and key is not None and schedule is not None
        res_master = schedule.derive_secret(b"res master", self._transcript.digest())
        nonce = self._tickets_sent.to_bytes(8, "big")
        self._tickets_sent += 1
        age_add = int.from_bytes(os.urandom(4), "big")
        lifetime = self.config.ticket_lifetime
        contents = TicketContents(
            TLS1_3,
            suite.code,
            resumption_psk(suite, res_master, nonce),
            self._now,
            age_add,
            lifetime,
            self.server_name,
            self._alpn,
        )
        nst = m.NewSessionTicket(
            lifetime,
            age_add,
            nonce,
            seal_ticket(key, contents),
            max_early_data_size=self.config.max_early_data or None,
        )
        raw = m.push_handshake(H.new_session_ticket, m.push_new_session_ticket(nst))
        self._out += self._records.write(ContentType.handshake, raw)

    def _send_hello_retry(self, ch: m.ClientHello, suite: Suite, group: int) -> State:
        if self.state is State.WAIT_CH2:
            raise IllegalParameter("the second ClientHello still has no usable key share")
        self._suite = suite
        self._group = group
        self._hello_retry = True
        self._add_transcript()
        self._transcript.restart_for_retry(suite.new_hash())
        if ch.early_data:
            self._records.skip_early_data = max(self.config.max_early_data, 1 << 14) + 256
        hrr = m.ServerHello(
            random=HRR_RANDOM,
            cipher_suite=suite.code,
            legacy_session_id_echo=ch.legacy_session_id,
            supported_version=TLS1_3,
            selected_group=group,
        )
        self._send_handshake(H.server_hello, m.push_server_hello(hrr))
        if ch.legacy_session_id:
            self._out += self._records.write(ContentType.change_cipher_spec, b"\x01")
        return State.WAIT_CH2

    def _server_on_client_certificate(self, cert: m.Certificate) -> State | None:
        result = self._on_certificate(cert)
        if result is State.WAIT_CLIENT_FINISHED:
            return result
        return State.WAIT_CLIENT_CV

    def _server_on_finished(self, fin: m.Finished) -> State | None:
        suite = self._suite
        assert suite is not None
        expected = finished_verify_data(suite, self._c_hs, self._transcript.digest())
        if not _equal(fin.verify_data, expected):
            raise DecryptError("the client's Finished does not verify")
        self._add_transcript()
        self._check_key_change_boundary()
        self._records.set_read_key(traffic_aead(suite, self._c_ap))
        self._complete()
        if self.config.ticket_key is not None:
            self._send_ticket()
        return None

    # ------------------------------------------------------------------
    # post-handshake

    def _on_key_update(self, ku: m.KeyUpdate) -> State | None:
        suite = self._suite
        assert suite is not None
        self._check_key_change_boundary()
        if self.server_side:
            self._c_ap = next_traffic_secret(suite, self._c_ap)
            self._records.set_read_key(traffic_aead(suite, self._c_ap))
        else:
            self._s_ap = next_traffic_secret(suite, self._s_ap)
            self._records.set_read_key(traffic_aead(suite, self._s_ap))
        if ku.update_requested and not self.write_closed:
            self._send_key_update(False)
        self._events.append(KeysUpdated(ku.update_requested))
        return None

    def _send_key_update(self, request_peer: bool) -> None:
        suite = self._suite
        assert suite is not None
        raw = m.push_handshake(H.key_update, m.push_key_update(m.KeyUpdate(request_peer)))
        self._out += self._records.write(ContentType.handshake, raw)
        if self.server_side:
            self._s_ap = next_traffic_secret(suite, self._s_ap)
            self._records.set_write_key(traffic_aead(suite, self._s_ap))
        else:
            self._c_ap = next_traffic_secret(suite, self._c_ap)
            self._records.set_write_key(traffic_aead(suite, self._c_ap))

    def _client_on_new_session_ticket(self, ticket: m.NewSessionTicket) -> State | None:
        suite = self._suite
        assert suite is not None
        if ticket.lifetime == 0 or not self._res_master:
            return None
        session = Session(
            server_name=self.server_name,
            cipher_suite=suite.code,
            psk=resumption_psk(suite, self._res_master, ticket.nonce),
            ticket=ticket.ticket,
            age_add=ticket.age_add,
            lifetime=min(ticket.lifetime, 604800),
            received_at=self._now,
            alpn_protocol=self._alpn,
            peer_certificates=self._peer_chain,
            max_early_data=ticket.max_early_data_size or 0,
        )
        self._events.append(SessionTicket(session))
        return None


def _equal(a: bytes, b: bytes) -> bool:
    from cryptography.hazmat.primitives import constant_time

    return constant_time.bytes_eq(a, b)


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


C = TlsConnection
_HALF_CLOSABLE = frozenset(
    {State.CONNECTED, State.WAIT_CLIENT_CERT, State.WAIT_CLIENT_CV, State.WAIT_CLIENT_FINISHED}
)
_CLIENT: dict[tuple[State, int], tuple[Handler, State]] = {
    (State.WAIT_SH, H.server_hello): (C._client_on_server_hello, State.WAIT_EE),
    (State.WAIT_EE, H.encrypted_extensions): (
        C._client_on_encrypted_extensions,
        State.WAIT_CERT_CR,
    ),
    (State.WAIT_CERT_CR, H.certificate_request): (
        C._client_on_certificate_request,
        State.WAIT_CERT,
    ),
    (State.WAIT_CERT_CR, H.certificate): (C._on_certificate, State.WAIT_CV),
    (State.WAIT_CERT, H.certificate): (C._on_certificate, State.WAIT_CV),
    (State.WAIT_CV, H.certificate_verify): (C._on_certificate_verify, State.WAIT_FINISHED),
    (State.WAIT_FINISHED, H.finished): (C._client_on_finished, State.CONNECTED),
    (State.CONNECTED, H.new_session_ticket): (C._client_on_new_session_ticket, State.CONNECTED),
    (State.WAIT_CERT12, H.certificate): (h12.client_on_certificate12, State.WAIT_SKE12),
    (State.WAIT_SKE12, H.server_key_exchange): (
        h12.client_on_server_key_exchange,
        State.WAIT_SHD12,
    ),
    (State.WAIT_SHD12, H.certificate_request): (
        h12.client_on_certificate_request12,
        State.WAIT_SHD12,
    ),
    (State.WAIT_SHD12, H.server_hello_done): (h12.client_on_server_hello_done, State.WAIT_CCS12),
    (State.WAIT_FINISHED12, H.finished): (h12.client_on_finished12, State.CONNECTED),
    (State.WAIT_CCS12, H.new_session_ticket): (
        h12.client_on_new_session_ticket12,
        State.WAIT_CCS12,
    ),
    (State.CONNECTED, 0): (h12.refuse_renegotiation, State.CONNECTED),
    (State.CONNECTED, H.key_update): (C._on_key_update, State.CONNECTED),
}

_SERVER: dict[tuple[State, int], tuple[Handler, State]] = {
    (State.WAIT_CH, H.client_hello): (C._server_on_client_hello, State.WAIT_CLIENT_FINISHED),
    (State.WAIT_CH2, H.client_hello): (C._server_on_client_hello, State.WAIT_CLIENT_FINISHED),
    (State.WAIT_CLIENT_CERT, H.certificate): (
        C._server_on_client_certificate,
        State.WAIT_CLIENT_CV,
    ),
    (State.WAIT_CLIENT_CV, H.certificate_verify): (
        C._on_certificate_verify,
        State.WAIT_CLIENT_FINISHED,
    ),
    (State.WAIT_CLIENT_FINISHED, H.finished): (C._server_on_finished, State.CONNECTED),
    (State.WAIT_EOED, H.end_of_early_data): (
        C._server_on_end_of_early_data,
        State.WAIT_CLIENT_FINISHED,
    ),
    (State.CONNECTED, H.key_update): (C._on_key_update, State.CONNECTED),
    (State.WAIT_CLIENT_CERT12, H.certificate): (h12.server_on_certificate12, State.WAIT_CKE12),
    (State.WAIT_CKE12, H.client_key_exchange): (
        h12.server_on_client_key_exchange,
        State.WAIT_CLIENT_CCS12,
    ),
    (State.WAIT_CLIENT_CV12, H.certificate_verify): (
        h12.server_on_certificate_verify12,
        State.WAIT_CLIENT_CCS12,
    ),
    (State.WAIT_CLIENT_FINISHED12, H.finished): (h12.server_on_finished12, State.CONNECTED),
    (State.CONNECTED, H.client_hello): (h12.refuse_renegotiation, State.CONNECTED),
}
