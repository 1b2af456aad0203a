"""mirage-tls: a sans-IO TLS 1.3 engine, and TLS flows over any mirage flow.

Cryptographic primitives come from ``cryptography``; the record layer, the handshake
state machines, the message codecs and the validation logic are this package's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import DEFAULT_CIPHER_SUITES, CertifiedKey, TlsConfig
    from ._connection import State, TlsConnection
    from ._constants import (
        AlertDescription,
        CipherSuite,
        ContentType,
        ExtensionType,
        HandshakeType,
        NamedGroup,
        SignatureScheme,
    )
    from ._errors import (
        AccessDenied,
        BadCertificate,
        BadCertificateStatusResponse,
        BadRecordMac,
        CertificateExpired,
        CertificateRequired,
        CertificateRevoked,
        CertificateUnknown,
        DecodeError,
        DecryptError,
        HandshakeFailure,
        IllegalParameter,
        InappropriateFallback,
        InsufficientSecurity,
        InternalError,
        MissingExtension,
        NoApplicationProtocol,
        PeerAlert,
        ProtocolVersion,
        RecordOverflow,
        TlsAlert,
        TlsError,
        TlsUsageError,
        UnexpectedMessage,
        UnknownCa,
        UnrecognizedName,
        UnsupportedCertificate,
        UnsupportedExtension,
        alert_for,
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
    from ._tickets import ReplayCache, Session
    from .flow import TlsFlow

# Names load on first use, so that importing the plugin module stays light.
_WHERE = {
    "AccessDenied": "mirage.tls._errors",
    "AlertDescription": "mirage.tls._constants",
    "BadCertificate": "mirage.tls._errors",
    "BadCertificateStatusResponse": "mirage.tls._errors",
    "BadRecordMac": "mirage.tls._errors",
    "CertificateExpired": "mirage.tls._errors",
    "CertificateRequired": "mirage.tls._errors",
    "CertificateRevoked": "mirage.tls._errors",
    "CertificateUnknown": "mirage.tls._errors",
    "CertifiedKey": "mirage.tls._config",
    "CipherSuite": "mirage.tls._constants",
    "ConnectionClosed": "mirage.tls._events",
    "ContentType": "mirage.tls._constants",
    "DEFAULT_CIPHER_SUITES": "mirage.tls._config",
    "DataReceived": "mirage.tls._events",
    "EarlyDataReceived": "mirage.tls._events",
    "DecodeError": "mirage.tls._errors",
    "DecryptError": "mirage.tls._errors",
    "Event": "mirage.tls._events",
    "ExtensionType": "mirage.tls._constants",
    "HandshakeComplete": "mirage.tls._events",
    "HandshakeFailure": "mirage.tls._errors",
    "HandshakeType": "mirage.tls._constants",
    "IllegalParameter": "mirage.tls._errors",
    "InappropriateFallback": "mirage.tls._errors",
    "InsufficientSecurity": "mirage.tls._errors",
    "InternalError": "mirage.tls._errors",
    "KeysUpdated": "mirage.tls._events",
    "MissingExtension": "mirage.tls._errors",
    "NamedGroup": "mirage.tls._constants",
    "NoApplicationProtocol": "mirage.tls._errors",
    "PeerAlert": "mirage.tls._errors",
    "ProtocolVersion": "mirage.tls._errors",
    "RecordOverflow": "mirage.tls._errors",
    "SignatureScheme": "mirage.tls._constants",
    "ReplayCache": "mirage.tls._tickets",
    "Session": "mirage.tls._tickets",
    "SessionTicket": "mirage.tls._events",
    "State": "mirage.tls._connection",
    "TlsAlert": "mirage.tls._errors",
    "TlsConfig": "mirage.tls._config",
    "TlsConnection": "mirage.tls._connection",
    "TlsError": "mirage.tls._errors",
    "TlsFlow": "mirage.tls.flow",
    "TlsUsageError": "mirage.tls._errors",
    "UnexpectedMessage": "mirage.tls._errors",
    "UnknownCa": "mirage.tls._errors",
    "UnrecognizedName": "mirage.tls._errors",
    "UnsupportedCertificate": "mirage.tls._errors",
    "UnsupportedExtension": "mirage.tls._errors",
    "alert_for": "mirage.tls._errors",
}

__all__ = [
    "AccessDenied",
    "AlertDescription",
    "BadCertificate",
    "BadCertificateStatusResponse",
    "BadRecordMac",
    "CertificateExpired",
    "CertificateRequired",
    "CertificateRevoked",
    "CertificateUnknown",
    "CertifiedKey",
    "CipherSuite",
    "ConnectionClosed",
    "ContentType",
    "DEFAULT_CIPHER_SUITES",
    "DataReceived",
    "DecodeError",
    "EarlyDataReceived",
    "DecryptError",
    "Event",
    "ExtensionType",
    "HandshakeComplete",
    "HandshakeFailure",
    "HandshakeType",
    "IllegalParameter",
    "InappropriateFallback",
    "InsufficientSecurity",
    "InternalError",
    "KeysUpdated",
    "MissingExtension",
    "NamedGroup",
    "NoApplicationProtocol",
    "PeerAlert",
    "ProtocolVersion",
    "RecordOverflow",
    "ReplayCache",
    "Session",
    "SessionTicket",
    "SignatureScheme",
    "State",
    "TlsAlert",
    "TlsConfig",
    "TlsConnection",
    "TlsError",
    "TlsFlow",
    "TlsUsageError",
    "UnexpectedMessage",
    "UnknownCa",
    "UnrecognizedName",
    "UnsupportedCertificate",
    "UnsupportedExtension",
    "alert_for",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
