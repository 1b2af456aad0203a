"""ARP for IPv4 over Ethernet (RFC 826), with RFC 5227 address conflict detection.

Theory of operation: :class:`ArpCore` is sans-IO. It holds a cache of IP -> MAC
entries that expire ``cache_timeout`` seconds after they were learnt, the queries in
flight (retried every ``retry_interval``, given up after ``retries`` requests), and
the addresses being probed. Every method takes ``now`` and returns a list of actions
for the driver: :class:`ArpSend` (a packet to put on the wire, and where),
:class:`ArpResolved`, :class:`ArpFailed` (a query gave up), :class:`ArpConflict`
(someone else uses an address we probe or own) and :class:`ArpProbed` (a probed
address is free and now ours: it was announced). The driver calls ``handle_timer``
at ``get_timer()``.

Probing (RFC 5227 section 2.1): ``probe(ip)`` sends ``PROBE_NUM`` requests with a
zero sender address, ``probe_interval`` apart; an ARP packet from another host with
that sender address, or another host's probe for it, is a conflict. If none comes
within ``announce_wait`` after the last probe, the address is added and announced
(gratuitous ARP) twice.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._errors import DecodeError

__all__ = [
    "ArpConflict",
    "ArpCore",
    "ArpFailed",
    "ArpPacket",
    "ArpProbed",
    "ArpResolved",
    "ArpSend",
    "OP_REPLY",
    "OP_REQUEST",
]

OP_REQUEST = 1
OP_REPLY = 2
_PACKET = struct.Struct("!HHBBH6s4s6s4s")
_ZERO_IP = b"\0\0\0\0"
_ZERO_MAC = b"\0" * 6
BROADCAST = b"\xff" * 6
PROBE_NUM = 3
ANNOUNCE_NUM = 2


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An ARP packet for IPv4 over Ethernet: operation, sender and target addresses."""

    op: int
    sha: bytes
    spa: bytes
    tha: bytes
    tpa: bytes

    @classmethod
    def decode(cls, data: bytes) -> ArpPacket:
        if len(data) < _PACKET.size:
            raise DecodeError("arp", "shorter than an Ethernet/IPv4 ARP packet")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _PACKET.unpack_from(data)
        if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
            raise DecodeError("arp", f"not Ethernet/IPv4 ({htype}, {ptype:#x}, {hlen}, {plen})")
        if op not in (OP_REQUEST, OP_REPLY):
            raise DecodeError("arp", f"operation {op}")
        return cls(op, sha, spa, tha, tpa)

    def encode(self) -> bytes:
        return _PACKET.pack(1, 0x0800, 6, 4, self.op, self.sha, self.spa, self.tha, self.tpa)


@dataclass(frozen=True, slots=True)
class ArpSend:
    """Send ``packet`` to the Ethernet address ``dst``."""

    packet: ArpPacket
    dst: bytes


@dataclass(frozen=True, slots=True)
class ArpResolved:
    """``ip`` is at ``mac``: what waited for it may be sent."""

    ip: bytes
    mac: bytes


@dataclass(frozen=True, slots=True)
class ArpFailed:
    """``ip`` did not answer our requests: what waited for it is dropped."""

    ip: bytes


@dataclass(frozen=True, slots=True)
class ArpConflict:
    """Another host (``mac``) uses ``ip``, an address of ours or one we probe."""

    ip: bytes
    mac: bytes


@dataclass(frozen=True, slots=True)
class ArpProbed:
    """No host answered our probes for ``ip`` (RFC 5227): it is ours now."""

    ip: bytes


ArpAction = ArpSend | ArpResolved | ArpFailed | ArpConflict | ArpProbed


@dataclass(slots=True)
class _Pending:
    """An address being resolved: requests sent so far and when to send the next."""

    tries: int
    next_at: float


@dataclass(slots=True)
class _Probe:
    """An address being probed, then announced: counts and when to act next."""

    sent: int
    next_at: float
    announced: int = 0
    done_probing: bool = False


@dataclass(slots=True)
class ArpStats:
    """Counters of the ARP core."""

    requests_in: int = 0
    replies_in: int = 0
    ignored: int = 0
    conflicts: int = 0
    pending_full: int = 0
    """Queries not sent because ``max_pending`` addresses were being resolved."""


class ArpCore:
    def __init__(
        self,
        mac: bytes,
        ips: list[bytes] | None = None,
        *,
        cache_timeout: float = 60.0,
        retry_interval: float = 1.0,
        retries: int = 3,
        probe_interval: float = 1.0,
        announce_wait: float = 2.0,
        max_entries: int = 1024,
        max_pending: int = 256,
    ) -> None:
        self.mac = mac
        self.ips: list[bytes] = list(ips or [])
        self.cache_timeout = cache_timeout
        self.retry_interval = retry_interval
        self.retries = retries
        self.probe_interval = probe_interval
        self.announce_wait = announce_wait
        self.max_entries = max_entries
        self.max_pending = max_pending
        self._cache: dict[bytes, tuple[bytes, float]] = {}
        self._pending: dict[bytes, _Pending] = {}
        self._probes: dict[bytes, _Probe] = {}
        self.stats = ArpStats()

    # -- queries -------------------------------------------------------------------

    def lookup(self, ip: bytes, now: float) -> bytes | None:
        entry = self._cache.get(ip)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def query(self, ip: bytes, now: float) -> tuple[bytes | None, list[ArpAction]]:
        """The MAC of ``ip`` if known; otherwise a request goes out (once per interval)."""
        mac = self.lookup(ip, now)
        if mac is not None:
            return mac, []
        if ip in self._pending:
            return None, []
        if len(self._pending) >= self.max_pending:
            self.stats.pending_full += 1  # e.g. replies to a flood of spoofed sources
            return None, []
        self._pending[ip] = _Pending(1, now + self.retry_interval)
        return None, [self._request(ip)]

    def resolving(self, ip: bytes) -> bool:
        """Whether a query for ``ip`` is outstanding."""
        return ip in self._pending

    def _request(self, ip: bytes, sender: bytes | None = None) -> ArpSend:
        spa = sender if sender is not None else (self.ips[0] if self.ips else _ZERO_IP)
        return ArpSend(ArpPacket(OP_REQUEST, self.mac, spa, _ZERO_MAC, ip), BROADCAST)

    def gratuitous(self) -> list[ArpAction]:
        """Announce every address we own (requests with sender = target)."""
        return [
            ArpSend(ArpPacket(OP_REQUEST, self.mac, ip, _ZERO_MAC, ip), BROADCAST)
            for ip in self.ips
        ]

    def probe(self, ip: bytes, now: float) -> list[ArpAction]:
        """Start RFC 5227 probing of ``ip`` before using it."""
        self._probes[ip] = _Probe(1, now + self.probe_interval)
        return [self._request(ip, _ZERO_IP)]

    def entries(self) -> dict[bytes, bytes]:
        return {ip: mac for ip, (mac, _) in self._cache.items()}

    def add_static(self, ip: bytes, mac: bytes) -> None:
        self._cache[ip] = (mac, float("inf"))

    # -- input ---------------------------------------------------------------------

    def input(self, packet: ArpPacket, now: float) -> list[ArpAction]:
        actions: list[ArpAction] = []
        if packet.sha == self.mac:
            return actions  # our own, looped back
        probe = self._probes.get(packet.spa) or (
            self._probes.get(packet.tpa) if packet.spa == _ZERO_IP else None
        )
        if probe is not None:
            ip = packet.spa if packet.spa in self._probes else packet.tpa
            del self._probes[ip]
            self.stats.conflicts += 1
            return [ArpConflict(ip, packet.sha)]
        if packet.spa in self.ips:
            self.stats.conflicts += 1
            actions.append(ArpConflict(packet.spa, packet.sha))
            return actions
        if packet.op == OP_REQUEST:
            self.stats.requests_in += 1
        else:
            self.stats.replies_in += 1
        if packet.spa != _ZERO_IP:
            # RFC 826: update an entry we have; learn from requests aimed at us and
            # from replies.
            known = packet.spa in self._cache
            for_us = packet.tpa in self.ips
            if known or for_us or packet.spa in self._pending:
                self._learn(packet.spa, packet.sha, now)
                if packet.spa in self._pending:
                    del self._pending[packet.spa]
                actions.append(ArpResolved(packet.spa, packet.sha))
        if packet.op == OP_REQUEST and packet.tpa in self.ips:
            reply = ArpPacket(OP_REPLY, self.mac, packet.tpa, packet.sha, packet.spa)
            actions.append(ArpSend(reply, packet.sha))
        elif not actions:
            self.stats.ignored += 1
        return actions

    def _learn(self, ip: bytes, mac: bytes, now: float) -> None:
        if ip not in self._cache and len(self._cache) >= self.max_entries:
            oldest = min(self._cache, key=lambda k: self._cache[k][1])
            del self._cache[oldest]
        self._cache[ip] = (mac, now + self.cache_timeout)

    # -- time ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        times = [p.next_at for p in self._pending.values()]
        times += [p.next_at for p in self._probes.values()]
        finite = [t for _, t in self._cache.values() if t != float("inf")]
        if finite:
            times.append(min(finite))
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[ArpAction]:
        actions: list[ArpAction] = []
        for ip in [ip for ip, (_, t) in self._cache.items() if t <= now]:
            del self._cache[ip]
        for ip, pending in list(self._pending.items()):
            if pending.next_at > now:
                continue
            if pending.tries >= self.retries:
                del self._pending[ip]
                actions.append(ArpFailed(ip))
            else:
                pending.tries += 1
                pending.next_at = now + self.retry_interval
                actions.append(self._request(ip))
        for ip, probe in list(self._probes.items()):
            if probe.next_at > now:
                continue
            if probe.sent < PROBE_NUM:
                probe.sent += 1
                wait = self.probe_interval if probe.sent < PROBE_NUM else self.announce_wait
                probe.next_at = now + wait
                actions.append(self._request(ip, _ZERO_IP))
            elif probe.announced < ANNOUNCE_NUM:
                if probe.announced == 0:
                    if ip not in self.ips:
                        self.ips.append(ip)
                    actions.append(ArpProbed(ip))
                probe.announced += 1
                probe.next_at = now + self.announce_wait
                actions.append(
                    ArpSend(ArpPacket(OP_REQUEST, self.mac, ip, _ZERO_MAC, ip), BROADCAST)
                )
            else:
                del self._probes[ip]
        return actions
