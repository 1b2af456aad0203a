"""Errors of the engine: alerts that carry their wire number, kept apart by origin.

- :class:`TlsAlert` subclasses are raised when *we* detect a fault in what the peer
  sent; the engine sends the alert (``description``) and the connection closes.
- :class:`PeerAlert` is raised when the *peer* sent us a fatal alert.
- :class:`TlsUsageError` is raised when the application misuses the engine (sending
  before the handshake, after close); nothing is sent on the wire.
"""

from __future__ import annotations

from ._constants import AlertDescription

__all__ = [
    "AccessDenied",
    "BadCertificate",
    "BadCertificateStatusResponse",
    "BadRecordMac",
    "CertificateExpired",
    "CertificateRequired",
    "CertificateRevoked",
    "CertificateUnknown",
    "DecodeError",
    "DecryptError",
    "HandshakeFailure",
    "IllegalParameter",
    "InappropriateFallback",
    "InsufficientSecurity",
    "InternalError",
    "MissingExtension",
    "NoApplicationProtocol",
    "PeerAlert",
    "ProtocolVersion",
    "RecordOverflow",
    "TlsAlert",
    "TlsError",
    "TlsUsageError",
    "UnexpectedMessage",
    "UnknownCa",
    "UnrecognizedName",
    "UnsupportedCertificate",
    "UnsupportedExtension",
    "alert_for",
]


class TlsError(Exception):
    """Base of every error the engine raises."""


class TlsUsageError(TlsError):
    """The application used the engine wrongly (a local error: nothing goes on the wire)."""


class TlsAlert(TlsError):
    """We found the peer at fault; ``description`` is the alert we send."""

    description: AlertDescription = AlertDescription.internal_error


class PeerAlert(TlsError):
    """The peer sent a fatal alert (or a warning we treat as fatal)."""

    def __init__(self, description: AlertDescription | int, level: int = 2) -> None:
        try:
            description = AlertDescription(description)
        except ValueError:
            pass
        name = getattr(description, "name", str(description))
        super().__init__(f"the peer sent the alert {name} ({int(description)})")
        self.description = description
        self.level = level


class UnexpectedMessage(TlsAlert):
    """A message arrived in a state that does not allow it (alert 10)."""

    description = AlertDescription.unexpected_message


class BadRecordMac(TlsAlert):
    """A record failed to decrypt or authenticate (alert 20)."""

    description = AlertDescription.bad_record_mac


class RecordOverflow(TlsAlert):
    """A record longer than the limit (alert 22)."""

    description = AlertDescription.record_overflow


class HandshakeFailure(TlsAlert):
    """No acceptable set of parameters (alert 40)."""

    description = AlertDescription.handshake_failure


class BadCertificate(TlsAlert):
    """A certificate was corrupt or its signature wrong (alert 42)."""

    description = AlertDescription.bad_certificate


class UnsupportedCertificate(TlsAlert):
    """A certificate of a type we do not support (alert 43)."""

    description = AlertDescription.unsupported_certificate


class CertificateRevoked(TlsAlert):
    """A revoked certificate (alert 44)."""

    description = AlertDescription.certificate_revoked


class CertificateExpired(TlsAlert):
    """A certificate outside its validity period (alert 45)."""

    description = AlertDescription.certificate_expired


class CertificateUnknown(TlsAlert):
    """A certificate that cannot be accepted for another reason (alert 46)."""

    description = AlertDescription.certificate_unknown


class IllegalParameter(TlsAlert):
    """A field out of range or inconsistent with others (alert 47)."""

    description = AlertDescription.illegal_parameter


class UnknownCa(TlsAlert):
    """No chain to a trusted root (alert 48)."""

    description = AlertDescription.unknown_ca


class AccessDenied(TlsAlert):
    """Access denied (alert 49)."""

    description = AlertDescription.access_denied


class DecodeError(TlsAlert):
    """A message that could not be decoded (alert 50)."""

    description = AlertDescription.decode_error


class DecryptError(TlsAlert):
    """A handshake signature or Finished that does not verify (alert 51)."""

    description = AlertDescription.decrypt_error


class ProtocolVersion(TlsAlert):
    """No protocol version in common (alert 70)."""

    description = AlertDescription.protocol_version


class InsufficientSecurity(TlsAlert):
    """Parameters weaker than we accept (alert 71)."""

    description = AlertDescription.insufficient_security


class InternalError(TlsAlert):
    """Our own fault, unrelated to the peer (alert 80)."""

    description = AlertDescription.internal_error


class InappropriateFallback(TlsAlert):
    """A fallback that should not have happened (alert 86)."""

    description = AlertDescription.inappropriate_fallback


class MissingExtension(TlsAlert):
    """A required extension is absent (alert 109)."""

    description = AlertDescription.missing_extension


class UnsupportedExtension(TlsAlert):
    """An extension the peer may not send here (alert 110)."""

    description = AlertDescription.unsupported_extension


class UnrecognizedName(TlsAlert):
    """No certificate for the requested server name (alert 112)."""

    description = AlertDescription.unrecognized_name


class BadCertificateStatusResponse(TlsAlert):
    """A bad OCSP response (alert 113)."""

    description = AlertDescription.bad_certificate_status_response


class CertificateRequired(TlsAlert):
    """A client certificate was required and none came (alert 116)."""

    description = AlertDescription.certificate_required


class NoApplicationProtocol(TlsAlert):
    """No ALPN protocol in common (alert 120)."""

    description = AlertDescription.no_application_protocol


_BY_DESCRIPTION: dict[AlertDescription, type[TlsAlert]] = {
    cls.description: cls
    for cls in (
        UnexpectedMessage,
        BadRecordMac,
        RecordOverflow,
        HandshakeFailure,
        BadCertificate,
        UnsupportedCertificate,
        CertificateRevoked,
        CertificateExpired,
        CertificateUnknown,
        IllegalParameter,
        UnknownCa,
        AccessDenied,
        DecodeError,
        DecryptError,
        ProtocolVersion,
        InsufficientSecurity,
        InternalError,
        InappropriateFallback,
        MissingExtension,
        UnsupportedExtension,
        UnrecognizedName,
        BadCertificateStatusResponse,
        CertificateRequired,
        NoApplicationProtocol,
    )
}


def alert_for(description: AlertDescription) -> type[TlsAlert]:
    """The exception class that carries ``description``."""
    return _BY_DESCRIPTION.get(description, InternalError)
