"""DHCPv6 client for addresses (RFC 8415, stateful IA_NA; DNS servers, RFC 3646): codec
and a sans-IO client core.

:class:`Dhcp6Message` is a client/server message: type, 24-bit transaction id and its
options as (code, value) pairs; decoding is total (bad input raises
:class:`~mirage.tcpip.DecodeError`, layer ``dhcp6``), and the accessors for the
options the client uses (server identifier, IA_NA with its addresses and status,
DNS servers) return ``None`` for a missing or malformed option.

:class:`Dhcp6Client` runs RFC 8415 section 18's exchanges with explicit time:
SOLICIT -> ADVERTISE (the first usable one wins: we do not wait to compare
preferences) -> REQUEST -> REPLY (BOUND) -> RENEW at T1 -> REBIND at T2 -> back to
SOLICIT when the address's valid lifetime ends, or on a reply saying the address is
not ours. Retransmissions follow section 15 (each timeout twice the last, randomised
by a tenth, up to a maximum; REQUEST gives up after ``request_retries`` and solicits
again). Every message carries our DUID (DUID-LL, from the MAC address), an elapsed
time option and an option request for DNS servers; they all go to the
All_DHCP_Relay_Agents_and_Servers group (ff02::1:2), port 547, from port 546.
Actions: :class:`Dhcp6Send`, :class:`Dhcp6Bound` (use this lease) and
:class:`Dhcp6Unbound` (stop using the address).

Not implemented: temporary addresses (IA_TA), prefix delegation (IA_PD), rapid
commit, reconfigure, CONFIRM after a link change, DECLINE of an address that fails
duplicate address detection (the stack's NDP core does detect it), authentication,
and relays.
"""

from __future__ import annotations

import enum
import random
import struct
from dataclasses import dataclass

from ._errors import DecodeError

__all__ = [
    "ADVERTISE",
    "ALL_SERVERS",
    "CLIENT_PORT6",
    "REBIND",
    "RELEASE6",
    "RENEW",
    "REPLY",
    "REQUEST6",
    "SERVER_PORT6",
    "SOLICIT",
    "Dhcp6Action",
    "Dhcp6Bound",
    "Dhcp6Client",
    "Dhcp6Config",
    "Dhcp6Message",
    "Dhcp6Send",
    "Dhcp6State",
    "Dhcp6Unbound",
    "IaAddress",
    "IaNa",
    "Lease6",
    "duid_ll",
]

CLIENT_PORT6 = 546
SERVER_PORT6 = 547
ALL_SERVERS = bytes.fromhex("ff020000000000000000000000010002")

SOLICIT, ADVERTISE, REQUEST6, CONFIRM, RENEW, REBIND, REPLY, RELEASE6 = range(1, 9)

OPT_CLIENTID = 1
OPT_SERVERID = 2
OPT_IA_NA = 3
OPT_IAADDR = 5
OPT_ORO = 6
OPT_ELAPSED_TIME = 8
OPT_STATUS_CODE = 13
OPT_DNS_SERVERS = 23

STATUS_SUCCESS = 0
STATUS_NO_ADDRS_AVAIL = 2
STATUS_NO_BINDING = 3
STATUS_NOT_ON_LINK = 4

INFINITY = 0xFFFFFFFF


def _options(data: bytes, where: str) -> tuple[tuple[int, bytes], ...]:
    out = []
    i = 0
    while i < len(data):
        if i + 4 > len(data):
            raise DecodeError("dhcp6", f"{where}: option header truncated")
        code, length = struct.unpack_from("!HH", data, i)
        if i + 4 + length > len(data):
            raise DecodeError("dhcp6", f"{where}: option {code} truncated")
        out.append((code, bytes(data[i + 4 : i + 4 + length])))
        i += 4 + length
    return tuple(out)


def _encode_options(options: tuple[tuple[int, bytes], ...]) -> bytes:
    return b"".join(struct.pack("!HH", code, len(value)) + value for code, value in options)


@dataclass(frozen=True, slots=True)
class IaAddress:
    """An IA Address option: an address and its preferred and valid lifetimes."""

    address: bytes
    preferred: int
    valid: int


@dataclass(frozen=True, slots=True)
class IaNa:
    """An identity association for non-temporary addresses (RFC 8415 21.4)."""

    iaid: int
    t1: int
    t2: int
    addresses: tuple[IaAddress, ...] = ()
    status: int = STATUS_SUCCESS

    def encode(self) -> bytes:
        inner = tuple(
            (OPT_IAADDR, a.address + struct.pack("!II", a.preferred, a.valid))
            for a in self.addresses
        )
        return struct.pack("!III", self.iaid, self.t1, self.t2) + _encode_options(inner)

    @classmethod
    def decode(cls, data: bytes) -> IaNa:
        if len(data) < 12:
            raise DecodeError("dhcp6", "IA_NA shorter than 12 bytes")
        iaid, t1, t2 = struct.unpack_from("!III", data)
        addresses = []
        status = STATUS_SUCCESS
        for code, value in _options(data[12:], "IA_NA"):
            if code == OPT_IAADDR:
                if len(value) < 24:
                    raise DecodeError("dhcp6", "IAADDR shorter than 24 bytes")
                preferred, valid = struct.unpack_from("!II", value, 16)
                addresses.append(IaAddress(value[:16], preferred, valid))
                _options(value[24:], "IAADDR")  # (checked, not used)
            elif code == OPT_STATUS_CODE and len(value) >= 2:
                status = int.from_bytes(value[:2], "big")
        return cls(iaid, t1, t2, tuple(addresses), status)


@dataclass(frozen=True, slots=True)
class Dhcp6Message:
    """A DHCPv6 client/server message: type, transaction id and options."""

    type: int
    xid: int
    options: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def decode(cls, data: bytes) -> Dhcp6Message:
        if len(data) < 4:
            raise DecodeError("dhcp6", "shorter than a message header")
        kind = data[0]
        if kind in (12, 13):
            raise DecodeError("dhcp6", "relay messages are not for a client")
        xid = int.from_bytes(data[1:4], "big")
        return cls(kind, xid, _options(data[4:], "message"))

    def encode(self) -> bytes:
        return bytes((self.type,)) + self.xid.to_bytes(3, "big") + _encode_options(self.options)

    def option(self, code: int) -> bytes | None:
        for c, value in self.options:
            if c == code:
                return value
        return None

    @property
    def server_id(self) -> bytes | None:
        return self.option(OPT_SERVERID)

    @property
    def client_id(self) -> bytes | None:
        return self.option(OPT_CLIENTID)

    @property
    def status(self) -> int:
        value = self.option(OPT_STATUS_CODE)
        return int.from_bytes(value[:2], "big") if value and len(value) >= 2 else STATUS_SUCCESS

    @property
    def ia_na(self) -> IaNa | None:
        value = self.option(OPT_IA_NA)
        if value is None:
            return None
        try:
            return IaNa.decode(value)
        except DecodeError:
            return None

    @property
    def dns_servers(self) -> tuple[bytes, ...]:
        value = self.option(OPT_DNS_SERVERS)
        if not value or len(value) % 16:
            return ()
        return tuple(value[i : i + 16] for i in range(0, len(value), 16))


def duid_ll(mac: bytes) -> bytes:
    """DUID-LL (RFC 8415 11.4): type 3, hardware type 1 (Ethernet), the MAC."""
    return b"\x00\x03\x00\x01" + mac


@dataclass(frozen=True, slots=True)
class Lease6:
    """An IPv6 address leased from a DHCPv6 server, with its lifetimes, timers and DNS servers."""

    address: bytes
    preferred: float
    valid: float
    t1: float
    t2: float
    server_id: bytes
    dns_servers: tuple[bytes, ...]
    acquired: float
    """When the exchange that got the lease started (its lifetimes count from then)."""

    @property
    def renew_at(self) -> float:
        return self.acquired + self.t1

    @property
    def rebind_at(self) -> float:
        return self.acquired + self.t2

    @property
    def expires(self) -> float:
        return self.acquired + self.valid


@dataclass(frozen=True, slots=True)
class Dhcp6Send:
    """Send ``message`` to the DHCPv6 servers."""

    message: Dhcp6Message
    """To ff02::1:2 port 547, from our link-local address port 546."""


@dataclass(frozen=True, slots=True)
class Dhcp6Bound:
    """Configure this ``lease`` (new, or ``renewed``)."""

    lease: Lease6
    renewed: bool


@dataclass(frozen=True, slots=True)
class Dhcp6Unbound:
    """The lease of ``address`` (if any) is gone, for ``reason``; stop using it."""

    address: bytes | None
    reason: str


Dhcp6Action = Dhcp6Send | Dhcp6Bound | Dhcp6Unbound


class Dhcp6State(enum.Enum):
    SOLICITING = "soliciting"
    REQUESTING = "requesting"
    BOUND = "bound"
    RENEWING = "renewing"
    REBINDING = "rebinding"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Dhcp6Config:
    """Retransmission timers of the DHCPv6 client."""

    solicit_timeout: float = 1.0
    solicit_max: float = 120.0
    """RFC 8415's SOL_MAX_RT is an hour; a unikernel waiting for an address asks
    more often."""
    request_timeout: float = 1.0
    request_max: float = 30.0
    request_retries: int = 10
    renew_timeout: float = 10.0
    renew_max: float = 600.0


@dataclass(slots=True)
class _Exchange:
    """One message exchange in progress: its kind, transaction id, timer and retries."""

    kind: int
    xid: int
    started: float
    timeout: float
    tries: int = 0
    server_id: bytes | None = None
    advertised: IaNa | None = None


class Dhcp6Client:
    def __init__(
        self, mac: bytes, config: Dhcp6Config | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.mac = mac
        self.duid = duid_ll(mac)
        self.iaid = int.from_bytes(mac[2:6], "big")
        self.config = config or Dhcp6Config()
        self.rng = rng or random.Random()
        self.state = Dhcp6State.SOLICITING
        self.lease: Lease6 | None = None
        self._exchange: _Exchange | None = None
        self._timer: float | None = None
        self.sent = 0
        self.received = 0
        self.ignored = 0

    # -- public ------------------------------------------------------------------------

    def start(self, now: float) -> list[Dhcp6Action]:
        return self._begin(SOLICIT, now)

    def get_timer(self) -> float | None:
        return self._timer

    def handle_timer(self, now: float) -> list[Dhcp6Action]:
        if self._timer is None or now < self._timer:
            return []
        lease = self.lease
        if lease is not None and now >= lease.expires:
            self.lease = None
            return [Dhcp6Unbound(lease.address, "lease expired"), *self._begin(SOLICIT, now)]
        exchange = self._exchange
        if self.state is Dhcp6State.BOUND:
            return self._begin(RENEW, now)
        if self.state is Dhcp6State.RENEWING and lease is not None and now >= lease.rebind_at:
            return self._begin(REBIND, now)
        if exchange is None:
            self._timer = None
            return []
        if exchange.kind == REQUEST6 and exchange.tries >= self.config.request_retries:
            return self._begin(SOLICIT, now)
        return self._send(now)

    def release(self, now: float) -> list[Dhcp6Action]:
        """Give the address back (one RELEASE, not retransmitted) and stop."""
        lease = self.lease
        self.state = Dhcp6State.STOPPED
        self.lease = None
        self._exchange = None
        self._timer = None
        if lease is None:
            return []
        ia = IaNa(self.iaid, 0, 0, (IaAddress(lease.address, 0, 0),))
        message = Dhcp6Message(
            RELEASE6,
            self._xid(),
            (
                (OPT_CLIENTID, self.duid),
                (OPT_SERVERID, lease.server_id),
                (OPT_ELAPSED_TIME, b"\0\0"),
                (OPT_IA_NA, ia.encode()),
            ),
        )
        self.sent += 1
        return [Dhcp6Send(message), Dhcp6Unbound(lease.address, "released")]

    def input(self, message: Dhcp6Message, now: float) -> list[Dhcp6Action]:
        self.received += 1
        exchange = self._exchange
        if (
            exchange is None
            or message.xid != exchange.xid
            or message.client_id != self.duid
            or message.server_id is None
        ):
            self.ignored += 1
            return []
        ia = message.ia_na
        if exchange.kind == SOLICIT:
            if (
                message.type != ADVERTISE
                or message.status != STATUS_SUCCESS
                or ia is None
                or ia.status != STATUS_SUCCESS
                or not ia.addresses
            ):
                self.ignored += 1
                return []
            return self._begin(REQUEST6, now, server_id=message.server_id, advertised=ia)
        if message.type != REPLY:
            self.ignored += 1
            return []
        usable = (
            ia is not None
            and ia.status == STATUS_SUCCESS
            and message.status == STATUS_SUCCESS
            and any(a.valid for a in ia.addresses)
        )
        if not usable:
            old = self.lease
            self.lease = None
            reason = f"DHCPv6 status {ia.status if ia is not None else message.status}"
            gone = [Dhcp6Unbound(old.address, reason)] if old is not None else []
            return [*gone, *self._begin(SOLICIT, now)]
        assert ia is not None
        address = next(a for a in ia.addresses if a.valid)
        preferred = float(address.preferred)
        t1 = float(ia.t1) if ia.t1 else preferred * 0.5
        t2 = float(ia.t2) if ia.t2 else preferred * 0.8
        valid = float(address.valid)
        t2 = min(t2, valid)
        t1 = min(t1, t2)
        renewed = self.lease is not None and self.lease.address == address.address
        lease = Lease6(
            address.address,
            preferred,
            valid,
            t1,
            t2,
            message.server_id,
            message.dns_servers,
            exchange.started,
        )
        self.lease = lease
        self.state = Dhcp6State.BOUND
        self._exchange = None
        self._timer = lease.renew_at if t1 < INFINITY else None
        return [Dhcp6Bound(lease, renewed)]

    # -- internals ---------------------------------------------------------------------

    def _xid(self) -> int:
        return self.rng.getrandbits(24)

    def _begin(
        self,
        kind: int,
        now: float,
        *,
        server_id: bytes | None = None,
        advertised: IaNa | None = None,
    ) -> list[Dhcp6Action]:
        cfg = self.config
        timeout = {
            SOLICIT: cfg.solicit_timeout,
            REQUEST6: cfg.request_timeout,
        }.get(kind, cfg.renew_timeout)
        self.state = {
            SOLICIT: Dhcp6State.SOLICITING,
            REQUEST6: Dhcp6State.REQUESTING,
            RENEW: Dhcp6State.RENEWING,
            REBIND: Dhcp6State.REBINDING,
        }[kind]
        self._exchange = _Exchange(kind, self._xid(), now, timeout, 0, server_id, advertised)
        return self._send(now)

    def _send(self, now: float) -> list[Dhcp6Action]:
        exchange = self._exchange
        assert exchange is not None
        cfg = self.config
        maximum = {SOLICIT: cfg.solicit_max, REQUEST6: cfg.request_max}.get(
            exchange.kind, cfg.renew_max
        )
        # RFC 8415 15: RT = 2 RTprev + RAND RTprev (the first: IRT + RAND IRT).
        base = exchange.timeout if exchange.tries == 0 else 2 * exchange.timeout
        rt = min(base, maximum) * (1 + self.rng.uniform(-0.1, 0.1))
        exchange.timeout = rt
        exchange.tries += 1
        deadline = now + rt
        lease = self.lease
        if exchange.kind == RENEW and lease is not None:
            deadline = min(deadline, lease.rebind_at)
        if exchange.kind in (RENEW, REBIND) and lease is not None:
            deadline = min(deadline, lease.expires)
        self._timer = deadline
        elapsed = min(int((now - exchange.started) * 100), 0xFFFF)
        options: list[tuple[int, bytes]] = [
            (OPT_CLIENTID, self.duid),
            (OPT_ELAPSED_TIME, elapsed.to_bytes(2, "big")),
            (OPT_ORO, OPT_DNS_SERVERS.to_bytes(2, "big")),
        ]
        if exchange.kind == SOLICIT:
            ia = IaNa(self.iaid, 0, 0)
        elif exchange.kind == REQUEST6:
            assert exchange.server_id is not None and exchange.advertised is not None
            options.append((OPT_SERVERID, exchange.server_id))
            ia = IaNa(self.iaid, 0, 0, exchange.advertised.addresses)
        else:
            assert lease is not None
            if exchange.kind == RENEW:
                options.append((OPT_SERVERID, lease.server_id))
            ia = IaNa(self.iaid, 0, 0, (IaAddress(lease.address, 0, 0),))
        options.append((OPT_IA_NA, ia.encode()))
        self.sent += 1
        return [Dhcp6Send(Dhcp6Message(exchange.kind, exchange.xid, tuple(options)))]
