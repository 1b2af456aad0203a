"""DHCPv4 client (RFC 2131, options of RFC 2132): codec and a sans-IO client core.

:class:`DhcpMessage` is the BOOTP message with its options; decoding is total (bad
input raises :class:`~mirage.tcpip.DecodeError`) and the option accessors return
``None`` for an absent or malformed option rather than raising.

:class:`DhcpClient` is the client state machine of RFC 2131 section 4.4 with explicit
time: INIT -> SELECTING (DISCOVER, the first OFFER wins) -> REQUESTING (REQUEST) ->
BOUND (ACK) -> RENEWING at T1 (unicast REQUEST to the server) -> REBINDING at T2
(broadcast REQUEST) -> back to INIT when the lease expires or a NAK arrives.
Retransmissions back off exponentially (4 s, 8 s, ... up to 64 s, each randomised by
up to one second, section 4.1); in RENEWING and REBINDING the client waits half the
time remaining until T2 (resp. the end of the lease), at least ``min_renew_wait``.
Every method takes ``now`` and returns a list of actions: :class:`DhcpSend` (a
message for the driver to send from port 68 to port 67 of ``dst``), :class:`DhcpBound`
(configure this lease) and :class:`DhcpUnbound` (the address may no longer be used).

The driver checks a new lease's address before using it (RFC 2131 3.1.5; the direct
stack probes it with ARP, RFC 5227) and calls ``decline`` if it is in use: a DECLINE
goes to the server and discovery starts again after ``decline_wait`` seconds.

INIT-REBOOT (RFC 2131 3.2 and 4.4.2): ``start(now, previous=address)`` asks the
servers to confirm an address the client had before (a broadcast REQUEST with the
requested address and no server identifier, state REBOOTING). An ACK binds the
lease at once; a NAK, or no answer after ``request_retries`` REQUESTs, starts
discovery instead (RFC 2131 allows keeping an unexpired lease then; this client
does not remember leases across restarts, so it asks again).

Not implemented: relay agents (``giaddr``), option overload (option 52), and
DHCPINFORM.
"""

from __future__ import annotations

import enum
import ipaddress
import random
import struct
from dataclasses import dataclass

from ._errors import DecodeError

__all__ = [
    "ACK",
    "CLIENT_PORT",
    "DECLINE",
    "DISCOVER",
    "NAK",
    "OFFER",
    "RELEASE",
    "REQUEST",
    "SERVER_PORT",
    "DhcpAction",
    "DhcpBound",
    "DhcpClient",
    "DhcpConfig",
    "DhcpMessage",
    "DhcpSend",
    "DhcpState",
    "DhcpUnbound",
    "Lease",
]

CLIENT_PORT = 68
SERVER_PORT = 67

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)

BOOTREQUEST = 1
BOOTREPLY = 2
FLAG_BROADCAST = 0x8000
MAGIC = b"\x63\x82\x53\x63"

OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOSTNAME = 12
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMETER_LIST = 55
OPT_MAX_SIZE = 57
OPT_RENEWAL_TIME = 58
OPT_REBINDING_TIME = 59
OPT_CLIENT_ID = 61
OPT_END = 255

ZERO = b"\x00\x00\x00\x00"
BROADCAST_IP = b"\xff\xff\xff\xff"

_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_FIXED_LEN = _FIXED.size  # 236


def _addresses(value: bytes | None) -> tuple[bytes, ...] | None:
    if value is None or not value or len(value) % 4:
        return None
    return tuple(value[i : i + 4] for i in range(0, len(value), 4))


def _u32(value: bytes | None) -> int | None:
    if value is None or len(value) != 4:
        return None
    return int.from_bytes(value, "big")


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """A DHCP message. ``options`` holds (code, value) pairs in order, each code once
    (split options, RFC 3396, are joined on decode); pad and end are implicit."""

    op: int
    xid: int
    chaddr: bytes
    options: tuple[tuple[int, bytes], ...] = ()
    ciaddr: bytes = ZERO
    yiaddr: bytes = ZERO
    siaddr: bytes = ZERO
    giaddr: bytes = ZERO
    secs: int = 0
    flags: int = 0
    hops: int = 0

    @classmethod
    def decode(cls, data: bytes) -> DhcpMessage:
        if len(data) < _FIXED_LEN + 4:
            raise DecodeError("dhcp", "shorter than a BOOTP header and magic cookie")
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, _, _) = (
            _FIXED.unpack_from(data)
        )
        if op not in (BOOTREQUEST, BOOTREPLY):
            raise DecodeError("dhcp", f"unknown op {op}")
        if htype != 1 or hlen != 6:
            raise DecodeError("dhcp", f"hardware type {htype}/{hlen} is not Ethernet")
        if data[_FIXED_LEN : _FIXED_LEN + 4] != MAGIC:
            raise DecodeError("dhcp", "no DHCP magic cookie")
        options: dict[int, bytes] = {}
        i = _FIXED_LEN + 4
        end = len(data)
        while i < end:
            code = data[i]
            if code == OPT_PAD:
                i += 1
                continue
            if code == OPT_END:
                break
            if i + 2 > end:
                raise DecodeError("dhcp", f"option {code} truncated")
            length = data[i + 1]
            if i + 2 + length > end:
                raise DecodeError("dhcp", f"option {code} overruns the message")
            options[code] = options.get(code, b"") + bytes(data[i + 2 : i + 2 + length])
            i += 2 + length
        else:
            raise DecodeError("dhcp", "options without an end option")
        return cls(
            op,
            xid,
            bytes(chaddr[:6]),
            tuple(options.items()),
            bytes(ciaddr),
            bytes(yiaddr),
            bytes(siaddr),
            bytes(giaddr),
            secs,
            flags,
            hops,
        )

    def encode(self) -> bytes:
        head = _FIXED.pack(
            self.op,
            1,
            6,
            self.hops,
            self.xid,
            self.secs,
            self.flags,
            self.ciaddr,
            self.yiaddr,
            self.siaddr,
            self.giaddr,
            self.chaddr.ljust(16, b"\x00"),
            b"",
            b"",
        )
        out = [head, MAGIC]
        for code, value in self.options:
            if not value:
                out.append(bytes((code, 0)))
            for i in range(0, len(value), 255):  # RFC 3396: long options are split
                chunk = value[i : i + 255]
                out.append(bytes((code, len(chunk))) + chunk)
        out.append(bytes((OPT_END,)))
        message = b"".join(out)
        return message.ljust(300, b"\x00")  # BOOTP's minimum, which some servers want

    # -- options -------------------------------------------------------------------

    def option(self, code: int) -> bytes | None:
        for c, value in self.options:
            if c == code:
                return value
        return None

    @property
    def message_type(self) -> int | None:
        value = self.option(OPT_MESSAGE_TYPE)
        return value[0] if value is not None and len(value) == 1 else None

    @property
    def subnet_mask(self) -> bytes | None:
        value = self.option(OPT_SUBNET_MASK)
        return value if value is not None and len(value) == 4 else None

    @property
    def routers(self) -> tuple[bytes, ...]:
        return _addresses(self.option(OPT_ROUTER)) or ()

    @property
    def dns_servers(self) -> tuple[bytes, ...]:
        return _addresses(self.option(OPT_DNS)) or ()

    @property
    def server_id(self) -> bytes | None:
        value = self.option(OPT_SERVER_ID)
        return value if value is not None and len(value) == 4 else None

    @property
    def lease_time(self) -> int | None:
        return _u32(self.option(OPT_LEASE_TIME))

    @property
    def renewal_time(self) -> int | None:
        return _u32(self.option(OPT_RENEWAL_TIME))

    @property
    def rebinding_time(self) -> int | None:
        return _u32(self.option(OPT_REBINDING_TIME))


def _prefix(mask: bytes | None, address: bytes) -> int:
    """The prefix length of a contiguous ``mask``; without one, the classful default."""
    if mask is not None:
        bits = int.from_bytes(mask, "big")
        n = 32 - (((~bits) & 0xFFFFFFFF).bit_length())
        if ((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF) == bits:
            return n
    first = address[0]
    return 8 if first < 128 else 16 if first < 192 else 24


@dataclass(frozen=True, slots=True)
class Lease:
    """An IPv4 address leased from a DHCP server, with its routers, DNS servers and timers."""

    address: bytes
    prefix: int
    routers: tuple[bytes, ...]
    dns_servers: tuple[bytes, ...]
    server: bytes
    acquired: float
    """When the REQUEST that got this lease was sent (RFC 2131 4.4.1)."""
    lease_time: float
    renewal_time: float
    rebinding_time: float

    @property
    def interface(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface((self.address, self.prefix))

    @property
    def gateway(self) -> ipaddress.IPv4Address | None:
        return ipaddress.IPv4Address(self.routers[0]) if self.routers else None

    @property
    def t1(self) -> float:
        return self.acquired + self.renewal_time

    @property
    def t2(self) -> float:
        return self.acquired + self.rebinding_time

    @property
    def expires(self) -> float:
        return self.acquired + self.lease_time


@dataclass(frozen=True, slots=True)
class DhcpSend:
    """Send ``message`` to the IPv4 address ``dst``."""

    message: DhcpMessage
    dst: bytes
    """The IPv4 destination: the limited broadcast or (renewing, releasing) the server."""


@dataclass(frozen=True, slots=True)
class DhcpBound:
    """Configure this ``lease`` (new, or ``renewed``)."""

    lease: Lease
    renewed: bool


@dataclass(frozen=True, slots=True)
class DhcpUnbound:
    """The address may no longer be used, for ``reason``."""

    reason: str


DhcpAction = DhcpSend | DhcpBound | DhcpUnbound


class DhcpState(enum.Enum):
    INIT = "init"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    BOUND = "bound"
    RENEWING = "renewing"
    REBINDING = "rebinding"
    REBOOTING = "rebooting"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class DhcpConfig:
    """Retransmission timers and options of the DHCP client."""

    initial_timeout: float = 4.0
    max_timeout: float = 64.0
    jitter: float = 1.0
    request_retries: int = 4
    """REQUESTs (after an OFFER) without an answer before discovery starts again."""
    min_renew_wait: float = 60.0
    hostname: str | None = None
    default_lease: float = 3600.0
    """Used if an ACK carries no lease time."""
    arp_check: bool = True
    """Probe a new address with ARP before using it (the driver does this)."""
    decline_wait: float = 10.0
    """Seconds between declining an address and discovering again (RFC 2131 3.1.5)."""


_PARAMETERS = bytes(
    (OPT_SUBNET_MASK, OPT_ROUTER, OPT_DNS, OPT_LEASE_TIME, OPT_RENEWAL_TIME, OPT_REBINDING_TIME)
)


@dataclass(slots=True)
class DhcpStats:
    """Counters of the DHCP client."""

    sent: int = 0
    received: int = 0
    ignored: int = 0
    naks: int = 0
    leases: int = 0
    declines: int = 0
    discovers: int = 0


@dataclass(slots=True)
class _Attempt:
    """One try at getting an address: its xid, timers, the offer taken and the request sent."""

    xid: int
    started: float
    tries: int = 0
    timer: float | None = None
    offer: DhcpMessage | None = None
    requested: float | None = None
    """When the first REQUEST of this attempt went out: the lease counts from then."""
    previous: bytes | None = None
    """INIT-REBOOT: the address asked for again."""


class DhcpClient:
    def __init__(
        self, mac: bytes, config: DhcpConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.mac = mac
        self.config = config or DhcpConfig()
        self.rng = rng or random.Random()
        self.state = DhcpState.INIT
        self.lease: Lease | None = None
        self.stats = DhcpStats()
        self._attempt: _Attempt | None = None
        self._timer: float | None = None

    # -- public --------------------------------------------------------------------

    def start(self, now: float, *, previous: bytes | None = None) -> list[DhcpAction]:
        """Begin (or restart) discovery; with ``previous`` (an address this client
        had), INIT-REBOOT: ask for that address again first."""
        if previous is None or previous == ZERO:
            return self._discover(now)
        self.state = DhcpState.REBOOTING
        self._attempt = _Attempt(self._xid(), now, previous=bytes(previous))
        return self._send_request(now)

    def get_timer(self) -> float | None:
        return self._timer

    def handle_timer(self, now: float) -> list[DhcpAction]:
        if self._timer is None or now < self._timer:
            return []
        state = self.state
        lease = self.lease
        attempt = self._attempt
        if state is DhcpState.SELECTING and attempt is not None:
            return self._send_discover(now)
        if state in (DhcpState.REQUESTING, DhcpState.REBOOTING) and attempt is not None:
            if attempt.tries >= self.config.request_retries:
                return self._discover(now)
            return self._send_request(now)
        if lease is None:
            return self._discover(now)
        if now >= lease.expires:
            self.lease = None
            return [DhcpUnbound("lease expired"), *self._discover(now)]
        if state is DhcpState.BOUND:
            return self.renew(now)
        if state is DhcpState.RENEWING and now >= lease.t2:
            self.state = DhcpState.REBINDING
            self._attempt = _Attempt(self._xid(), now)
            return self._send_request(now)
        if state in (DhcpState.RENEWING, DhcpState.REBINDING):
            return self._send_request(now)
        self._timer = None
        return []

    def renew(self, now: float) -> list[DhcpAction]:
        """Enter RENEWING now (T1 calls this; a driver may call it early)."""
        if self.lease is None:
            return []
        self.state = DhcpState.RENEWING
        self._attempt = _Attempt(self._xid(), now)
        return self._send_request(now)

    def release(self, now: float) -> list[DhcpAction]:
        """Give the lease back (DHCPRELEASE) and stop."""
        lease = self.lease
        self.state = DhcpState.STOPPED
        self.lease = None
        self._attempt = None
        self._timer = None
        if lease is None:
            return []
        message = DhcpMessage(
            BOOTREQUEST,
            self._xid(),
            self.mac,
            ((OPT_MESSAGE_TYPE, bytes((RELEASE,))), (OPT_SERVER_ID, lease.server)),
            ciaddr=lease.address,
        )
        self.stats.sent += 1
        return [DhcpSend(message, lease.server), DhcpUnbound("released")]

    def decline(self, now: float, reason: str = "address in use") -> list[DhcpAction]:
        """The address of the new lease is in use: DECLINE it, start again later."""
        lease = self.lease
        if lease is None:
            return []
        self.lease = None
        self.state = DhcpState.INIT
        self._attempt = None
        self._timer = now + self.config.decline_wait
        self.stats.declines += 1
        self.stats.sent += 1
        message = DhcpMessage(
            BOOTREQUEST,
            self._xid(),
            self.mac,
            (
                (OPT_MESSAGE_TYPE, bytes((DECLINE,))),
                (OPT_REQUESTED_IP, lease.address),
                (OPT_SERVER_ID, lease.server),
            ),
        )
        return [DhcpSend(message, BROADCAST_IP), DhcpUnbound(f"declined: {reason}")]

    def input(self, message: DhcpMessage, now: float) -> list[DhcpAction]:
        self.stats.received += 1
        attempt = self._attempt
        kind = message.message_type
        if (
            attempt is None
            or message.op != BOOTREPLY
            or message.xid != attempt.xid
            or message.chaddr != self.mac
            or kind not in (OFFER, ACK, NAK)
        ):
            self.stats.ignored += 1
            return []
        state = self.state
        if state is DhcpState.SELECTING:
            if kind != OFFER or message.yiaddr == ZERO or message.server_id is None:
                self.stats.ignored += 1
                return []
            self.state = DhcpState.REQUESTING
            attempt.offer = message
            attempt.tries = 0
            return self._send_request(now)
        if state not in (
            DhcpState.REQUESTING,
            DhcpState.RENEWING,
            DhcpState.REBINDING,
            DhcpState.REBOOTING,
        ):
            self.stats.ignored += 1
            return []
        if kind == NAK:
            self.stats.naks += 1
            self.lease = None
            return [DhcpUnbound("NAK from the server"), *self._discover(now)]
        if kind != ACK or message.yiaddr == ZERO:
            self.stats.ignored += 1
            return []
        renewed = self.lease is not None
        started = attempt.requested if attempt.requested is not None else now
        lease = self._lease(message, started)
        self.lease = lease
        self.state = DhcpState.BOUND
        self._attempt = None
        self._timer = lease.t1
        self.stats.leases += 1
        return [DhcpBound(lease, renewed)]

    # -- internals -----------------------------------------------------------------

    def _xid(self) -> int:
        return self.rng.getrandbits(32)

    def _lease(self, ack: DhcpMessage, started: float) -> Lease:
        attempt = self._attempt
        offer = attempt.offer if attempt is not None else None
        server = ack.server_id or (offer.server_id if offer is not None else None)
        if server is None and self.lease is not None:
            server = self.lease.server
        lease_time = float(
            ack.lease_time if ack.lease_time is not None else self.config.default_lease
        )
        t1 = float(ack.renewal_time) if ack.renewal_time is not None else lease_time * 0.5
        t2 = float(ack.rebinding_time) if ack.rebinding_time is not None else lease_time * 0.875
        # Keep T1 <= T2 <= lease, whatever the server said.
        t2 = min(t2, lease_time)
        t1 = min(t1, t2)
        return Lease(
            ack.yiaddr,
            _prefix(ack.subnet_mask, ack.yiaddr),
            ack.routers,
            ack.dns_servers,
            server or ZERO,
            started,
            lease_time,
            t1,
            t2,
        )

    def _discover(self, now: float) -> list[DhcpAction]:
        self.state = DhcpState.SELECTING
        self._attempt = _Attempt(self._xid(), now)
        return self._send_discover(now)

    def _backoff(self, attempt: _Attempt, now: float) -> float:
        cfg = self.config
        wait = min(cfg.initial_timeout * float(1 << (attempt.tries - 1)), cfg.max_timeout)
        wait += self.rng.uniform(-cfg.jitter, cfg.jitter)
        return now + max(wait, cfg.initial_timeout / 2)

    def _common(self) -> list[tuple[int, bytes]]:
        options = [(OPT_PARAMETER_LIST, _PARAMETERS), (OPT_MAX_SIZE, (1500).to_bytes(2, "big"))]
        if self.config.hostname:
            options.append((OPT_HOSTNAME, self.config.hostname.encode()))
        return options

    def _send_discover(self, now: float) -> list[DhcpAction]:
        attempt = self._attempt
        assert attempt is not None
        attempt.tries += 1
        self._timer = self._backoff(attempt, now)
        message = DhcpMessage(
            BOOTREQUEST,
            attempt.xid,
            self.mac,
            ((OPT_MESSAGE_TYPE, bytes((DISCOVER,))), *self._common()),
            secs=min(int(now - attempt.started), 0xFFFF),
            flags=FLAG_BROADCAST,
        )
        self.stats.sent += 1
        self.stats.discovers += 1
        return [DhcpSend(message, BROADCAST_IP)]

    def _send_request(self, now: float) -> list[DhcpAction]:
        attempt = self._attempt
        assert attempt is not None
        attempt.tries += 1
        if attempt.requested is None:
            attempt.requested = now
        options: list[tuple[int, bytes]] = [(OPT_MESSAGE_TYPE, bytes((REQUEST,)))]
        ciaddr = ZERO
        dst = BROADCAST_IP
        flags = FLAG_BROADCAST
        if self.state is DhcpState.REBOOTING:
            assert attempt.previous is not None
            # RFC 2131 4.3.2 INIT-REBOOT: requested address, no server id, ciaddr 0.
            options.append((OPT_REQUESTED_IP, attempt.previous))
            self._timer = self._backoff(attempt, now)
        elif self.state is DhcpState.REQUESTING:
            offer = attempt.offer
            assert offer is not None and offer.server_id is not None
            options += [(OPT_REQUESTED_IP, offer.yiaddr), (OPT_SERVER_ID, offer.server_id)]
            self._timer = self._backoff(attempt, now)
        else:
            lease = self.lease
            assert lease is not None
            ciaddr = lease.address
            flags = 0
            if self.state is DhcpState.RENEWING:
                dst = lease.server
                deadline = lease.t2
            else:
                deadline = lease.expires
            wait = max((deadline - now) / 2, self.config.min_renew_wait)
            self._timer = min(now + wait, deadline)
        message = DhcpMessage(
            BOOTREQUEST,
            attempt.xid,
            self.mac,
            (*options, *self._common()),
            ciaddr=ciaddr,
            secs=min(int(now - attempt.started), 0xFFFF),
            flags=flags,
        )
        self.stats.sent += 1
        return [DhcpSend(message, dst)]
