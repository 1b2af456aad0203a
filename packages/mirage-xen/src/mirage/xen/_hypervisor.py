"""What the protocols need from a hypervisor: grant tables and event channels.

A *domain* (:class:`Domain`) shares pages with another domain by granting them
(:meth:`GrantTable.share`, which returns grant references and the local memory) and
maps pages granted to it (:meth:`GrantTable.map`). Event channels connect a port of
one domain to a port of another: one side allocates an unbound port for a named
remote domain, the other binds to it; then either side may ``notify`` its port, which
makes the peer's port pending once (notifications coalesce, as in Xen).

The simulated backend (:mod:`mirage.xen.sim`) implements these interfaces across
processes of one machine; a backend over Linux's ``/dev/xen`` devices would be the
second implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Domain",
    "EventChannels",
    "Grant",
    "GrantTable",
    "HypervisorError",
    "Mapping",
    "PAGE_SIZE",
]

PAGE_SIZE = 4096


class HypervisorError(Exception):
    """A grant or event-channel operation the hypervisor refuses (bad ref, bad port)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Pages this domain granted to ``remote``: ``refs`` and their memory, in order."""

    remote: int
    refs: tuple[int, ...]
    memory: memoryview


@dataclass(frozen=True, slots=True)
class Mapping:
    """Foreign pages mapped into this domain."""

    remote: int
    refs: tuple[int, ...]
    memory: memoryview


class GrantTable(Protocol):
    def share(self, remote: int, count: int, writable: bool = True) -> Grant:
        """Allocate ``count`` zeroed pages and grant them to ``remote``."""
        ...

    def end_access(self, grant: Grant) -> None: ...

    def map(self, remote: int, refs: Sequence[int], writable: bool = True) -> Mapping:
        """Map the pages ``remote`` granted to us under ``refs``, contiguously."""
        ...

    def unmap(self, mapping: Mapping) -> None: ...

    def copy_from(self, remote: int, ref: int, offset: int, length: int) -> bytes:
        """A grant copy: ``length`` bytes at ``offset`` of the page ``remote`` granted
        us as ``ref``, without mapping it (what Linux's netback does per packet)."""
        ...

    def copy_to(self, remote: int, ref: int, offset: int, data: bytes) -> None:
        """A grant copy into the page ``remote`` granted us writable as ``ref``."""
        ...

    def fetch_and(self, region: Grant | Mapping, offset: int, mask: int) -> int:
        """Atomically ``byte &= mask`` at ``offset`` of ``region``; the old byte."""
        ...

    def fetch_or(self, region: Grant | Mapping, offset: int, bits: int) -> int:
        """Atomically ``byte |= bits`` at ``offset`` of ``region``; the old byte."""
        ...

    def unmap_notify(self, region: Grant | Mapping, offset: int, port: int) -> None:
        """When this domain dies, zero byte ``offset`` of ``region`` and notify ``port``."""
        ...


class EventChannels(Protocol):
    def bind_unbound_port(self, remote: int) -> int:
        """A new local port that ``remote`` may bind to."""
        ...

    def bind_interdomain(self, remote: int, remote_port: int) -> int:
        """A new local port connected to ``remote_port`` of ``remote``."""
        ...

    def notify(self, port: int) -> None:
        """Make the peer's end of ``port`` pending."""
        ...

    def unbind(self, port: int) -> None: ...

    def pending(self, port: int) -> bool:
        """Whether ``port`` was notified since the last call (and clear it)."""
        ...

    async def wait(self, port: int) -> None:
        """Wait until ``port`` is notified (returns at once if already pending); clears it."""
        ...


class Domain(Protocol):
    @property
    def domid(self) -> int: ...

    @property
    def gnttab(self) -> GrantTable: ...

    @property
    def evtchn(self) -> EventChannels: ...

    def close(self) -> None: ...
