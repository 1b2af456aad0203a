"""Validating a peer's certificate chain with ``cryptography``'s X.509 verifier.

The verifier builds the path from the leaf through the peer's intermediates to a root
in the trust store, checks validity periods at the time given, the chain's
constraints and, for servers, the name. Failures become alerts whose message names
the leaf certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import warnings

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification

from ._errors import BadCertificate, CertificateExpired, TlsAlert, UnknownCa, UnsupportedCertificate

__all__ = ["load_chain", "validate_chain"]


def load_chain(ders: list[bytes]) -> list[x509.Certificate]:
    """Parse the peer's chain (leaf first); the leaf's key must be usable."""
    out = []
    for i, der in enumerate(ders):
        try:
            with warnings.catch_warnings():
                # a peer's odd certificate is answered with an alert, not a warning
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                out.append(x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion) as e:
            raise BadCertificate(
                f"certificate {i} of the peer's chain does not parse: {e}"
            ) from None
    try:
        out[0].public_key()
    except ValueError as e:
        raise BadCertificate(f"the key of {_describe(out[0])!r} does not parse: {e}") from None
    except UnsupportedAlgorithm as e:
        raise UnsupportedCertificate(f"the key of {_describe(out[0])!r}: {e}") from None
    return out


def _describe(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string() or "(empty subject)"
    except ValueError:
        return "(unreadable subject)"


def validate_chain(
    chain: list[x509.Certificate],
    trust_store: tuple[x509.Certificate, ...],
    now: float,
    server_name: str | None,
) -> None:
    """Raise an alert unless ``chain`` leads to ``trust_store`` (and, when
    ``server_name`` is given, names it); clients' chains are checked with
    ``server_name=None``."""
    if not trust_store:
        raise UnknownCa("no trust store to check the peer's certificate against")
    leaf, intermediates = chain[0], chain[1:]
    when = datetime.datetime.fromtimestamp(now, datetime.UTC)
    try:
        builder = (
            verification.PolicyBuilder().store(verification.Store(list(trust_store))).time(when)
        )
        if server_name is None:
            builder.build_client_verifier().verify(leaf, intermediates)
        else:
            subject: verification.Subject
            try:
                subject = x509.IPAddress(ipaddress.ip_address(server_name))
            except ValueError:
                subject = x509.DNSName(server_name)
            builder.build_server_verifier(subject).verify(leaf, intermediates)
    except verification.VerificationError as e:
        message = f"certificate {_describe(leaf)!r}: {e}"
        text = str(e).lower().split("(encountered")[0]
        cls: type[TlsAlert] = UnknownCa
        if "expired" in text or "not valid at" in text or "validity" in text:
            cls = CertificateExpired
        elif "unsupported" in text or "algorithm" in text:
            cls = UnsupportedCertificate
        elif "name" in text or "subject" in text or "san" in text:
            cls = BadCertificate
        raise cls(message) from None
    except ValueError as e:
        raise BadCertificate(f"certificate {_describe(leaf)!r}: {e}") from None
    except UnsupportedAlgorithm as e:
        raise UnsupportedCertificate(f"certificate {_describe(leaf)!r}: {e}") from None
