"""Limits on what a peer may send, each with the status that answers its breach."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of a message the parser accepts before it answers with an error."""

    max_request_line: int = 8190
    """Bytes in the request line (or status line); longer is 414."""
    max_header_count: int = 100
    """Header (or trailer) fields in one section; more is 431."""
    max_header_size: int = 16384
    """Bytes in the header (or trailer) section; more is 431."""
    max_body_size: int | None = 1 << 20
    """Bytes of body in one message (``None``: no limit); more is 413."""
    max_chunk_line: int = 4096
    """Bytes in one chunk-size line with its extensions; more is 400."""
