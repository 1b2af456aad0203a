"""Handshake messages of TLS 1.3 and their extensions: dataclasses and codecs.

Each message has ``pull_<name>(body) -> message`` (the handshake body, without its
4-byte header) and ``push_<name>(message) -> body``. Decoders are total: they return a
message or raise :class:`~mirage.tls.DecodeError` (``illegal_parameter`` for the few
fields whose RFC says so). Known extensions become typed fields; unknown ones are kept
as ``(type, data)`` pairs in ``other_extensions``, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._buffer import Reader, Writer
from ._constants import HRR_RANDOM, ExtensionType, HandshakeType
from ._errors import DecodeError, IllegalParameter

__all__ = [
    "Certificate",
    "CertificateEntry",
    "CertificateRequest",
    "CertificateVerify",
    "ClientHello",
    "EncryptedExtensions",
    "Finished",
    "KeyShareEntry",
    "KeyUpdate",
    "NewSessionTicket",
    "OfferedPsks",
    "ServerHello",
    "pull_handshake",
    "push_handshake",
]

Extensions = tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class KeyShareEntry:
    """A key share: a group and a public key for it."""

    group: int
    key_exchange: bytes


@dataclass(frozen=True, slots=True)
class OfferedPsks:
    """The client's pre_shared_key extension: PSK identities with ticket ages, and binders."""

    identities: tuple[tuple[bytes, int], ...]  # (identity, obfuscated_ticket_age)
    binders: tuple[bytes, ...]


# ---------------------------------------------------------------------------
# helpers


def _u16_list(r: Reader, minimum: int = 2) -> tuple[int, ...]:
    items = r.vector(2, Reader.u16, minimum)
    return tuple(items)


def _push_u16_list(w: Writer, items: tuple[int, ...]) -> None:
    with w.block(2):
        for i in items:
            w.u16(i)


def _pull_extensions(r: Reader, required: bool = False) -> list[tuple[int, bytes]]:
    if r.eof() and not required:
        return []
    seen: set[int] = set()
    out: list[tuple[int, bytes]] = []
    with r.block(2) as inner:
        while not inner.eof():
            ext_type = inner.u16()
            data = inner.opaque(2)
            if ext_type in seen:
                raise DecodeError(f"extension {ext_type} appears twice")
            seen.add(ext_type)
            out.append((ext_type, data))
    return out


def _push_extensions(w: Writer, exts: list[tuple[int, bytes]]) -> None:
    with w.block(2):
        for ext_type, data in exts:
            w.u16(ext_type)
            w.opaque(2, data)


def _enc(fn: Callable[[Writer], None]) -> bytes:
    w = Writer()
    fn(w)
    return w.getvalue()


def _pull_key_share(r: Reader) -> KeyShareEntry:
    group = r.u16()
    return KeyShareEntry(group, r.opaque(2, 1))


def _push_key_share(w: Writer, e: KeyShareEntry) -> None:
    w.u16(e.group)
    w.opaque(2, e.key_exchange)


def _pull_server_names(r: Reader) -> str:
    names: list[str] = []
    with r.block(2, 1) as inner:
        while not inner.eof():
            kind = inner.u8()
            name = inner.opaque(2, 1)
            if kind == 0:
                if names:
                    raise DecodeError("two host names in server_name")
                try:
                    names.append(name.decode("ascii"))
                except UnicodeDecodeError:
                    raise DecodeError("a server name that is not ASCII") from None
    if not names:
        raise DecodeError("server_name without a host name")
    return names[0]


def _push_server_name(name: str) -> bytes:
    w = Writer()
    with w.block(2):
        w.u8(0)
        w.opaque(2, name.encode("ascii"))
    return w.getvalue()


def _pull_alpn(r: Reader) -> tuple[bytes, ...]:
    return tuple(r.vector(2, lambda x: x.opaque(1, 1), 2))


def _push_alpn(protocols: tuple[bytes, ...]) -> bytes:
    w = Writer()
    with w.block(2):
        for p in protocols:
            w.opaque(1, p)
    return w.getvalue()


def _pull_versions_list(r: Reader) -> tuple[int, ...]:
    with r.block(1, 2) as inner:
        if inner.remaining() % 2:
            raise DecodeError("supported_versions of odd length")
        out = []
        while not inner.eof():
            out.append(inner.u16())
    return tuple(out)


# ---------------------------------------------------------------------------
# ClientHello


@dataclass(frozen=True, slots=True)
class ClientHello:
    """A ClientHello message, with the extensions we understand decoded."""

    random: bytes
    legacy_session_id: bytes = b""
    cipher_suites: tuple[int, ...] = ()
    legacy_version: int = 0x0303
    legacy_compression_methods: bytes = b"\x00"
    server_name: str | None = None
    supported_groups: tuple[int, ...] | None = None
    signature_algorithms: tuple[int, ...] | None = None
    signature_algorithms_cert: tuple[int, ...] | None = None
    key_share: tuple[KeyShareEntry, ...] | None = None
    supported_versions: tuple[int, ...] | None = None
    psk_key_exchange_modes: tuple[int, ...] | None = None
    alpn_protocols: tuple[bytes, ...] | None = None
    cookie: bytes | None = None
    early_data: bool = False
    record_size_limit: int | None = None
    extended_master_secret: bool = False
    renegotiation_info: bytes | None = None
    session_ticket: bytes | None = None
    ec_point_formats: bytes | None = None
    pre_shared_key: OfferedPsks | None = None
    other_extensions: Extensions = ()


def pull_client_hello(body: bytes) -> ClientHello:
    r = Reader(body)
    legacy_version = r.u16()
    random = r.take(32)
    session_id = r.opaque(1)
    if len(session_id) > 32:
        raise DecodeError("legacy_session_id longer than 32 bytes")
    suites = _u16_list(r)
    compression = r.opaque(1, 1)
    fields: dict[str, object] = {}
    other: list[tuple[int, bytes]] = []
    exts = _pull_extensions(r)
    r.finish()
    for i, (ext_type, data) in enumerate(exts):
        x = Reader(data)
        if ext_type == ExtensionType.server_name:
            fields["server_name"] = _pull_server_names(x)
        elif ext_type == ExtensionType.supported_groups:
            fields["supported_groups"] = _u16_list(x)
        elif ext_type == ExtensionType.signature_algorithms:
            fields["signature_algorithms"] = _u16_list(x)
        elif ext_type == ExtensionType.signature_algorithms_cert:
            fields["signature_algorithms_cert"] = _u16_list(x)
        elif ext_type == ExtensionType.key_share:
            fields["key_share"] = tuple(x.vector(2, _pull_key_share))
        elif ext_type == ExtensionType.supported_versions:
            fields["supported_versions"] = _pull_versions_list(x)
        elif ext_type == ExtensionType.psk_key_exchange_modes:
            fields["psk_key_exchange_modes"] = tuple(x.opaque(1, 1))
        elif ext_type == ExtensionType.application_layer_protocol_negotiation:
            fields["alpn_protocols"] = _pull_alpn(x)
        elif ext_type == ExtensionType.cookie:
            fields["cookie"] = x.opaque(2, 1)
        elif ext_type == ExtensionType.early_data:
            fields["early_data"] = True
        elif ext_type == ExtensionType.record_size_limit:
            fields["record_size_limit"] = x.u16()
        elif ext_type == ExtensionType.extended_master_secret:
            fields["extended_master_secret"] = True
        elif ext_type == ExtensionType.renegotiation_info:
            fields["renegotiation_info"] = x.opaque(1)
        elif ext_type == ExtensionType.session_ticket:
            fields["session_ticket"] = x.take(x.remaining())
        elif ext_type == ExtensionType.ec_point_formats:
            fields["ec_point_formats"] = x.opaque(1, 1)
        elif ext_type == ExtensionType.pre_shared_key:
            if i != len(exts) - 1:
                raise IllegalParameter("pre_shared_key is not the last extension")
            identities = x.vector(2, lambda y: (y.opaque(2, 1), y.uint(4)), 7)
            binders = x.vector(2, lambda y: y.opaque(1, 32), 33)
            if len(identities) != len(binders):
                raise IllegalParameter("as many PSK binders as identities are needed")
            fields["pre_shared_key"] = OfferedPsks(tuple(identities), tuple(binders))
        else:
            x.take(x.remaining())
            other.append((ext_type, data))
        x.finish()
    return ClientHello(
        random=random,
        legacy_session_id=session_id,
        cipher_suites=suites,
        legacy_version=legacy_version,
        legacy_compression_methods=compression,
        other_extensions=tuple(other),
        **fields,  # type: ignore[arg-type]
    )


def push_client_hello(m: ClientHello, binders_length: int | None = None) -> bytes:
    """The body; with ``binders_length`` the PSK binders are left out (the truncated
    hello that binders are computed over)."""
    w = Writer()
    w.u16(m.legacy_version)
    w.raw(m.random)
    w.opaque(1, m.legacy_session_id)
    _push_u16_list(w, m.cipher_suites)
    w.opaque(1, m.legacy_compression_methods)
    exts: list[tuple[int, bytes]] = []
    if m.server_name is not None:
        exts.append((ExtensionType.server_name, _push_server_name(m.server_name)))
    if m.ec_point_formats is not None:
        exts.append(
            (ExtensionType.ec_point_formats, _enc(lambda x: x.opaque(1, m.ec_point_formats or b"")))
        )
    if m.supported_groups is not None:
        exts.append(
            (
                ExtensionType.supported_groups,
                _enc(lambda x: _push_u16_list(x, m.supported_groups or ())),
            )
        )
    if m.session_ticket is not None:
        exts.append((ExtensionType.session_ticket, m.session_ticket))
    if m.alpn_protocols is not None:
        exts.append(
            (ExtensionType.application_layer_protocol_negotiation, _push_alpn(m.alpn_protocols))
        )
    if m.extended_master_secret:
        exts.append((ExtensionType.extended_master_secret, b""))
    if m.record_size_limit is not None:
        exts.append((ExtensionType.record_size_limit, m.record_size_limit.to_bytes(2, "big")))
    if m.signature_algorithms is not None:
        exts.append(
            (
                ExtensionType.signature_algorithms,
                _enc(lambda x: _push_u16_list(x, m.signature_algorithms or ())),
            )
        )
    if m.signature_algorithms_cert is not None:
        exts.append(
            (
                ExtensionType.signature_algorithms_cert,
                _enc(lambda x: _push_u16_list(x, m.signature_algorithms_cert or ())),
            )
        )
    if m.supported_versions is not None:

        def versions(x: Writer) -> None:
            with x.block(1):
                for v in m.supported_versions or ():
                    x.u16(v)

        exts.append((ExtensionType.supported_versions, _enc(versions)))
    if m.psk_key_exchange_modes is not None:
        exts.append(
            (
                ExtensionType.psk_key_exchange_modes,
                _enc(lambda x: x.opaque(1, bytes(m.psk_key_exchange_modes or ()))),
            )
        )
    if m.cookie is not None:
        exts.append((ExtensionType.cookie, _enc(lambda x: x.opaque(2, m.cookie or b""))))
    if m.key_share is not None:

        def shares(x: Writer) -> None:
            with x.block(2):
                for e in m.key_share or ():
                    _push_key_share(x, e)

        exts.append((ExtensionType.key_share, _enc(shares)))
    if m.renegotiation_info is not None:
        exts.append(
            (
                ExtensionType.renegotiation_info,
                _enc(lambda x: x.opaque(1, m.renegotiation_info or b"")),
            )
        )
    if m.early_data:
        exts.append((ExtensionType.early_data, b""))
    exts.extend(m.other_extensions)
    psk = m.pre_shared_key
    if psk is not None:

        def identities(x: Writer) -> None:
            with x.block(2):
                for ident, age in psk.identities:
                    x.opaque(2, ident)
                    x.uint(4, age)

        def binders(x: Writer) -> None:
            with x.block(2):
                for b in psk.binders:
                    x.opaque(1, b)

        ids = _enc(identities)
        bnd = _enc(binders)
        exts.append((ExtensionType.pre_shared_key, ids + bnd))
        _push_extensions(w, exts)
        if binders_length is not None:
            return w.getvalue()[: len(w.buf) - len(bnd)]
        return w.getvalue()
    _push_extensions(w, exts)
    return w.getvalue()


# ---------------------------------------------------------------------------
# ServerHello and HelloRetryRequest


@dataclass(frozen=True, slots=True)
class ServerHello:
    """A ServerHello or HelloRetryRequest message, with the extensions we understand decoded."""

    random: bytes
    cipher_suite: int
    legacy_session_id_echo: bytes = b""
    legacy_version: int = 0x0303
    legacy_compression_method: int = 0
    supported_version: int | None = None
    key_share: KeyShareEntry | None = None
    selected_group: int | None = None  # HelloRetryRequest only
    cookie: bytes | None = None  # HelloRetryRequest only
    pre_shared_key: int | None = None
    alpn_protocol: bytes | None = None  # TLS 1.2
    extended_master_secret: bool = False  # TLS 1.2
    renegotiation_info: bytes | None = None  # TLS 1.2
    session_ticket: bool = False  # TLS 1.2
    ec_point_formats: bytes | None = None  # TLS 1.2
    other_extensions: Extensions = ()

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HRR_RANDOM


def pull_server_hello(body: bytes) -> ServerHello:
    r = Reader(body)
    legacy_version = r.u16()
    random = r.take(32)
    session_id = r.opaque(1)
    if len(session_id) > 32:
        raise DecodeError("legacy_session_id_echo longer than 32 bytes")
    suite = r.u16()
    compression = r.u8()
    exts = _pull_extensions(r)
    r.finish()
    hrr = random == HRR_RANDOM
    fields: dict[str, object] = {}
    other: list[tuple[int, bytes]] = []
    for ext_type, data in exts:
        x = Reader(data)
        if ext_type == ExtensionType.supported_versions:
            fields["supported_version"] = x.u16()
        elif ext_type == ExtensionType.key_share:
            if hrr:
                fields["selected_group"] = x.u16()
            else:
                fields["key_share"] = _pull_key_share(x)
        elif ext_type == ExtensionType.cookie:
            fields["cookie"] = x.opaque(2, 1)
        elif ext_type == ExtensionType.pre_shared_key:
            fields["pre_shared_key"] = x.u16()
        elif ext_type == ExtensionType.application_layer_protocol_negotiation:
            protocols = _pull_alpn(x)
            if len(protocols) != 1:
                raise DecodeError("a server selects exactly one ALPN protocol")
            fields["alpn_protocol"] = protocols[0]
        elif ext_type == ExtensionType.extended_master_secret:
            fields["extended_master_secret"] = True
        elif ext_type == ExtensionType.renegotiation_info:
            fields["renegotiation_info"] = x.opaque(1)
        elif ext_type == ExtensionType.session_ticket:
            fields["session_ticket"] = True
        elif ext_type == ExtensionType.ec_point_formats:
            fields["ec_point_formats"] = x.opaque(1, 1)
        else:
            x.take(x.remaining())
            other.append((ext_type, data))
        x.finish()
    return ServerHello(
        random=random,
        cipher_suite=suite,
        legacy_session_id_echo=session_id,
        legacy_version=legacy_version,
        legacy_compression_method=compression,
        other_extensions=tuple(other),
        **fields,  # type: ignore[arg-type]
    )


def push_server_hello(m: ServerHello) -> bytes:
    w = Writer()
    w.u16(m.legacy_version)
    w.raw(m.random)
    w.opaque(1, m.legacy_session_id_echo)
    w.u16(m.cipher_suite)
    w.u8(m.legacy_compression_method)
    exts: list[tuple[int, bytes]] = []
    if m.supported_version is not None:
        exts.append((ExtensionType.supported_versions, m.supported_version.to_bytes(2, "big")))
    if m.key_share is not None:
        ks = m.key_share
        exts.append((ExtensionType.key_share, _enc(lambda x: _push_key_share(x, ks))))
    if m.selected_group is not None:
        exts.append((ExtensionType.key_share, m.selected_group.to_bytes(2, "big")))
    if m.cookie is not None:
        exts.append((ExtensionType.cookie, _enc(lambda x: x.opaque(2, m.cookie or b""))))
    if m.pre_shared_key is not None:
        exts.append((ExtensionType.pre_shared_key, m.pre_shared_key.to_bytes(2, "big")))
    if m.alpn_protocol is not None:
        exts.append(
            (ExtensionType.application_layer_protocol_negotiation, _push_alpn((m.alpn_protocol,)))
        )
    if m.extended_master_secret:
        exts.append((ExtensionType.extended_master_secret, b""))
    if m.renegotiation_info is not None:
        exts.append(
            (
                ExtensionType.renegotiation_info,
                _enc(lambda x: x.opaque(1, m.renegotiation_info or b"")),
            )
        )
    if m.session_ticket:
        exts.append((ExtensionType.session_ticket, b""))
    if m.ec_point_formats is not None:
        exts.append(
            (ExtensionType.ec_point_formats, _enc(lambda x: x.opaque(1, m.ec_point_formats or b"")))
        )
    exts.extend(m.other_extensions)
    _push_extensions(w, exts)
    return w.getvalue()


# ---------------------------------------------------------------------------
# EncryptedExtensions


@dataclass(frozen=True, slots=True)
class EncryptedExtensions:
    """An EncryptedExtensions message: the server's extensions not needed for keys."""

    alpn_protocol: bytes | None = None
    server_name_ack: bool = False
    supported_groups: tuple[int, ...] | None = None
    early_data: bool = False
    record_size_limit: int | None = None
    other_extensions: Extensions = ()


def pull_encrypted_extensions(body: bytes) -> EncryptedExtensions:
    r = Reader(body)
    exts = _pull_extensions(r, required=True)
    r.finish()
    fields: dict[str, object] = {}
    other: list[tuple[int, bytes]] = []
    for ext_type, data in exts:
        x = Reader(data)
        if ext_type == ExtensionType.application_layer_protocol_negotiation:
            protocols = _pull_alpn(x)
            if len(protocols) != 1:
                raise DecodeError("a server selects exactly one ALPN protocol")
            fields["alpn_protocol"] = protocols[0]
        elif ext_type == ExtensionType.server_name:
            fields["server_name_ack"] = True
        elif ext_type == ExtensionType.supported_groups:
            fields["supported_groups"] = _u16_list(x)
        elif ext_type == ExtensionType.early_data:
            fields["early_data"] = True
        elif ext_type == ExtensionType.record_size_limit:
            fields["record_size_limit"] = x.u16()
        else:
            x.take(x.remaining())
            other.append((ext_type, data))
        x.finish()
    return EncryptedExtensions(other_extensions=tuple(other), **fields)  # type: ignore[arg-type]


def push_encrypted_extensions(m: EncryptedExtensions) -> bytes:
    w = Writer()
    exts: list[tuple[int, bytes]] = []
    if m.server_name_ack:
        exts.append((ExtensionType.server_name, b""))
    if m.supported_groups is not None:
        exts.append(
            (
                ExtensionType.supported_groups,
                _enc(lambda x: _push_u16_list(x, m.supported_groups or ())),
            )
        )
    if m.alpn_protocol is not None:
        exts.append(
            (ExtensionType.application_layer_protocol_negotiation, _push_alpn((m.alpn_protocol,)))
        )
    if m.record_size_limit is not None:
        exts.append((ExtensionType.record_size_limit, m.record_size_limit.to_bytes(2, "big")))
    if m.early_data:
        exts.append((ExtensionType.early_data, b""))
    exts.extend(m.other_extensions)
    _push_extensions(w, exts)
    return w.getvalue()


# ---------------------------------------------------------------------------
# CertificateRequest, Certificate, CertificateVerify, Finished


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A TLS 1.3 CertificateRequest message: its context and accepted signature schemes."""

    context: bytes = b""
    signature_algorithms: tuple[int, ...] = ()
    other_extensions: Extensions = ()


def pull_certificate_request(body: bytes) -> CertificateRequest:
    r = Reader(body)
    context = r.opaque(1)
    exts = _pull_extensions(r, required=True)
    r.finish()
    algorithms: tuple[int, ...] | None = None
    other: list[tuple[int, bytes]] = []
    for ext_type, data in exts:
        if ext_type == ExtensionType.signature_algorithms:
            x = Reader(data)
            algorithms = _u16_list(x)
            x.finish()
        else:
            other.append((ext_type, data))
    if algorithms is None:
        raise DecodeError("CertificateRequest without signature_algorithms")
    return CertificateRequest(context, algorithms, tuple(other))


def push_certificate_request(m: CertificateRequest) -> bytes:
    w = Writer()
    w.opaque(1, m.context)
    exts = [
        (
            int(ExtensionType.signature_algorithms),
            _enc(lambda x: _push_u16_list(x, m.signature_algorithms)),
        )
    ]
    exts.extend(m.other_extensions)
    _push_extensions(w, exts)
    return w.getvalue()


@dataclass(frozen=True, slots=True)
class CertificateEntry:
    """A certificate in a Certificate message, with its extensions."""

    cert_data: bytes
    extensions: Extensions = ()


@dataclass(frozen=True, slots=True)
class Certificate:
    """A Certificate message: a request context and the certificate chain."""

    context: bytes = b""
    entries: tuple[CertificateEntry, ...] = ()


def pull_certificate(body: bytes) -> Certificate:
    r = Reader(body)
    context = r.opaque(1)

    def entry(x: Reader) -> CertificateEntry:
        data = x.opaque(3, 1)
        return CertificateEntry(data, tuple(_pull_extensions(x, required=True)))

    entries = r.vector(3, entry)
    r.finish()
    return Certificate(context, tuple(entries))


def push_certificate(m: Certificate) -> bytes:
    w = Writer()
    w.opaque(1, m.context)
    with w.block(3):
        for e in m.entries:
            w.opaque(3, e.cert_data)
            _push_extensions(w, list(e.extensions))
    return w.getvalue()


@dataclass(frozen=True, slots=True)
class CertificateVerify:
    """A CertificateVerify message: the signature scheme and the signature."""

    algorithm: int
    signature: bytes


def pull_certificate_verify(body: bytes) -> CertificateVerify:
    r = Reader(body)
    algorithm = r.u16()
    signature = r.opaque(2, 1)
    r.finish()
    return CertificateVerify(algorithm, signature)


def push_certificate_verify(m: CertificateVerify) -> bytes:
    w = Writer()
    w.u16(m.algorithm)
    w.opaque(2, m.signature)
    return w.getvalue()


@dataclass(frozen=True, slots=True)
class Finished:
    """A Finished message: the MAC over the handshake transcript."""

    verify_data: bytes


def pull_finished(body: bytes) -> Finished:
    if len(body) not in (32, 48, 64):
        raise DecodeError("Finished of a length no hash gives")
    return Finished(body)


def push_finished(m: Finished) -> bytes:
    return m.verify_data


# ---------------------------------------------------------------------------
# Post-handshake messages


@dataclass(frozen=True, slots=True)
class NewSessionTicket:
    """A NewSessionTicket message: a resumption ticket and its parameters."""

    lifetime: int
    age_add: int
    nonce: bytes
    ticket: bytes
    max_early_data_size: int | None = None
    other_extensions: Extensions = ()


def pull_new_session_ticket(body: bytes) -> NewSessionTicket:
    r = Reader(body)
    lifetime = r.uint(4)
    age_add = r.uint(4)
    nonce = r.opaque(1)
    ticket = r.opaque(2, 1)
    exts = _pull_extensions(r, required=True)
    r.finish()
    max_early: int | None = None
    other: list[tuple[int, bytes]] = []
    for ext_type, data in exts:
        if ext_type == ExtensionType.early_data:
            x = Reader(data)
            max_early = x.uint(4)
            x.finish()
        else:
            other.append((ext_type, data))
    return NewSessionTicket(lifetime, age_add, nonce, ticket, max_early, tuple(other))


def push_new_session_ticket(m: NewSessionTicket) -> bytes:
    w = Writer()
    w.uint(4, m.lifetime)
    w.uint(4, m.age_add)
    w.opaque(1, m.nonce)
    w.opaque(2, m.ticket)
    exts: list[tuple[int, bytes]] = []
    if m.max_early_data_size is not None:
        exts.append((ExtensionType.early_data, m.max_early_data_size.to_bytes(4, "big")))
    exts.extend(m.other_extensions)
    _push_extensions(w, exts)
    return w.getvalue()


@dataclass(frozen=True, slots=True)
class KeyUpdate:
    """A KeyUpdate message, asking the peer to update its keys too when ``update_requested``."""

    update_requested: bool


def pull_key_update(body: bytes) -> KeyUpdate:
    if len(body) != 1:
        raise DecodeError("KeyUpdate of the wrong length")
    if body[0] > 1:
        raise IllegalParameter("KeyUpdate request neither 0 nor 1")
    return KeyUpdate(body[0] == 1)


def push_key_update(m: KeyUpdate) -> bytes:
    return bytes([int(m.update_requested)])


# ---------------------------------------------------------------------------
# Framing


def push_handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def pull_handshake(buf: bytearray) -> tuple[int, bytes, bytes] | None:
    """The first complete message in ``buf`` as (type, body, raw bytes), removed from
    it; None if it is not complete yet."""
    if len(buf) < 4:
        return None
    length = int.from_bytes(buf[1:4], "big")
    if len(buf) < 4 + length:
        return None
    raw = bytes(buf[: 4 + length])
    del buf[: 4 + length]
    return raw[0], raw[4:], raw


def pull_end_of_early_data(body: bytes) -> None:
    if body:
        raise DecodeError("EndOfEarlyData has no body")


PULLERS: dict[int, Callable[[bytes], object]] = {
    HandshakeType.end_of_early_data: pull_end_of_early_data,
    HandshakeType.client_hello: pull_client_hello,
    HandshakeType.server_hello: pull_server_hello,
    HandshakeType.encrypted_extensions: pull_encrypted_extensions,
    HandshakeType.certificate_request: pull_certificate_request,
    HandshakeType.certificate: pull_certificate,
    HandshakeType.certificate_verify: pull_certificate_verify,
    HandshakeType.finished: pull_finished,
    HandshakeType.new_session_ticket: pull_new_session_ticket,
    HandshakeType.key_update: pull_key_update,
}
