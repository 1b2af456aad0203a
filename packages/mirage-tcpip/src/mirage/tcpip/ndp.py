"""IPv6 Neighbor Discovery (RFC 4861), duplicate address detection (RFC 4862 5.4) and
stateless address autoconfiguration (RFC 4862 5.5) as a sans-IO core.

Every method takes ``now`` and returns a list of actions: :class:`NdpSend` (an ICMPv6
message for the driver to send with hop limit 255), :class:`NdpResolved` /
:class:`NdpFailed` (a neighbour's link-layer address, or none after ``retries``
solicitations), :class:`NdpAddressReady` (a tentative address passed DAD and may be
used) and :class:`NdpConflict` (DAD found it in use; it is dropped).

Addresses start tentative: ``add_address`` sends a neighbour solicitation from the
unspecified address to the solicited-node group and waits ``retrans_timer`` seconds
per transmission. ``solicit_routers`` sends up to ``rs_count`` router solicitations;
a router advertisement gives default routers (with lifetimes), on-link prefixes, the
link MTU, and, for each autonomous /64 prefix, an address made of the prefix and our
modified EUI-64 interface identifier, which goes through DAD in turn.

Neighbour Unreachability Detection (RFC 4861 7.3): a resolved neighbour is REACHABLE
for ``reachable_time`` seconds after a solicited advertisement or an upper-layer
confirmation (``confirm``: the stack calls it when TCP sees new data acknowledged),
then STALE; the first use of a STALE entry starts DELAY, and if nothing confirms
the neighbour within ``delay_first_probe`` seconds, PROBE sends up to ``retries``
unicast solicitations ``retrans_timer`` apart. No answer: the entry is deleted,
:class:`NdpFailed` says so, and a router that failed is no longer a default router.
Advertisements update entries as RFC 4861 7.2.5 says (the override flag, solicited
or not), and link-layer addresses learnt from solicitations, router advertisements
and redirects enter STALE.

Redirects (RFC 4861 8): a valid redirect (from the link-local address of the router
we use for that destination, hop limit 255) sends later packets for the destination
to the better first hop it names (``next_hop``); the table is bounded.

Not implemented: address lifetimes (SLAAC addresses do not expire), privacy
addresses (RFC 8981), and stable opaque identifiers (RFC 7217).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .icmpv6 import (
    NA_OVERRIDE,
    NA_ROUTER,
    NA_SOLICITED,
    TYPE_NEIGHBOR_ADVERTISEMENT,
    TYPE_NEIGHBOR_SOLICITATION,
    TYPE_REDIRECT,
    TYPE_ROUTER_ADVERTISEMENT,
    TYPE_ROUTER_SOLICITATION,
    Icmpv6Message,
    NdpMessage,
)
from .ipv6 import (
    ALL_NODES,
    ALL_ROUTERS,
    UNSPECIFIED,
    eui64_interface_id,
    is_link_local,
    multicast_mac,
    solicited_node,
)

__all__ = [
    "NdpAction",
    "NdpAddressReady",
    "NdpConflict",
    "NdpCore",
    "NdpFailed",
    "NdpResolved",
    "NdpSend",
    "NeighborState",
]


@dataclass(frozen=True, slots=True)
class NdpSend:
    """Send the ICMPv6 ``message`` from ``src`` to ``dst``, at the Ethernet address ``dst_mac``."""

    src: bytes
    dst: bytes
    dst_mac: bytes
    message: Icmpv6Message


@dataclass(frozen=True, slots=True)
class NdpResolved:
    """The neighbor ``ip`` is at the Ethernet address ``mac``."""

    ip: bytes
    mac: bytes


@dataclass(frozen=True, slots=True)
class NdpFailed:
    """The neighbor ``ip`` did not answer: resolution or unreachability detection gave up."""

    ip: bytes


@dataclass(frozen=True, slots=True)
class NdpAddressReady:
    """Duplicate address detection passed: ``address`` may be used."""

    address: bytes
    prefix_len: int


@dataclass(frozen=True, slots=True)
class NdpConflict:
    """Another node claims ``address`` (from ``mac``, when known)."""

    address: bytes
    mac: bytes | None


NdpAction = NdpSend | NdpResolved | NdpFailed | NdpAddressReady | NdpConflict


class NeighborState(Enum):
    """RFC 4861 7.3.2 (INCOMPLETE is a query in flight, not a cache entry here)."""

    REACHABLE = "reachable"
    STALE = "stale"
    DELAY = "delay"
    PROBE = "probe"


@dataclass(slots=True)
class _Neighbor:
    """A neighbor cache entry: the link-layer address, reachability state and its deadline."""

    mac: bytes
    state: NeighborState
    deadline: float
    """REACHABLE: until when; DELAY: when probing starts; PROBE: the next probe."""
    probes: int = 0


@dataclass(slots=True)
class _Tentative:
    """An address under duplicate address detection: solicitations sent and the next deadline."""

    prefix_len: int
    sent: int
    deadline: float


@dataclass(slots=True)
class _Pending:
    """An address resolution in progress: solicitations sent and the next deadline."""

    tries: int
    deadline: float


@dataclass(slots=True)
class NdpStats:
    """Counters of neighbor discovery."""

    solicitations_in: int = 0
    advertisements_in: int = 0
    router_advertisements_in: int = 0
    ignored: int = 0
    conflicts: int = 0
    redirects_in: int = 0
    nud_probes: int = 0
    nud_failures: int = 0


class NdpCore:
    def __init__(
        self,
        mac: bytes,
        *,
        retrans_timer: float = 1.0,
        retries: int = 3,
        reachable_time: float = 30.0,
        dad_transmits: int = 1,
        rs_count: int = 3,
        rs_interval: float = 4.0,
        max_entries: int = 1024,
        delay_first_probe: float = 5.0,
        max_redirects: int = 256,
    ) -> None:
        self.mac = mac
        self.delay_first_probe = delay_first_probe
        self.max_redirects = max_redirects
        self.redirects: dict[bytes, bytes] = {}
        """Destinations redirected to a better first hop (RFC 4861 8.3)."""
        self.retrans_timer = retrans_timer
        self.retries = retries
        self.reachable_time = reachable_time
        self.dad_transmits = dad_transmits
        self.rs_count = rs_count
        self.rs_interval = rs_interval
        self.max_entries = max_entries
        self.addresses: dict[bytes, int] = {}
        """Usable addresses and their prefix lengths."""
        self.tentative: dict[bytes, _Tentative] = {}
        self.routers: dict[bytes, float] = {}
        """Default routers (link-local addresses) and when each expires."""
        self.prefixes: dict[tuple[bytes, int], float] = {}
        """On-link prefixes (16 bytes, length) and when each expires."""
        self.mtu: int | None = None
        self._cache: dict[bytes, _Neighbor] = {}
        self._pending: dict[bytes, _Pending] = {}
        self._rs_sent = 0
        self._rs_at: float | None = None
        self.stats = NdpStats()

    # -- addresses and routers ----------------------------------------------------------

    def add_address(self, address: bytes, prefix_len: int, now: float) -> list[NdpAction]:
        """Start DAD for ``address``; :class:`NdpAddressReady` follows if nobody has it."""
        if address in self.addresses or address in self.tentative:
            return []
        if self.dad_transmits <= 0:
            self.addresses[address] = prefix_len
            return [NdpAddressReady(address, prefix_len)]
        self.tentative[address] = _Tentative(prefix_len, 1, now + self.retrans_timer)
        return [self._dad_probe(address)]

    def _dad_probe(self, address: bytes) -> NdpSend:
        group = solicited_node(address)
        message = NdpMessage(TYPE_NEIGHBOR_SOLICITATION, address).to_icmp()
        return NdpSend(UNSPECIFIED, group, multicast_mac(group), message)

    def groups(self) -> set[bytes]:
        """The multicast groups we listen to: all-nodes and each solicited-node group."""
        return {ALL_NODES} | {solicited_node(a) for a in (*self.addresses, *self.tentative)}

    @property
    def link_local(self) -> bytes | None:
        return next((a for a in self.addresses if is_link_local(a)), None)

    def source_for(self, dst: bytes) -> bytes | None:
        """Our address to send to ``dst`` from (RFC 6724 in brief: same scope)."""
        if is_link_local(dst) or dst[0] == 0xFF:
            return self.link_local
        for address in self.addresses:
            if not is_link_local(address):
                return address
        return self.link_local

    def default_router(self, now: float) -> bytes | None:
        for router, expires in self.routers.items():
            if expires > now:
                return router
        return None

    def next_hop(self, dst: bytes, now: float) -> bytes:
        """Where a packet for ``dst`` goes on the link: a redirect's target, ``dst``
        itself if on link, else a default router (or ``dst``, if there is none)."""
        target = self.redirects.get(dst)
        if target is not None:
            return target
        if self.on_link(dst, now):
            return dst
        return self.default_router(now) or dst

    def on_link(self, dst: bytes, now: float) -> bool:
        if is_link_local(dst):
            return True
        for (prefix, length), expires in self.prefixes.items():
            if expires > now and _prefix_match(prefix, dst, length):
                return True
        return any(
            not is_link_local(a) and _prefix_match(a, dst, n) for a, n in self.addresses.items()
        )

    def solicit_routers(self, now: float) -> list[NdpAction]:
        self._rs_sent = 0
        return self._send_rs(now)

    def _send_rs(self, now: float) -> list[NdpAction]:
        self._rs_sent += 1
        self._rs_at = now + self.rs_interval if self._rs_sent < self.rs_count else None
        src = self.link_local or UNSPECIFIED
        message = NdpMessage(
            TYPE_ROUTER_SOLICITATION, source_ll=self.mac if src != UNSPECIFIED else None
        ).to_icmp()
        return [NdpSend(src, ALL_ROUTERS, multicast_mac(ALL_ROUTERS), message)]

    # -- neighbours ----------------------------------------------------------------------

    def lookup(self, ip: bytes, now: float) -> bytes | None:
        """The link-layer address of ``ip`` if cached (in any NUD state)."""
        entry = self._cache.get(ip)
        return entry.mac if entry is not None else None

    def state(self, ip: bytes, now: float) -> NeighborState | None:
        entry = self._cache.get(ip)
        if entry is None:
            return None
        if entry.state is NeighborState.REACHABLE and entry.deadline <= now:
            entry.state = NeighborState.STALE
        return entry.state

    def query(self, ip: bytes, now: float) -> tuple[bytes | None, list[NdpAction]]:
        """The link-layer address to send to ``ip`` (a use, for NUD), or a
        solicitation when it is unknown."""
        entry = self._cache.get(ip)
        if entry is not None:
            if self.state(ip, now) is NeighborState.STALE:
                entry.state = NeighborState.DELAY
                entry.deadline = now + self.delay_first_probe
            return entry.mac, []
        if ip in self._pending:
            return None, []
        self._pending[ip] = _Pending(1, now + self.retrans_timer)
        return None, self._solicit(ip)

    def confirm(self, ip: bytes, now: float) -> None:
        """Upper-layer proof that ``ip`` is reachable (RFC 4861 7.3.1), e.g. TCP
        seeing new data acknowledged."""
        entry = self._cache.get(ip)
        if entry is not None:
            entry.state = NeighborState.REACHABLE
            entry.deadline = now + self.reachable_time
            entry.probes = 0

    def _solicit(self, ip: bytes, unicast_to: bytes | None = None) -> list[NdpAction]:
        src = self.source_for(ip)
        if src is None:
            return []
        message = NdpMessage(TYPE_NEIGHBOR_SOLICITATION, ip, source_ll=self.mac).to_icmp()
        if unicast_to is not None:
            return [NdpSend(src, ip, unicast_to, message)]
        group = solicited_node(ip)
        return [NdpSend(src, group, multicast_mac(group), message)]

    def _learn(
        self,
        ip: bytes,
        mac: bytes,
        now: float,
        *,
        solicited: bool = False,
        override: bool = True,
        advert: bool = False,
    ) -> list[NdpAction]:
        """Record ``mac`` for ``ip``: from an advertisement (``advert``: RFC 4861
        7.2.5, with its solicited and override flags) or from the source link-layer
        option of another message (7.2.3, 6.3.4, 8.3: new or changed means STALE)."""
        entry = self._cache.get(ip)
        was_pending = self._pending.pop(ip, None) is not None
        if was_pending or entry is None:
            if entry is None and len(self._cache) >= self.max_entries:
                self._evict()
            fresh = advert and solicited
            state = NeighborState.REACHABLE if fresh else NeighborState.STALE
            self._cache[ip] = _Neighbor(mac, state, now + self.reachable_time)
            return [NdpResolved(ip, mac)] if was_pending else []
        changed = mac != entry.mac
        if not advert:
            if changed:
                entry.mac = mac
                entry.state = NeighborState.STALE
            return []
        if changed and not override:
            if self.state(ip, now) is NeighborState.REACHABLE:
                entry.state = NeighborState.STALE
            return []
        entry.mac = mac
        if solicited:
            entry.state = NeighborState.REACHABLE
            entry.deadline = now + self.reachable_time
            entry.probes = 0
        elif changed:
            entry.state = NeighborState.STALE
        return []

    def _evict(self) -> None:
        """Make room: a STALE entry (the least useful) if there is one, else the
        first cached."""
        victim = next(
            (ip for ip, e in self._cache.items() if e.state is NeighborState.STALE),
            next(iter(self._cache)),
        )
        del self._cache[victim]

    # -- input ----------------------------------------------------------------------------

    def input(
        self, src: bytes, dst: bytes, hop_limit: int, message: Icmpv6Message, now: float
    ) -> list[NdpAction]:
        """An NDP message (the caller has checked the ICMPv6 checksum)."""
        if hop_limit != 255:
            self.stats.ignored += 1  # RFC 4861 7.1.1: not from the link
            return []
        ndp = NdpMessage.parse(message)
        if ndp.type == TYPE_NEIGHBOR_SOLICITATION:
            return self._on_ns(src, dst, ndp, now)
        if ndp.type == TYPE_NEIGHBOR_ADVERTISEMENT:
            return self._on_na(ndp, now)
        if ndp.type == TYPE_ROUTER_ADVERTISEMENT:
            return self._on_ra(src, ndp, now)
        if ndp.type == TYPE_REDIRECT:
            return self._on_redirect(src, ndp, now)
        self.stats.ignored += 1  # router solicitations: we are not a router
        return []

    def _on_ns(self, src: bytes, dst: bytes, ns: NdpMessage, now: float) -> list[NdpAction]:
        self.stats.solicitations_in += 1
        target = ns.target
        if target in self.tentative:
            if src == UNSPECIFIED and ns.source_ll != self.mac:
                # Someone else is doing DAD for the same address (RFC 4862 5.4.3).
                del self.tentative[target]
                self.stats.conflicts += 1
                return [NdpConflict(target, None)]
            return []
        if target not in self.addresses:
            self.stats.ignored += 1
            return []
        actions: list[NdpAction] = []
        if src == UNSPECIFIED:
            # A DAD probe for an address we own: defend it to all nodes.
            flags, to, to_mac = NA_OVERRIDE, ALL_NODES, multicast_mac(ALL_NODES)
        else:
            if ns.source_ll is None:
                if dst[0] == 0xFF:
                    self.stats.ignored += 1  # RFC 4861 7.1.1
                    return []
                mac = self.lookup(src, now)
                if mac is None:
                    return self._pending_reply(src, now)
            else:
                mac = ns.source_ll
                actions += self._learn(src, mac, now)
            flags, to, to_mac = NA_SOLICITED | NA_OVERRIDE, src, mac
        na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, target, flags, target_ll=self.mac)
        actions.append(NdpSend(target, to, to_mac, na.to_icmp()))
        return actions

    def _pending_reply(self, src: bytes, now: float) -> list[NdpAction]:
        _, actions = self.query(src, now)
        return actions

    def _on_na(self, na: NdpMessage, now: float) -> list[NdpAction]:
        self.stats.advertisements_in += 1
        target = na.target
        if target in self.tentative or target in self.addresses:
            if na.target_ll == self.mac:
                return []
            self.stats.conflicts += 1
            if target in self.tentative:
                del self.tentative[target]
                return [NdpConflict(target, na.target_ll)]
            return [NdpConflict(target, na.target_ll)]  # in use elsewhere: say so, keep it
        if not na.flags & NA_ROUTER and target in self.routers:
            del self.routers[target]  # RFC 4861 7.2.5: no longer a router
        mac = na.target_ll
        entry = self._cache.get(target)
        if mac is None:
            if entry is None or not na.flags & NA_SOLICITED:
                return []
            mac = entry.mac  # a solicited answer to a unicast probe may omit it
        if target in self._pending or entry is not None:
            return self._learn(
                target,
                mac,
                now,
                solicited=bool(na.flags & NA_SOLICITED),
                override=bool(na.flags & NA_OVERRIDE),
                advert=True,
            )
        return []

    def _on_redirect(self, src: bytes, redirect: NdpMessage, now: float) -> list[NdpAction]:
        """RFC 4861 8.1 checks, then 8.3: use the target for the destination."""
        target, destination = redirect.target, redirect.destination
        if (
            not is_link_local(src)
            or destination[:1] == b"\xff"
            or not (is_link_local(target) or target == destination)
            or self.next_hop(destination, now) != src
        ):
            self.stats.ignored += 1
            return []
        self.stats.redirects_in += 1
        if target == destination:
            self.redirects.pop(destination, None)  # on link: the destination itself
        if destination not in self.redirects and len(self.redirects) >= self.max_redirects:
            del self.redirects[next(iter(self.redirects))]
        self.redirects[destination] = target
        if redirect.target_ll is not None:
            return self._learn(target, redirect.target_ll, now)
        return []

    def _on_ra(self, src: bytes, ra: NdpMessage, now: float) -> list[NdpAction]:
        if not is_link_local(src):
            self.stats.ignored += 1  # RFC 4861 6.1.2
            return []
        self.stats.router_advertisements_in += 1
        self._rs_at = None
        actions: list[NdpAction] = []
        if ra.source_ll is not None:
            actions += self._learn(src, ra.source_ll, now)
        if ra.router_lifetime:
            self.routers[src] = now + ra.router_lifetime
        else:
            self.routers.pop(src, None)
        if ra.mtu is not None and ra.mtu >= 1280:
            self.mtu = ra.mtu
        for p in ra.prefixes:
            if is_link_local(p.prefix) or p.preferred_lifetime > p.valid_lifetime:
                continue  # RFC 4862 5.5.3 a) and c)
            key = (_masked(p.prefix, p.length), p.length)
            if p.on_link:
                if p.valid_lifetime:
                    self.prefixes[key] = now + p.valid_lifetime
                else:
                    self.prefixes.pop(key, None)
            if p.autonomous and p.length == 64 and p.valid_lifetime:
                address = p.prefix[:8] + eui64_interface_id(self.mac)
                actions += self.add_address(address, 64, now)
        return actions

    # -- timers -----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        times = [t.deadline for t in self.tentative.values()]
        times += [p.deadline for p in self._pending.values()]
        times += [e.deadline for e in self._cache.values() if e.state in _TIMED]
        if self._rs_at is not None:
            times.append(self._rs_at)
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[NdpAction]:
        actions: list[NdpAction] = []
        for address, t in list(self.tentative.items()):
            if t.deadline > now:
                continue
            if t.sent < self.dad_transmits:
                t.sent += 1
                t.deadline = now + self.retrans_timer
                actions.append(self._dad_probe(address))
            else:
                del self.tentative[address]
                self.addresses[address] = t.prefix_len
                actions.append(NdpAddressReady(address, t.prefix_len))
        for ip, p in list(self._pending.items()):
            if p.deadline > now:
                continue
            if p.tries >= self.retries:
                del self._pending[ip]
                actions.append(NdpFailed(ip))
            else:
                p.tries += 1
                p.deadline = now + self.retrans_timer
                actions += self._solicit(ip)
        for ip, entry in list(self._cache.items()):
            if entry.state not in _TIMED or entry.deadline > now:
                continue
            if entry.state is NeighborState.PROBE and entry.probes >= self.retries:
                del self._cache[ip]  # RFC 4861 7.3.3: unreachable
                self.routers.pop(ip, None)
                for dst in [d for d, t in self.redirects.items() if t == ip]:
                    del self.redirects[dst]
                self.stats.nud_failures += 1
                actions.append(NdpFailed(ip))
                continue
            entry.state = NeighborState.PROBE
            entry.probes += 1
            entry.deadline = now + self.retrans_timer
            self.stats.nud_probes += 1
            actions += self._solicit(ip, unicast_to=entry.mac)
        if self._rs_at is not None and self._rs_at <= now:
            actions += self._send_rs(now)
        return actions


_TIMED = (NeighborState.DELAY, NeighborState.PROBE)


def _masked(address: bytes, length: int) -> bytes:
    value = int.from_bytes(address, "big")
    mask = ((1 << 128) - 1) ^ ((1 << (128 - min(length, 128))) - 1)
    return (value & mask).to_bytes(16, "big")


def _prefix_match(prefix: bytes, address: bytes, length: int) -> bool:
    return _masked(prefix, length) == _masked(address, length)
