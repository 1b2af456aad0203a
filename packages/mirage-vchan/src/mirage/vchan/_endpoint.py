"""One end of a vchan over its shared memory, without I/O.

Theory of operation. Each direction is a byte ring with free-running ``u32`` indices
in the shared page: the writer owns ``prod``, the reader owns ``cons``; the bytes
waiting are ``prod - cons`` and the space is ``size - (prod - cons)``. A writer
copies bytes at ``prod & (size - 1)`` (wrapping), then publishes ``prod``; a reader
copies, then publishes ``cons``.

Wake-ups follow libxenvchan: an end that wants to be woken when the peer writes (or
reads) ORs ``WRITE`` (or ``READ``) into the *peer's* notify byte and checks again;
after writing (reading) an end clears that bit in its *own* notify byte and, if it
was set, the caller must signal the event channel. :meth:`Endpoint.write` and
:meth:`Endpoint.read` return whether to signal.

Indices are the peer's word: a ring that claims more bytes than it holds raises
:class:`VchanError`.
"""

from __future__ import annotations

from collections.abc import Callable

from mirage.core.types import FlowClosed
from mirage.xen.words import Words

from ._layout import (
    CLI_LIVE,
    CLI_NOTIFY,
    CONS,
    LEFT,
    PROD,
    RIGHT,
    SRV_LIVE,
    SRV_NOTIFY,
    Live,
    Notify,
)

__all__ = ["Endpoint", "VchanError"]

MASK = 0xFFFFFFFF

Atomic = Callable[[int, int], int]


class VchanError(FlowClosed):
    """The peer broke the protocol (an index beyond the ring); the vchan is closed."""


class _Ring:
    def __init__(self, page: memoryview, shr: int, buffer: memoryview) -> None:
        self.page, self.shr, self.buffer = page, shr, buffer
        self.words = Words(page)
        self.size = len(buffer)

    def get(self, field: int) -> int:
        return self.words.get(self.shr + field)

    def set(self, field: int, value: int) -> None:
        self.words.set(self.shr + field, value)

    def used(self) -> int:
        used = (self.get(PROD) - self.get(CONS)) & MASK
        if used > self.size:
            raise VchanError(f"ring claims {used} bytes of {self.size}")
        return used


class Endpoint:
    """``fetch_and(offset, mask)`` / ``fetch_or(offset, bits)``: atomic byte
    operations on the shared page, from the hypervisor backend."""

    def __init__(
        self,
        page: memoryview,
        left: memoryview,
        right: memoryview,
        *,
        is_server: bool,
        fetch_and: Atomic,
        fetch_or: Atomic,
    ) -> None:
        self.page = page
        self.is_server = is_server
        left_ring, right_ring = _Ring(page, LEFT, left), _Ring(page, RIGHT, right)
        self.rd, self.wr = (left_ring, right_ring) if is_server else (right_ring, left_ring)
        self._fetch_and, self._fetch_or = fetch_and, fetch_or
        self.own_live = SRV_LIVE if is_server else CLI_LIVE
        self.peer_live_at = CLI_LIVE if is_server else SRV_LIVE
        self.own_notify = SRV_NOTIFY if is_server else CLI_NOTIFY
        self.peer_notify = CLI_NOTIFY if is_server else SRV_NOTIFY

    # -- state -------------------------------------------------------------

    def peer_live(self) -> int:
        return self.page[self.peer_live_at]

    def set_live(self, live: Live) -> None:
        self.page[self.own_live] = int(live)

    def data_ready(self) -> int:
        return self.rd.used()

    def buffer_space(self) -> int:
        return self.wr.size - self.wr.used()

    # -- data --------------------------------------------------------------

    def read(self, limit: int) -> tuple[bytes, bool]:
        """Up to ``limit`` waiting bytes, and whether to signal the peer."""
        n = min(limit, self.data_ready())
        if n == 0:
            return b"", False
        ring = self.rd
        cons = ring.get(CONS)
        pos = cons & (ring.size - 1)
        first = min(n, ring.size - pos)
        data = bytes(ring.buffer[pos : pos + first]) + bytes(ring.buffer[: n - first])
        ring.set(CONS, cons + n)
        return data, self.send_notify(Notify.READ)

    def write(self, data: bytes | bytearray | memoryview) -> tuple[int, bool]:
        """Copy as much of ``data`` as fits; ``(bytes written, signal the peer)``."""
        n = min(len(data), self.buffer_space())
        if n == 0:
            return 0, False
        ring = self.wr
        prod = ring.get(PROD)
        pos = prod & (ring.size - 1)
        first = min(n, ring.size - pos)
        ring.buffer[pos : pos + first] = data[:first]
        ring.buffer[: n - first] = data[first:n]
        ring.set(PROD, prod + n)
        return n, self.send_notify(Notify.WRITE)

    # -- notification ----------------------------------------------------------

    def request_notify(self, bit: Notify) -> None:
        """Ask the peer to signal us after its next write (``WRITE``) or read (``READ``)."""
        self._fetch_or(self.peer_notify, int(bit))

    def send_notify(self, bit: Notify) -> bool:
        """Clear ``bit`` in our notify byte; whether the peer had asked for it."""
        return bool(self._fetch_and(self.own_notify, ~int(bit) & 0xFF) & bit)
