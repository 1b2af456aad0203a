"""Errors of mirage-dns, each carrying its wire meaning (an rcode) where it has one."""

from __future__ import annotations

__all__ = ["DnsDecodeError", "DnsError", "ZoneError", "ResolveError"]

FORMERR = 1


class DnsError(Exception):
    """Base class of every error this package raises."""


class DnsDecodeError(DnsError):
    """Bytes from the network that are not a DNS message (the peer's fault).

    ``rcode`` is the answer a server gives (FORMERR); ``header`` is the
    ``(id, flags)`` pair when the twelve header bytes were readable, so a server can
    still answer.
    """

    def __init__(
        self, message: str, *, rcode: int = FORMERR, header: tuple[int, int] | None = None
    ) -> None:
        super().__init__(message)
        self.rcode = rcode
        self.header = header


class ZoneError(DnsError):
    """A zone file that cannot be read: names the file, the line and why."""

    def __init__(self, filename: str, line: int, reason: str) -> None:
        super().__init__(f"{filename}:{line}: {reason}")
        self.filename = filename
        self.line = line
        self.reason = reason


class ResolveError(DnsError, LookupError):
    """A name that could not be resolved; ``rcode`` is the server's answer, if any."""

    def __init__(self, message: str, *, rcode: int | None = None) -> None:
        super().__init__(message)
        self.rcode = rcode
