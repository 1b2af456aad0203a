"""Errors with their wire meaning.

A :class:`RemoteProtocolError` is the peer's fault: a server answers it with its
``status`` (400, 413, 414, 431, 501, 505 ...) and closes the connection. A
:class:`LocalProtocolError` is ours: an event sent in the wrong state, a body longer
than its Content-Length.
"""

from __future__ import annotations

__all__ = ["HttpError", "LocalProtocolError", "RemoteProtocolError"]


class HttpError(Exception):
    """Base of the protocol errors; ``status`` is the HTTP status that fits."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class RemoteProtocolError(HttpError):
    """The peer broke HTTP/1.1; a server answers with ``status`` and closes."""


class LocalProtocolError(HttpError):
    """We tried to do something HTTP/1.1 does not allow in this state."""
