"""Sending NOTIFY (RFC 1996) to a zone's secondaries, sans-IO, with explicit time.

:meth:`Notifier.zone_changed` queues a NOTIFY (with the new SOA in the answer
section) for each configured secondary of the zone; :meth:`Notifier.transmit`
returns the messages due at ``now`` (first at once, then every ``interval`` seconds,
at most ``attempts`` times); :meth:`Notifier.receive` takes responses and ends the
retries for the secondary that acknowledged (same id, QR, opcode NOTIFY, same zone).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ._consts import Opcode, RRType
from ._errors import DnsDecodeError
from ._message import RR, Message, Question, pull_message, push_message
from ._name import Name

__all__ = ["Notifier"]

Target = tuple[str, int]


@dataclass(slots=True)
class _Pending:
    """A NOTIFY not yet acknowledged: its zone, message, id, next send time and sends left."""

    origin: Name
    data: bytes
    ident: int
    due: float
    left: int


class Notifier:
    def __init__(
        self,
        targets: Mapping[Name, Sequence[Target]],
        *,
        interval: float = 3.0,
        attempts: int = 5,
        ident: Callable[[], int] | None = None,
    ) -> None:
        self.targets = {name.key: list(t) for name, t in targets.items()}
        self.interval = interval
        self.attempts = attempts
        self._ident = ident or (lambda: random.SystemRandom().getrandbits(16))
        self._pending: dict[tuple[tuple[bytes, ...], Target], _Pending] = {}
        self.acknowledged: list[tuple[Name, Target]] = []
        """(zone, secondary) pairs that acknowledged a NOTIFY, oldest first."""

    def zone_changed(self, origin: Name, soa: RR, now: float) -> None:
        for target in self.targets.get(origin.key, ()):
            ident = self._ident()
            msg = Message(id=ident, opcode=Opcode.NOTIFY, aa=True,
                          question=(Question(origin, RRType.SOA),), answer=(soa,))  # fmt: skip
            self._pending[(origin.key, target)] = _Pending(
                origin, push_message(msg), ident, now, self.attempts
            )

    def transmit(self, now: float) -> list[tuple[Target, bytes]]:
        out = []
        for (key, target), pending in list(self._pending.items()):
            if pending.due > now:
                continue
            if pending.left <= 0:
                del self._pending[(key, target)]  # the secondary never answered
                continue
            pending.left -= 1
            pending.due = now + self.interval
            out.append((target, pending.data))
        return out

    def get_timer(self) -> float | None:
        return min((p.due for p in self._pending.values()), default=None)

    def receive(self, data: bytes, src: Target) -> bool:
        """A response from ``src``; True when it acknowledged a pending NOTIFY."""
        try:
            msg = pull_message(data)
        except DnsDecodeError:
            return False
        if not msg.qr or msg.opcode != Opcode.NOTIFY or len(msg.question) != 1:
            return False
        key = (msg.question[0].name.key, src)
        pending = self._pending.get(key)
        if pending is None or pending.ident != msg.id:
            return False
        del self._pending[key]
        self.acknowledged.append((pending.origin, src))
        return True
