"""The direct stack: our Ethernet, ARP, IPv4, IPv6 (NDP), ICMP, ICMPv6, UDP, TCP and
DHCP client over a Network.

Theory of operation: this module is the asyncio driver around the sans-IO cores.
``_on_frame`` (the network's listener) decodes each frame and hands it to the cores
synchronously; everything the cores want to send is appended to a transmit list that
one writer task drains into the network, in order. One timer, armed at the earliest
deadline of every core (ARP, reassembly, each TCP connection), calls their
``handle_timer``. Application calls (flows, UDP writes) run the cores directly and
wake the writer. Malformed input is counted in ``stats`` and dropped; it never
raises out of the listener.

Packets to one of our own addresses are looped back without touching the network.
Addresses are raw bytes throughout: 4 for IPv4, 16 for IPv6; ``ip_output`` picks the
IP version by the destination's length, and TCP connections and UDP sockets work the
same over both. The DHCP client and the NDP core are driven like the other cores:
their actions are turned into frames (``_emit_dhcp``, ``_emit_ndp``) and their
deadlines join the one timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import ipaddress
import logging
import math
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mirage.core.types import FlowClosed, Network, TcpHandler, UdpCallback

from ._errors import DecodeError
from .arp import ArpConflict, ArpCore, ArpFailed, ArpPacket, ArpProbed, ArpResolved, ArpSend
from .ethernet import BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6
from .ethernet import HEADER as ETH_HEADER
from .icmp import (
    CODE_FRAG_NEEDED,
    CODE_PORT_UNREACHABLE,
    PROTO_ICMP,
    TYPE_DEST_UNREACHABLE,
    TYPE_ECHO_REPLY,
    TYPE_ECHO_REQUEST,
    IcmpMessage,
)
from .icmpv6 import CODE_PORT_UNREACHABLE as CODE6_PORT_UNREACHABLE
from .icmpv6 import TYPE_DEST_UNREACHABLE as TYPE6_DEST_UNREACHABLE
from .icmpv6 import TYPE_ECHO_REPLY as TYPE6_ECHO_REPLY
from .icmpv6 import TYPE_ECHO_REQUEST as TYPE6_ECHO_REQUEST
from .icmpv6 import (
    TYPE_NEIGHBOR_ADVERTISEMENT,
    TYPE_NEIGHBOR_SOLICITATION,
    TYPE_PACKET_TOO_BIG,
    TYPE_REDIRECT,
    TYPE_ROUTER_ADVERTISEMENT,
    TYPE_ROUTER_SOLICITATION,
    Icmpv6Message,
)
from .ipv4 import Ipv4Packet, Reassembler, fragment, simple_header
from .ipv6 import (
    PROTO_FRAGMENT,
    PROTO_ICMPV6,
    Ipv6Fragment,
    Ipv6Packet,
    fragment6,
    is_multicast,
    link_local,
    multicast_mac,
)
from .tcp import (
    ACK,
    PROTO_TCP,
    PSH,
    RST,
    SYN,
    Connection,
    IsnGenerator,
    State,
    SynCookies,
    TcpConfig,
    TcpSegment,
    unwrap,
)
from .udp import PROTO_UDP, UdpDatagram

# DHCP, DHCPv6 and NDP are imported where they are used: a stack with a static IPv4
# address, a unikernel's usual start, does not load them (boot time in a guest).
if TYPE_CHECKING:
    from .dhcp import (
        DhcpAction,
        DhcpClient,
        DhcpConfig,
        Lease,
    )
    from .dhcp6 import (
        Dhcp6Action,
        Dhcp6Client,
        Dhcp6Config,
        Lease6,
    )
    from .ndp import (
        NdpAction,
        NdpCore,
    )

__all__ = ["DirectStack", "StackStats", "TcpFlow"]

log = logging.getLogger("mirage.tcpip.stack")

Quad = tuple[bytes, int, bytes, int]
EPHEMERAL = (49152, 65535)
MAX_ARP_QUEUE = 64
LISTEN_BACKLOG = 128
PATH_MTU_AGE = 600.0
MAX_PATH_MTUS = 1024
TSO_MAX = 62 * 1024
TIME_WAIT_SLACK = 0.05
"""TIME-WAIT ends up to this much after 2 MSL, so that the ends of many connections
are handled by one timer event (as Linux batches its TIME-WAIT sockets)."""
"""Most payload in one segment handed to a network that segments (TSO)."""
# RFC 1191 section 7's MTU plateaus, for routers that do not say the next-hop MTU.
_PLATEAUS = (32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)


@dataclass(slots=True)
class StackStats:
    """Counters of the stack. ``rx_bad`` counts every malformed, truncated or
    bad-checksum input dropped, ``bad_by_layer`` the same by the layer that rejected
    it (``ethernet``, ``arp``, ``ipv4``, ``ipv6``, ``icmp``, ``icmpv6``, ``udp``,
    ``tcp``, ``dhcp``); ``rx_dropped`` counts well-formed input that is not for us."""

    rx_frames: int = 0
    rx_dropped: int = 0
    rx_bad: int = 0
    bad_by_layer: dict[str, int] = field(default_factory=dict)
    rx_errors: int = 0
    """Frames whose handling failed (a bug, or an application callback that raised)."""
    arp_queue_dropped: int = 0
    """Packets dropped because too many next hops were being resolved at once."""
    tx_frames: int = 0
    icmp_echo_replies: int = 0
    icmp_unreachable_sent: int = 0
    icmp_errors_received: int = 0
    tcp_resets_sent: int = 0
    pmtu_updates: int = 0
    ipv6_dropped: int = 0
    syn_cookies_sent: int = 0
    syn_cookies_accepted: int = 0
    tcp_acks_merged: int = 0
    tcp_tso_segments: int = 0
    """Segments sent inside larger ones, for the network to split (TSO)."""


@functools.lru_cache(maxsize=256)
def _packed(address: str) -> bytes:
    """An IPv4 or IPv6 address in text as its 4 or 16 bytes (parsed once)."""
    return ipaddress.ip_address(address).packed


def _ports(seg: TcpSegment) -> bytes:
    return seg.dst_port.to_bytes(2, "big") + seg.src_port.to_bytes(2, "big")


class TcpFlow:
    """A TCP connection of the direct stack as a :class:`~mirage.core.types.Flow`."""

    def __init__(self, stack: DirectStack, conn: Connection, quad: Quad) -> None:
        self._stack = stack
        self.conn = conn
        self.quad = quad
        self.changed = asyncio.Event()
        self._shut = False
        self._closed = False
        self.handler: TcpHandler | None = None
        """A passive connection's handler, until it is started (once established)."""

    @property
    def peer(self) -> tuple[str, int]:
        return str(ipaddress.ip_address(self.quad[2])), self.quad[3]

    async def _wait(self) -> None:
        self.changed.clear()
        await self.changed.wait()

    async def read(self) -> bytes:
        conn = self.conn
        while not conn.readable:
            if conn.eof or conn.state is State.CLOSED or self._closed:
                return b""
            await self._wait()
        data = conn.read(self._stack.now())
        self._stack._after(conn, self.quad)
        return data

    async def write(self, data: bytes) -> None:
        if self._shut or self._closed:
            raise FlowClosed("write after shutdown or close")
        view = memoryview(data)
        conn = self.conn
        while True:
            if conn.state is State.CLOSED or conn.error:
                raise FlowClosed(conn.error or "connection closed")
            n = conn.send(view[:65536].tobytes(), self._stack.now()) if view else 0
            view = view[n:]
            self._stack._after(conn, self.quad)
            if not len(view):
                return
            if n == 0:
                await self._wait()

    async def writev(self, bufs: Sequence[bytes]) -> None:
        if self._shut or self._closed:
            raise FlowClosed("write after shutdown or close")
        await self.write(b"".join(bufs))

    async def shutdown(self) -> None:
        if self._shut or self._closed:
            return
        self._shut = True
        self.conn.shutdown(self._stack.now())
        self._stack._after(self.conn, self.quad)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shut = True
        self.conn.close(self._stack.now())
        self._stack._after(self.conn, self.quad)

    async def wait_closed(self) -> None:
        while self.conn.state is not State.CLOSED:
            await self._wait()

    def set_keepalive(
        self,
        enabled: bool = True,
        *,
        idle: float | None = None,
        interval: float | None = None,
        count: int | None = None,
    ) -> None:
        """Probe the peer after ``idle`` seconds of silence, every ``interval``
        seconds, and reset the connection after ``count`` unanswered probes."""
        self.conn.set_keepalive(
            self._stack.now(), enabled, idle=idle, interval=interval, count=count
        )
        self._stack._after(self.conn, self.quad)


class _Tcp:
    def __init__(self, stack: DirectStack) -> None:
        self._stack = stack

    async def connect(self, dst: str, port: int) -> TcpFlow:
        return await self._stack.tcp_connect(dst, port)

    async def listen(self, port: int, handler: TcpHandler) -> None:
        self._stack.listeners[port] = handler

    async def unlisten(self, port: int) -> None:
        self._stack.listeners.pop(port, None)


class _Udp:
    def __init__(self, stack: DirectStack) -> None:
        self._stack = stack

    async def listen(self, port: int, callback: UdpCallback) -> None:
        self._stack.udp_listeners[port] = callback

    async def unlisten(self, port: int) -> None:
        self._stack.udp_listeners.pop(port, None)

    async def write(
        self, dst: str, dst_port: int, payload: bytes, *, src_port: int | None = None
    ) -> None:
        stack = self._stack
        sport = src_port if src_port is not None else stack.ephemeral_port()
        dst_ip = _packed(dst)
        src = stack.source_for(dst_ip)
        datagram = UdpDatagram(sport, dst_port, payload).encode(src, dst_ip)
        stack.ip_output(dst_ip, PROTO_UDP, datagram, src=src)


class _Ip:
    def __init__(self, stack: DirectStack) -> None:
        self._stack = stack

    def configured_ips(self) -> list[str]:
        stack = self._stack
        ips = [] if stack.interface.ip.is_unspecified else [str(stack.interface.ip)]
        if stack.ndp is not None:
            ips += [str(ipaddress.IPv6Address(a)) for a in stack.ndp.addresses]
        return ips

    def mtu(self, dst: str) -> int:
        return self._stack.network.mtu

    async def write(self, dst: str, proto: int, payload: bytes) -> None:
        self._stack.ip_output(ipaddress.ip_address(dst).packed, proto, payload)


class DirectStack:
    def __init__(
        self,
        network: Network,
        interface: ipaddress.IPv4Interface,
        gateway: ipaddress.IPv4Address | None,
        tcp_config: TcpConfig | None = None,
    ) -> None:
        self.network = network
        self.mac = network.mac
        self.stats = StackStats()
        self._loop = asyncio.get_running_loop()
        self.arp = ArpCore(self.mac, [])
        self.interface = interface
        self.address = interface.ip.packed
        self.gateway = gateway.packed if gateway is not None else None
        self.configure_ipv4(interface, gateway, announce=False)
        self.dns_servers: tuple[str, ...] = ()
        self.ndp: NdpCore | None = None
        self.reassembler6 = Reassembler()
        self.path_mtus: dict[bytes, tuple[int, float]] = {}
        """Lowered path MTUs by destination, with when each expires."""
        self._ip6_ident = int.from_bytes(os.urandom(4), "big")
        self._ipv6_ready = asyncio.Event()
        self.dhcp: DhcpClient | None = None
        self.lease: Lease | None = None
        self._dhcp_checking: bytes | None = None
        self._bound = asyncio.Event()
        self.dhcp6: Dhcp6Client | None = None
        self.lease6: Lease6 | None = None
        self._bound6 = asyncio.Event()
        self.reassembler = Reassembler()
        mss = network.mtu - 40
        self.tcp_config = tcp_config or TcpConfig(mss=mss)
        self.tcp_config6 = replace(self.tcp_config, mss=self.tcp_config.mss - 20)
        self.isn = IsnGenerator()
        self.syn_cookies = SynCookies()
        self.listen_backlog = LISTEN_BACKLOG
        self.conns: dict[Quad, TcpFlow] = {}
        self.listeners: dict[int, TcpHandler] = {}
        self.udp_listeners: dict[int, UdpCallback] = {}
        self._arp_queue: dict[bytes, list[bytes]] = {}
        self._arp_waiters: dict[bytes, list[asyncio.Future[bytes]]] = {}
        self._tx: list[bytes] = []
        self._write_nowait: Callable[[bytes], bool] | None = getattr(network, "write_nowait", None)
        self._write_tso: Callable[[bytes, int, int], bool] | None = (
            getattr(network, "write_tso", None) if getattr(network, "offload", False) else None
        )
        self._in_rx = False
        self._held: dict[Quad, list[TcpSegment]] = {}
        self._flush_armed = False
        self._tx_ready = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._conn_timers: list[tuple[float, int, Quad]] = []
        """A heap of connection deadlines; an entry counts while it equals _conn_due's."""
        self._conn_due: dict[Quad, float] = {}
        self._timer_seq = 0
        self._syn_received: set[Quad] = set()
        """Connections in SYN-RECEIVED: the listen backlog."""
        self._tasks: set[asyncio.Future[Any]] = set()
        self._pings: dict[int, asyncio.Future[float]] = {}
        self._next_port = EPHEMERAL[0] + int.from_bytes(os.urandom(2), "big") % 10000
        self._ip_ident = int.from_bytes(os.urandom(2), "big")
        self._tcp = _Tcp(self)
        self._udp = _Udp(self)
        self._ip = _Ip(self)
        self._closed = False
        self._writer = self._spawn(self._write_loop())
        direct = getattr(network, "listen_direct", None)
        if direct is not None and getattr(network, "supports_direct", False):
            # Frames handed over as they are read (_on_frame never raises).
            self._reader = self._spawn(direct(self._on_frame))
        else:
            self._reader = self._spawn(network.listen(self._on_frame))

    @classmethod
    async def connect(
        cls,
        *,
        network: Network,
        ipv4: str | None = "10.0.0.2/24",
        ipv4_gateway: str | None = None,
        dhcp: bool = False,
        dhcp_timeout: float = 60.0,
        dhcp_config: DhcpConfig | None = None,
        dhcp_previous: str | None = None,
        tcp_config: TcpConfig | None = None,
        ipv6: bool = False,
        ndp: NdpCore | None = None,
        dhcp6: bool = False,
    ) -> DirectStack:
        """A stack on ``network``: a static ``ipv4`` address, or (``dhcp=True``, or
        ``ipv4`` None, empty or ``"dhcp"``) one leased by DHCP, waiting up to
        ``dhcp_timeout`` seconds for the first lease (:class:`TimeoutError`);
        ``dhcp_previous``, an address leased before, is asked for again first
        (INIT-REBOOT).

        With ``ipv6``, the stack also takes a link-local address (after DAD, which
        ``connect`` waits for), solicits routers and autoconfigures addresses from
        their advertisements (``ndp`` may be a configured :class:`NdpCore`); with
        ``dhcp6`` as well, it leases an address by DHCPv6 (waiting up to
        ``dhcp_timeout`` seconds)."""
        if ipv6:
            stack = await cls.connect(
                network=network,
                ipv4=ipv4,
                ipv4_gateway=ipv4_gateway,
                dhcp=dhcp,
                dhcp_timeout=dhcp_timeout,
                dhcp_config=dhcp_config,
                dhcp_previous=dhcp_previous,
                tcp_config=tcp_config,
            )
            try:
                await stack.start_ipv6(ndp)
                if dhcp6:
                    await stack.start_dhcp6(timeout=dhcp_timeout)
            except BaseException:
                await stack.disconnect()
                raise
            return stack
        if dhcp or not ipv4 or ipv4 == "dhcp":
            stack = cls(network, ipaddress.IPv4Interface("0.0.0.0/32"), None, tcp_config)
            try:
                await stack.start_dhcp(dhcp_config, timeout=dhcp_timeout, previous=dhcp_previous)
            except BaseException:
                await stack.disconnect()
                raise
            return stack
        interface = ipaddress.IPv4Interface(ipv4)
        gateway = ipaddress.IPv4Address(ipv4_gateway) if ipv4_gateway else None
        stack = cls(network, interface, gateway, tcp_config)
        stack._emit_arp(stack.arp.gratuitous())
        return stack

    def configure_ipv4(
        self,
        interface: ipaddress.IPv4Interface,
        gateway: ipaddress.IPv4Address | None,
        *,
        announce: bool = True,
    ) -> None:
        """Use ``interface`` (0.0.0.0/32: no address) and ``gateway`` from now on."""
        self.interface = interface
        self.address = interface.ip.packed
        self.gateway = gateway.packed if gateway is not None else None
        self.arp.ips = [] if interface.ip.is_unspecified else [self.address]
        self._netmask = int(interface.network.netmask)
        self._netbase = int(interface.network.network_address)
        self._on_link: set[bytes] = set()
        self._broadcasts = (b"\xff\xff\xff\xff", interface.network.broadcast_address.packed)
        if announce:
            self._emit_arp(self.arp.gratuitous())

    # ------------------------------------------------------------------ IPv6

    async def start_ipv6(self, ndp: NdpCore | None = None, *, timeout: float = 10.0) -> bytes:
        """Take the link-local address (waiting for DAD), then solicit routers."""
        from .ndp import NdpCore

        self.ndp = ndp or NdpCore(self.mac)
        self._ipv6_ready.clear()
        self._emit_ndp(self.ndp.add_address(link_local(self.mac), 64, self.now()))
        await asyncio.wait_for(self._ipv6_ready.wait(), timeout)
        self._emit_ndp(self.ndp.solicit_routers(self.now()))
        address = self.ndp.link_local
        assert address is not None
        return address

    async def ipv6_global(self, timeout: float = 10.0) -> str:
        """Wait for an address that is not link-local (SLAAC); return it."""
        ndp = self.ndp
        if ndp is None:
            raise RuntimeError("IPv6 is not enabled")
        deadline = self.now() + timeout
        while True:
            for address in ndp.addresses:
                if address[:2] != b"\xfe\x80":
                    return str(ipaddress.IPv6Address(address))
            if self.now() >= deadline:
                raise TimeoutError("no IPv6 address from a router advertisement")
            self._ipv6_ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ipv6_ready.wait(), deadline - self.now())

    def source_for(self, dst: bytes) -> bytes:
        """Our address to send to ``dst`` from."""
        if len(dst) == 4:
            return self.address
        src = self.ndp.source_for(dst) if self.ndp is not None else None
        if src is None:
            raise OSError("no IPv6 address to send from")
        return src

    def _emit_ndp(self, actions: Sequence[NdpAction]) -> None:
        from .ndp import NdpAddressReady, NdpConflict, NdpFailed, NdpResolved, NdpSend

        for action in actions:
            if isinstance(action, NdpSend):
                packet = Ipv6Packet(
                    action.src,
                    action.dst,
                    PROTO_ICMPV6,
                    action.message.encode(action.src, action.dst),
                    hop_limit=255,
                )
                self._send_frame(action.dst_mac, ETHERTYPE_IPV6, packet.encode())
            elif isinstance(action, NdpResolved):
                for packet_bytes in self._arp_queue.pop(action.ip, []):
                    self._send_frame(action.mac, ETHERTYPE_IPV6, packet_bytes)
            elif isinstance(action, NdpFailed):
                self._arp_queue.pop(action.ip, None)
            elif isinstance(action, NdpAddressReady):
                log.info("IPv6 address %s", ipaddress.IPv6Address(action.address))
                self._ipv6_ready.set()
            elif isinstance(action, NdpConflict):
                log.warning("IPv6 address conflict: %s", ipaddress.IPv6Address(action.address))
        if self.ndp is not None:
            self._want(self.ndp.get_timer())

    def _ip6_output(self, dst: bytes, proto: int, payload: bytes, src: bytes | None) -> None:
        from .ndp import NeighborState

        ndp = self.ndp
        if ndp is None:
            raise OSError("IPv6 is not enabled")
        if src is None:
            src = self.source_for(dst)
        packet = Ipv6Packet(src, dst, proto, payload)
        if dst in ndp.addresses:
            self._loop.call_soon(self._ip6_input, packet)
            return
        self._ip6_ident = (self._ip6_ident + 1) & 0xFFFFFFFF
        pieces = fragment6(
            packet, min(ndp.mtu or self.network.mtu, self.network.mtu), self._ip6_ident
        )
        if is_multicast(dst):
            for data in pieces:
                self._send_frame(multicast_mac(dst), ETHERTYPE_IPV6, data)
            return
        now = self.now()
        hop = ndp.next_hop(dst, now)
        mac, actions = ndp.query(hop, now)
        if mac is not None:
            if ndp.state(hop, now) is NeighborState.DELAY:
                self._want(ndp.get_timer())  # NUD: probe unless confirmed meanwhile
            for data in pieces:
                self._send_frame(mac, ETHERTYPE_IPV6, data)
            return
        queue = self._arp_queue.setdefault(hop, [])
        for data in pieces:
            if len(queue) < MAX_ARP_QUEUE:
                queue.append(data)
        self._emit_ndp(actions)

    def _ip6_input(self, packet: Ipv6Packet) -> None:
        ndp = self.ndp
        if ndp is None:
            self.stats.rx_dropped += 1
            return
        if packet.dst not in ndp.addresses and packet.dst not in ndp.groups():
            self.stats.rx_dropped += 1
            return
        try:
            if packet.next_header == PROTO_FRAGMENT:
                whole = self._reassemble6(packet)
                if whole is None:
                    return
                packet = whole
            if packet.next_header == PROTO_TCP:
                self._tcp_input(packet)
            elif packet.next_header == PROTO_UDP:
                self._udp_input(packet)
            elif packet.next_header == PROTO_ICMPV6:
                self._icmp6_input(packet)
            else:
                self.stats.ipv6_dropped += 1  # fragments and other headers
        except DecodeError as exc:
            self._bad(exc)

    def _reassemble6(self, packet: Ipv6Packet) -> Ipv6Packet | None:
        frag = Ipv6Fragment.decode(packet.payload)
        if frag.next_header in (PROTO_FRAGMENT, 0, 43, 60):
            raise DecodeError("ipv6", "extension headers after a fragment header")
        # The IPv4 reassembler's algorithm, keyed by (src, dst, next header, ident).
        piece = Ipv4Packet(
            packet.src,
            packet.dst,
            frag.next_header,
            frag.data,
            ident=frag.ident,
            more_fragments=frag.more,
            offset=frag.offset,
        )
        whole = self.reassembler6.push(piece, self.now())
        if whole is None:
            self._want(self.reassembler6.get_timer())
            return None
        return Ipv6Packet(packet.src, packet.dst, whole.proto, whole.payload, packet.hop_limit)

    def _icmp6_input(self, packet: Ipv6Packet) -> None:
        from .ndp import NdpAddressReady

        ndp = self.ndp
        assert ndp is not None
        message = Icmpv6Message.decode(packet.payload, packet.src, packet.dst)
        kind = message.type
        if kind in (
            TYPE_NEIGHBOR_SOLICITATION,
            TYPE_NEIGHBOR_ADVERTISEMENT,
            TYPE_ROUTER_ADVERTISEMENT,
            TYPE_ROUTER_SOLICITATION,
            TYPE_REDIRECT,
        ):
            actions = ndp.input(packet.src, packet.dst, packet.hop_limit, message, self.now())
            self._emit_ndp(actions)
            if any(isinstance(a, NdpAddressReady) for a in actions):
                self._ipv6_ready.set()
        elif kind == TYPE6_ECHO_REQUEST:
            # (Echo requests to a group we are in are answered from a unicast address.)
            src = packet.dst if packet.dst in ndp.addresses else ndp.source_for(packet.src)
            if src is None:
                return  # no usable address yet (DAD still running)
            reply = Icmpv6Message(TYPE6_ECHO_REPLY, 0, message.rest, message.body)
            to = packet.src
            self.stats.icmp_echo_replies += 1
            self._ip6_output(to, PROTO_ICMPV6, reply.encode(src, to), src)
        elif kind == TYPE6_ECHO_REPLY:
            fut = self._pings.get(message.ident)
            if fut is not None and not fut.done():
                fut.set_result(self.now())
        elif kind == TYPE_PACKET_TOO_BIG:
            self.stats.icmp_errors_received += 1
            self._packet_too_big(message)
        elif kind == TYPE6_DEST_UNREACHABLE:
            self.stats.icmp_errors_received += 1

    def _packet_too_big(self, message: Icmpv6Message) -> None:
        inner = message.body
        if len(inner) < 48 or inner[6] != PROTO_TCP:
            return
        sport = int.from_bytes(inner[40:42], "big")
        dport = int.from_bytes(inner[42:44], "big")
        seq = int.from_bytes(inner[44:48], "big")
        quad = (inner[8:24], sport, inner[24:40], dport)
        flow = self.conns.get(quad)
        if flow is None:
            return
        conn = flow.conn
        if not conn.snd_una <= unwrap(seq, conn.snd_una) < max(conn.snd_max, conn.snd_una + 1):
            return
        mtu = max(message.rest, 1280)
        # The connection's MSS assumes 40 bytes of headers; IPv6 has 20 more.
        if mtu < self.network.mtu and conn.path_mtu_changed(mtu - 20, self.now()):
            self._remember_pmtu(quad[2], mtu - 20)
            self.stats.pmtu_updates += 1
            self._after(conn, quad)

    # ------------------------------------------------------------------ DHCP

    async def start_dhcp(
        self,
        config: DhcpConfig | None = None,
        *,
        timeout: float = 60.0,
        previous: str | None = None,
    ) -> Lease:
        """Run a DHCP client on this stack; returns the first lease. With
        ``previous`` (an address leased before), start with INIT-REBOOT."""
        from .dhcp import CLIENT_PORT, DhcpClient

        self.dhcp = DhcpClient(self.mac, config)
        self.udp_listeners[CLIENT_PORT] = self._dhcp_input
        self._bound.clear()
        again = ipaddress.IPv4Address(previous).packed if previous else None
        self._emit_dhcp(self.dhcp.start(self.now(), previous=again))
        await asyncio.wait_for(self._bound.wait(), timeout)
        assert self.lease is not None
        return self.lease

    def renew_dhcp(self) -> None:
        """Renew the lease now instead of at T1."""
        if self.dhcp is not None:
            self._emit_dhcp(self.dhcp.renew(self.now()))

    def _use_lease(self, lease: Lease, *, announce: bool | None) -> None:
        """Configure the leased address (``announce`` None: it is already in use)."""
        self.dns_servers = tuple(str(ipaddress.IPv4Address(d)) for d in lease.dns_servers)
        if announce is not None:
            self.configure_ipv4(lease.interface, lease.gateway, announce=announce)
        server = ipaddress.IPv4Address(lease.server)
        log.info("DHCP lease %s from %s", lease.interface, server)
        self._bound.set()

    def _dhcp_input(self, src: str, sport: int, payload: bytes) -> None:
        from .dhcp import SERVER_PORT, DhcpMessage

        if self.dhcp is None or sport != SERVER_PORT:
            return
        try:
            message = DhcpMessage.decode(payload)
        except DecodeError as exc:
            self._bad(exc)
            return
        self._emit_dhcp(self.dhcp.input(message, self.now()))

    def _emit_dhcp(self, actions: Sequence[DhcpAction]) -> None:
        from .dhcp import CLIENT_PORT, SERVER_PORT, DhcpBound, DhcpSend, DhcpUnbound

        for action in actions:
            if isinstance(action, DhcpSend):
                datagram = UdpDatagram(CLIENT_PORT, SERVER_PORT, action.message.encode())
                self.ip_output(action.dst, PROTO_UDP, datagram.encode(self.address, action.dst))
            elif isinstance(action, DhcpBound):
                lease = action.lease
                self.lease = lease
                if action.renewed and lease.interface == self.interface:
                    self._use_lease(lease, announce=None)
                elif self.dhcp is not None and self.dhcp.config.arp_check:
                    # RFC 2131 3.1.5: make sure nobody uses the address first.
                    self._dhcp_checking = lease.address
                    self._emit_arp(self.arp.probe(lease.address, self.now()))
                else:
                    self._use_lease(lease, announce=True)
            elif isinstance(action, DhcpUnbound):
                log.info("DHCP: %s", action.reason)
                self._dhcp_checking = None
                self.lease = None
                self._bound.clear()
                self.configure_ipv4(ipaddress.IPv4Interface("0.0.0.0/32"), None, announce=False)
        if self.dhcp is not None:
            self._want(self.dhcp.get_timer())

    # ------------------------------------------------------------------ DHCPv6

    async def start_dhcp6(self, config: Dhcp6Config | None = None, *, timeout: float = 30.0) -> str:
        """Lease an IPv6 address by DHCPv6 (IPv6 must be started); returns it once
        duplicate address detection has passed."""
        from .dhcp6 import CLIENT_PORT6, Dhcp6Client

        ndp = self.ndp
        if ndp is None:
            raise RuntimeError("IPv6 is not enabled")
        self.dhcp6 = Dhcp6Client(self.mac, config)
        self.udp_listeners[CLIENT_PORT6] = self._dhcp6_input
        self._bound6.clear()
        self._emit_dhcp6(self.dhcp6.start(self.now()))
        deadline = self.now() + timeout
        await asyncio.wait_for(self._bound6.wait(), timeout)
        lease = self.lease6
        assert lease is not None
        while lease.address not in ndp.addresses:
            if lease.address not in ndp.tentative:
                raise OSError("the DHCPv6 address is in use on the link")
            self._ipv6_ready.clear()
            await asyncio.wait_for(self._ipv6_ready.wait(), max(deadline - self.now(), 0.01))
        return str(ipaddress.IPv6Address(lease.address))

    def _dhcp6_input(self, src: str, sport: int, payload: bytes) -> None:
        from .dhcp6 import SERVER_PORT6, Dhcp6Message

        if self.dhcp6 is None or sport != SERVER_PORT6:
            return
        try:
            message = Dhcp6Message.decode(payload)
        except DecodeError as exc:
            self._bad(exc)
            return
        self._emit_dhcp6(self.dhcp6.input(message, self.now()))

    def _emit_dhcp6(self, actions: Sequence[Dhcp6Action]) -> None:
        from .dhcp6 import (
            ALL_SERVERS,
            CLIENT_PORT6,
            SERVER_PORT6,
            Dhcp6Bound,
            Dhcp6Send,
            Dhcp6Unbound,
        )

        ndp = self.ndp
        if ndp is None:
            return
        for action in actions:
            if isinstance(action, Dhcp6Send):
                src = ndp.link_local
                if src is None:
                    continue
                datagram = UdpDatagram(CLIENT_PORT6, SERVER_PORT6, action.message.encode())
                self.ip_output(ALL_SERVERS, PROTO_UDP, datagram.encode(src, ALL_SERVERS), src=src)
            elif isinstance(action, Dhcp6Bound):
                self.lease6 = action.lease
                if action.lease.address not in ndp.addresses:
                    self._emit_ndp(ndp.add_address(action.lease.address, 128, self.now()))
                log.info("DHCPv6 lease %s", ipaddress.IPv6Address(action.lease.address))
                self._bound6.set()
            elif isinstance(action, Dhcp6Unbound):
                log.info("DHCPv6: %s", action.reason)
                self.lease6 = None
                self._bound6.clear()
                if action.address is not None:
                    ndp.addresses.pop(action.address, None)
        if self.dhcp6 is not None:
            self._want(self.dhcp6.get_timer())

    async def disconnect(self, *, release: bool = True) -> None:
        """Stop: reset open connections and give a DHCP lease back (unless
        ``release`` is false: a restart may then ask for it again, INIT-REBOOT)."""
        if self._closed:
            return
        if release and self.dhcp is not None and self.lease is not None:
            self._emit_dhcp(self.dhcp.release(self.now()))
        if release and self.dhcp6 is not None and self.lease6 is not None:
            self._emit_dhcp6(self.dhcp6.release(self.now()))
        for flow in list(self.conns.values()):
            flow.conn.abort(self.now())
            self._after(flow.conn, flow.quad)
        await asyncio.sleep(0)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def tcp(self) -> _Tcp:
        return self._tcp

    @property
    def udp(self) -> _Udp:
        return self._udp

    @property
    def ip(self) -> _Ip:
        return self._ip

    def now(self) -> float:
        return self._loop.time()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ output

    async def _write_loop(self) -> None:
        write = self.network.write
        while True:
            await self._tx_ready.wait()
            self._tx_ready.clear()
            frames, self._tx = self._tx, []
            for frame in frames:
                await write(frame)
            self.stats.tx_frames += len(frames)

    def _send_frame(self, dst: bytes, ethertype: int, payload: bytes) -> None:
        frame = dst + self.mac + ethertype.to_bytes(2, "big") + payload
        # Straight to the network when it can take the frame without waiting and
        # nothing is queued ahead of it; else the writer task sends it in order.
        if not self._tx and self._write_nowait is not None and self._write_nowait(frame):
            self.stats.tx_frames += 1
            return
        self._tx.append(frame)
        self._tx_ready.set()

    def _emit_arp(self, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, ArpSend):
                self._send_frame(action.dst, ETHERTYPE_ARP, action.packet.encode())
            elif isinstance(action, ArpResolved):
                for packet in self._arp_queue.pop(action.ip, []):
                    self._send_frame(action.mac, ETHERTYPE_IPV4, packet)
                for fut in self._arp_waiters.pop(action.ip, []):
                    if not fut.done():
                        fut.set_result(action.mac)
            elif isinstance(action, ArpFailed):
                self._arp_queue.pop(action.ip, None)
                for fut in self._arp_waiters.pop(action.ip, []):
                    if not fut.done():
                        fut.set_exception(TimeoutError("no ARP reply"))
            elif isinstance(action, ArpConflict):
                if action.ip == self._dhcp_checking and self.dhcp is not None:
                    self._dhcp_checking = None
                    log.warning(
                        "DHCP: %s is in use; declining it", ipaddress.IPv4Address(action.ip)
                    )
                    self._emit_dhcp(self.dhcp.decline(self.now()))
                    continue
                log.warning("address conflict: %s used by %s", action.ip.hex(), action.mac.hex())
            elif (
                isinstance(action, ArpProbed)
                and action.ip == self._dhcp_checking
                and self.lease is not None
            ):
                self._dhcp_checking = None
                self._use_lease(self.lease, announce=False)  # the probe announced it
        self._want(self.arp.get_timer())

    def _next_hop(self, dst: bytes) -> bytes:
        if self.gateway is None or dst in self._on_link:
            return dst
        if int.from_bytes(dst, "big") & self._netmask == self._netbase:
            if len(self._on_link) >= 256:
                self._on_link.clear()
            self._on_link.add(dst)
            return dst
        return self.gateway

    def ip_output(
        self,
        dst: bytes,
        proto: int,
        payload: bytes,
        *,
        df: bool | None = None,
        src: bytes | None = None,
    ) -> None:
        """Send ``payload`` to ``dst`` (4 bytes: IPv4, 16: IPv6, from ``src`` or the
        address :meth:`source_for` picks); IPv4 TCP goes with don't-fragment set
        (RFC 1191)."""
        if len(dst) == 16:
            self._ip6_output(dst, proto, payload, src)
            return
        self._ip_ident = (self._ip_ident + 1) & 0xFFFF
        mtu = self.network.mtu
        if df is None:
            # (A segment whose options overflow the MTU is fragmented rather than lost.)
            df = proto == PROTO_TCP and len(payload) + 20 <= mtu
        if (
            len(payload) + 20 <= mtu
            and dst != self.address
            and dst not in self._broadcasts
            and (src is None or src == self.address)
        ):
            # The common case, without building a packet object.
            hop = self._next_hop(dst)
            mac, actions = self.arp.query(hop, self.now())
            data = simple_header(
                self.address, dst, proto, len(payload), ident=self._ip_ident, df=df
            )
            data += payload
            if mac is not None:
                self._send_frame(mac, ETHERTYPE_IPV4, data)
                return
            self._queue_for(hop, [data], actions)
            return
        packet = Ipv4Packet(
            self.address, dst, proto, payload, ident=self._ip_ident, dont_fragment=df
        )
        if dst == self.address:
            self._loop.call_soon(self._ip_input, packet)
            return
        pieces = fragment(packet, self.network.mtu)
        if dst in self._broadcasts:
            for piece in pieces:
                self._send_frame(BROADCAST, ETHERTYPE_IPV4, piece)
            return
        hop = self._next_hop(dst)
        mac, actions = self.arp.query(hop, self.now())
        if mac is not None:
            for piece in pieces:
                self._send_frame(mac, ETHERTYPE_IPV4, piece)
            return
        self._queue_for(hop, pieces, actions)

    def _queue_for(self, hop: bytes, packets: list[bytes], actions: Sequence[object]) -> None:
        """Hold IPv4 packets for ``hop`` until ARP resolves it (``actions`` ask).
        Bounded: a few packets per hop, and hops only while ARP is resolving them."""
        if not actions and not self.arp.resolving(hop):
            self.stats.arp_queue_dropped += len(packets)  # ARP's pending table is full
            return
        queue = self._arp_queue.setdefault(hop, [])
        for packet in packets:
            if len(queue) < MAX_ARP_QUEUE:
                queue.append(packet)
            else:
                self.stats.arp_queue_dropped += 1
        self._emit_arp(actions)

    async def resolve(self, ip: str) -> bytes:
        """The MAC address of ``ip`` on the link (an ARP query if needed)."""
        raw = ipaddress.IPv4Address(ip).packed
        mac, actions = self.arp.query(raw, self.now())
        if mac is not None:
            return mac
        if not actions and not self.arp.resolving(raw):
            raise OSError(f"cannot resolve {ip} now: too many addresses being resolved")
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._arp_waiters.setdefault(raw, []).append(fut)
        self._emit_arp(actions)
        return await fut

    async def ping(self, dst: str, payload: bytes = b"mirage", timeout: float = 5.0) -> float:
        """Send an ICMP echo request; the round-trip time in seconds."""
        ident = int.from_bytes(os.urandom(2), "big")
        fut: asyncio.Future[float] = self._loop.create_future()
        self._pings[ident] = fut
        start = self.now()
        raw = ipaddress.ip_address(dst).packed
        if len(raw) == 16:
            src = self.source_for(raw)
            request = Icmpv6Message(TYPE6_ECHO_REQUEST, 0, (ident << 16) | 1, payload)
            self.ip_output(raw, PROTO_ICMPV6, request.encode(src, raw), src=src)
        else:
            message = IcmpMessage.echo_request(ident, 1, payload).encode()
            self.ip_output(raw, PROTO_ICMP, message)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._pings.pop(ident, None)
        return self.now() - start

    # ------------------------------------------------------------------ timers

    def _arm_timer(self) -> None:
        """Arm the one timer at the earliest deadline of every core (after it fired)."""
        if self._closed:
            return
        cores = (self.arp.get_timer(), self.reassembler.get_timer(), self.reassembler6.get_timer())
        times = [t for t in cores if t is not None]
        if self.ndp is not None and (t := self.ndp.get_timer()) is not None:
            times.append(t)
        if self.dhcp is not None and (t := self.dhcp.get_timer()) is not None:
            times.append(t)
        if self.dhcp6 is not None and (t := self.dhcp6.get_timer()) is not None:
            times.append(t)
        heap = self._conn_timers
        while heap and self._conn_due.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # superseded by an earlier deadline, or forgotten
        if heap:
            times.append(heap[0][0])
        self._timer_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if times:
            self._want(min(times))

    def _schedule_conn(self, quad: Quad, conn: Connection) -> None:
        """Keep ``conn``'s deadline in the heap of connection timers. A deadline that
        moves later keeps its earlier entry, which fires, finds nothing due and
        reschedules; so only deadlines that move earlier are pushed."""
        at = conn.get_timer()
        if at is None:
            return
        due = self._conn_due.get(quad)
        if conn.state is State.TIME_WAIT:
            # Once per connection: its earlier entry (the RTO's) is left to be
            # skipped, so that the loop's timer wakes for batches of TIME-WAIT ends.
            at = max(at, math.ceil(at / TIME_WAIT_SLACK) * TIME_WAIT_SLACK)
            if due == at:
                return
        elif due is not None and due <= at:
            return
        self._conn_due[quad] = at
        self._timer_seq += 1
        heapq.heappush(self._conn_timers, (at, self._timer_seq, quad))
        self._want(at)

    def _want(self, at: float | None) -> None:
        """Make sure the timer fires no later than ``at``. Deadlines that move later
        keep the earlier timer: it fires, finds nothing due, and re-arms."""
        if at is None or self._closed:
            return
        if self._timer_at is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.now()
        self._emit_arp(self.arp.handle_timer(now))
        self.reassembler.expire(now)
        self.reassembler6.expire(now)
        if self.dhcp is not None:
            self._emit_dhcp(self.dhcp.handle_timer(now))
        if self.dhcp6 is not None:
            self._emit_dhcp6(self.dhcp6.handle_timer(now))
        if self.ndp is not None:
            self._emit_ndp(self.ndp.handle_timer(now))
        heap = self._conn_timers
        due = self._conn_due
        while heap and heap[0][0] <= now:
            at, _, quad = heapq.heappop(heap)
            if due.get(quad) != at:
                continue  # superseded
            del due[quad]
            flow = self.conns.get(quad)
            if flow is None:
                continue
            t = flow.conn.get_timer()
            if t is not None and t <= now:
                flow.conn.handle_timer(now)
                self._after(flow.conn, quad)
            else:
                self._schedule_conn(quad, flow.conn)
        self._arm_timer()

    # ------------------------------------------------------------------ input

    def _on_frame(self, data: bytes) -> None:
        self.stats.rx_frames += 1
        self._in_rx = True
        try:
            if len(data) < ETH_HEADER:
                raise DecodeError(
                    "ethernet", f"frame of {len(data)} bytes is shorter than a header"
                )
            ethertype = (data[12] << 8) | data[13]
            dst = data[:6]
            if dst not in (self.mac, BROADCAST) and not (
                data[0] & 1 and ethertype == ETHERTYPE_IPV6
            ):
                return
            if ethertype == ETHERTYPE_IPV4:
                # (Decoded from a view: the payload is copied once, by the decoder.)
                self._ip_input(Ipv4Packet.decode(memoryview(data)[ETH_HEADER:]))  # type: ignore[arg-type]
            elif ethertype == ETHERTYPE_IPV6:
                self._ip6_input(Ipv6Packet.decode(data[ETH_HEADER:]))
            elif ethertype == ETHERTYPE_ARP:
                self._emit_arp(self.arp.input(ArpPacket.decode(data[ETH_HEADER:]), self.now()))
            elif ethertype < 0x0600:
                raise DecodeError("ethernet", f"802.3 length field {ethertype}, not Ethernet II")
            else:
                self.stats.rx_dropped += 1
        except DecodeError as exc:
            self._bad(exc)
        except Exception:
            # A bug, or a callback of the application's that failed: the frame is
            # lost, the stack carries on.
            self.stats.rx_errors += 1
            log.exception("error handling a frame")
        finally:
            self._in_rx = False

    def _bad(self, exc: DecodeError) -> None:
        stats = self.stats
        stats.rx_bad += 1
        stats.bad_by_layer[exc.layer] = stats.bad_by_layer.get(exc.layer, 0) + 1
        log.debug("dropped: %s", exc)

    def _ip_input(self, packet: Ipv4Packet) -> None:
        if packet.dst != self.address and packet.dst not in self._broadcasts:
            self.stats.rx_dropped += 1
            return
        whole = packet if not packet.is_fragment else self.reassembler.push(packet, self.now())
        if whole is None:
            self._want(self.reassembler.get_timer())
            return
        try:
            if whole.proto == PROTO_TCP:
                self._tcp_input(whole)
            elif whole.proto == PROTO_UDP:
                self._udp_input(whole)
            elif whole.proto == PROTO_ICMP:
                self._icmp_input(whole)
            else:
                self.stats.rx_dropped += 1
        except DecodeError as exc:
            self._bad(exc)

    def _icmp_input(self, packet: Ipv4Packet) -> None:
        message = IcmpMessage.decode(packet.payload)
        if message.type == TYPE_ECHO_REQUEST and packet.dst == self.address:
            reply = IcmpMessage(TYPE_ECHO_REPLY, 0, message.rest, message.payload)
            self.stats.icmp_echo_replies += 1
            self.ip_output(packet.src, PROTO_ICMP, reply.encode())
        elif message.type == TYPE_ECHO_REPLY:
            fut = self._pings.get(message.ident)
            if fut is not None and not fut.done():
                fut.set_result(self.now())
        elif message.type == TYPE_DEST_UNREACHABLE:
            self.stats.icmp_errors_received += 1
            self._icmp_error(message)

    def _icmp_error(self, message: IcmpMessage) -> None:
        """A hard error about one of our TCP connections that is still opening aborts
        it; fragmentation needed lowers the connection's MSS (RFC 1191)."""
        try:
            inner = message.payload
            ihl = (inner[0] & 0x0F) * 4
            if len(inner) < ihl + 8 or inner[9] != PROTO_TCP:
                return
            sport = int.from_bytes(inner[ihl : ihl + 2], "big")
            dport = int.from_bytes(inner[ihl + 2 : ihl + 4], "big")
            seq = int.from_bytes(inner[ihl + 4 : ihl + 8], "big")
            quad = (inner[12:16], sport, inner[16:20], dport)
            quoted_length = int.from_bytes(inner[2:4], "big")
        except IndexError:
            return
        flow = self.conns.get(quad)
        if flow is not None and message.code == CODE_FRAG_NEEDED:
            conn = flow.conn
            # RFC 5927 4.1: believe only errors quoting a sequence number in flight.
            if not conn.snd_una <= unwrap(seq, conn.snd_una) < max(conn.snd_max, conn.snd_una + 1):
                return
            mtu = message.rest & 0xFFFF
            if mtu == 0 or mtu >= quoted_length:
                # An old router (RFC 1191 5): guess the next plateau below the packet.
                mtu = next((p for p in _PLATEAUS if p < quoted_length), 68)
            if mtu < self.network.mtu and conn.path_mtu_changed(mtu, self.now()):
                self._remember_pmtu(quad[2], mtu)
                self.stats.pmtu_updates += 1
                self._after(conn, quad)
            return
        if flow is not None and flow.conn.state is State.SYN_SENT and message.code in (2, 3):
            flow.conn.abort(self.now(), "connection refused (ICMP unreachable)")
            self._after(flow.conn, quad)

    def _udp_input(self, packet: Ipv4Packet | Ipv6Packet) -> None:
        datagram = UdpDatagram.decode(packet.payload, packet.src, packet.dst)
        callback = self.udp_listeners.get(datagram.dst_port)
        if callback is None:
            if isinstance(packet, Ipv6Packet):
                if not is_multicast(packet.dst):
                    quoted = packet.encode()[:1232]
                    err6 = Icmpv6Message(TYPE6_DEST_UNREACHABLE, CODE6_PORT_UNREACHABLE, 0, quoted)
                    self.stats.icmp_unreachable_sent += 1
                    self.ip_output(
                        packet.src,
                        PROTO_ICMPV6,
                        err6.encode(packet.dst, packet.src),
                        src=packet.dst,
                    )
                return
            if packet.dst == self.address:
                err = IcmpMessage.unreachable(CODE_PORT_UNREACHABLE, packet.encode())
                self.stats.icmp_unreachable_sent += 1
                self.ip_output(packet.src, PROTO_ICMP, err.encode())
            return
        result = callback(
            str(ipaddress.ip_address(packet.src)), datagram.src_port, datagram.payload
        )
        if isinstance(result, Awaitable):  # not inspect: a VM boot defers it
            self._spawn(result)

    def _tcp_input(self, packet: Ipv4Packet | Ipv6Packet) -> None:
        seg = TcpSegment.decode(packet.payload, packet.src, packet.dst)
        quad = (packet.dst, seg.dst_port, packet.src, seg.src_port)
        now = self.now()
        flow = self.conns.get(quad)
        if (
            flow is not None
            and flow.conn.state is State.TIME_WAIT
            and seg.syn
            and not seg.has_ack
            and unwrap(seg.seq, flow.conn.rcv_nxt) > flow.conn.rcv_nxt
        ):
            # RFC 9293 3.6.1: a new SYN above the old sequence space reuses the pair.
            self._forget(quad)
            flow = None
        if flow is not None:
            conn = flow.conn
            una = conn.snd_una
            conn.receive(seg, now)
            if conn.snd_una != una and self.ndp is not None and len(packet.src) == 16:
                # New data acknowledged: the neighbour is reachable (RFC 4861 7.3.1).
                self.ndp.confirm(self.ndp.next_hop(packet.src, now), now)
            self._after(conn, quad)
            return
        handler = self.listeners.get(seg.dst_port)
        if handler is not None and seg.syn and not seg.has_ack and not seg.rst:
            if len(self._syn_received) >= self.listen_backlog:
                # Under pressure: answer statelessly with a SYN cookie.
                iss, _ = self.syn_cookies.make(
                    b"".join((packet.dst, packet.src)) + _ports(seg), seg.seq, seg.mss or 536, now
                )
                reply = TcpSegment(
                    seg.dst_port,
                    seg.src_port,
                    iss,
                    (seg.seq + 1) & 0xFFFFFFFF,
                    SYN | ACK,
                    min(self.tcp_config.recv_buffer, 0xFFFF),
                    mss=self.tcp_config.mss,  # ours; the peer's is in the cookie
                )
                self.stats.syn_cookies_sent += 1
                self.ip_output(
                    packet.src, PROTO_TCP, reply.encode(packet.dst, packet.src), src=packet.dst
                )
                return
            conn = Connection(
                seg.dst_port, seg.src_port, self.isn(*quad, now), now, self._config_for(quad[2])
            )
            conn.path_mtu = self._cached_pmtu(packet.src)
            conn.accept(seg, now)
            flow = TcpFlow(self, conn, quad)
            flow.handler = handler
            self.conns[quad] = flow
            self._syn_received.add(quad)
            self._after(conn, quad)
            return
        if handler is not None and seg.has_ack and not seg.syn and not seg.rst:
            cookie_mss = self.syn_cookies.check(
                b"".join((packet.dst, packet.src)) + _ports(seg),
                seg.seq - 1,
                (seg.ack - 1) & 0xFFFFFFFF,
                now,
            )
            if cookie_mss is not None:
                self.stats.syn_cookies_accepted += 1
                conn = Connection.from_cookie(
                    seg.dst_port,
                    seg.src_port,
                    iss=(seg.ack - 1) & 0xFFFFFFFF,
                    irs=(seg.seq - 1) & 0xFFFFFFFF,
                    mss=cookie_mss,
                    now=now,
                    config=self._config_for(quad[2]),
                )
                flow = TcpFlow(self, conn, quad)
                flow.handler = handler
                self.conns[quad] = flow
                conn.receive(seg, now)
                self._after(conn, quad)
                return
        if seg.rst:
            return
        # No connection: RST (RFC 9293 3.10.7.1).
        if seg.has_ack:
            reply = TcpSegment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
        else:
            reply = TcpSegment(seg.dst_port, seg.src_port, 0, seg.seq + seg.seq_len, RST | ACK, 0)
        self.stats.tcp_resets_sent += 1
        self.ip_output(packet.src, PROTO_TCP, reply.encode(packet.dst, packet.src), src=packet.dst)

    def _remember_pmtu(self, remote: bytes, mtu: int) -> None:
        """Keep a lowered path MTU for new connections to ``remote`` (RFC 1191 6.3:
        for ten minutes, after which the larger MTU is tried again)."""
        self.path_mtus.pop(remote, None)
        if len(self.path_mtus) >= MAX_PATH_MTUS:
            del self.path_mtus[next(iter(self.path_mtus))]
        self.path_mtus[remote] = (mtu, self.now() + PATH_MTU_AGE)

    def _cached_pmtu(self, remote: bytes) -> int | None:
        entry = self.path_mtus.get(remote)
        if entry is None:
            return None
        if entry[1] <= self.now():
            del self.path_mtus[remote]
            return None
        return entry[0]

    def _config_for(self, remote: bytes) -> TcpConfig:
        return self.tcp_config6 if len(remote) == 16 else self.tcp_config

    def _forget(self, quad: Quad) -> None:
        self._syn_received.discard(quad)
        self._conn_due.pop(quad, None)
        flow = self.conns.pop(quad, None)
        if flow is not None:
            flow.changed.set()

    def _after(self, conn: Connection, quad: Quad) -> None:
        """Send what ``conn`` produced, start handlers, wake waiters, re-arm timers."""
        segments = conn.take_segments()
        if segments:
            if self._in_rx:
                # Hold what input produced until the burst being read is processed,
                # so that the ACKs it made can be merged (_flush_held).
                held = self._held.get(quad)
                if held is None:
                    self._held[quad] = segments
                else:
                    held += segments
                if not self._flush_armed:
                    self._flush_armed = True
                    self._loop.call_soon(self._flush_held)
            else:
                held = self._held.pop(quad, None)  # keep the connection's order
                self._tcp_send(quad, held + segments if held else segments)
        flow = self.conns.get(quad)
        if flow is not None and flow.conn is conn:
            handler = flow.handler
            if handler is not None and conn.state is not State.SYN_RECEIVED:
                flow.handler = None
                if conn.state is not State.CLOSED:
                    self._spawn(self._run_handler(handler, flow))
            flow.changed.set()
            if conn.state is not State.SYN_RECEIVED:
                self._syn_received.discard(quad)
            if conn.state is State.CLOSED:
                del self.conns[quad]
                self._conn_due.pop(quad, None)
                return
            self._schedule_conn(quad, conn)

    def _tcp_send(self, quad: Quad, segments: list[TcpSegment]) -> None:
        local, _, remote, _ = quad
        if self._write_tso is not None and len(segments) > 1 and len(remote) == 4:
            segments = self._send_tso(quad, segments)
        for seg in segments:
            self.ip_output(remote, PROTO_TCP, seg.encode(local, remote), src=local)

    def _send_tso(self, quad: Quad, segments: list[TcpSegment]) -> list[TcpSegment]:
        """Send runs of full-sized, contiguous data segments that differ in nothing
        else as one large segment the network splits (TCP segmentation offload);
        what cannot be merged is returned, to be sent one by one, in order."""
        local, _, remote, _ = quad
        hop = self._next_hop(remote)
        mac = self.arp.lookup(hop, self.now())
        write_tso = self._write_tso
        if mac is None or write_tso is None or self._tx:
            return segments  # (frames queued for the writer task must go first)
        rest: list[TcpSegment] = []
        i = 0
        n = len(segments)
        while i < n:
            first = segments[i]
            size = len(first.payload)
            j = i + 1
            if size and not first.flags & ~(ACK | PSH) and not first.sack:
                end = first.seq + size
                total = size
                while j < n and total + size <= TSO_MAX:
                    seg = segments[j]
                    if (
                        seg.seq != end & 0xFFFFFFFF
                        or seg.flags & ~(ACK | PSH)
                        or seg.ack != first.ack
                        or seg.window != first.window
                        or seg.timestamp != first.timestamp
                        or seg.sack
                        or len(seg.payload) > size
                        or not seg.payload
                    ):
                        break
                    end += len(seg.payload)
                    total += len(seg.payload)
                    j += 1
                    if len(seg.payload) < size:
                        break  # a short segment ends a run
            if j - i < 2:
                if rest or i:
                    rest.append(first)
                else:
                    rest = [first]
                i += 1
                continue
            if rest:
                self._tcp_send_plain(quad, rest)
                rest = []
            run = segments[i:j]
            merged = replace(
                first,
                payload=b"".join(s.payload for s in run),
                flags=first.flags | (run[-1].flags & PSH),
            )
            tcp = merged.encode(local, remote)
            self._ip_ident = (self._ip_ident + 1) & 0xFFFF
            packet = simple_header(
                local, remote, PROTO_TCP, len(tcp), ident=self._ip_ident, df=True
            )
            frame = mac + self.mac + b"\x08\x00" + packet + tcp
            header_len = ETH_HEADER + 20 + (len(tcp) - len(merged.payload))
            if write_tso(frame, size, header_len):
                self.stats.tx_frames += 1
                self.stats.tcp_tso_segments += j - i
            else:
                self._tcp_send_plain(quad, run)
            i = j
        return rest

    def _tcp_send_plain(self, quad: Quad, segments: list[TcpSegment]) -> None:
        local, _, remote, _ = quad
        for seg in segments:
            self.ip_output(remote, PROTO_TCP, seg.encode(local, remote), src=local)

    def _flush_held(self) -> None:
        """Send the segments held during a burst of input. A pure ACK is left out
        when a later segment of the same connection acknowledges more (as a receiver
        that coalesces its input would ACK): duplicate ACKs and ACKs carrying SACK
        blocks are kept, so loss signals are not lost."""
        self._flush_armed = False
        held, self._held = self._held, {}
        for quad, queued in held.items():
            segments = queued
            if len(segments) > 1:
                kept: list[TcpSegment] = []
                best = segments[-1].ack if segments[-1].flags & ACK else None
                for seg in reversed(segments):
                    if (
                        seg.flags == ACK
                        and not seg.payload
                        and not seg.sack
                        and best is not None
                        and (best - seg.ack) & 0xFFFFFFFF
                        and (best - seg.ack) & 0xFFFFFFFF < 0x80000000
                    ):
                        self.stats.tcp_acks_merged += 1
                        continue
                    kept.append(seg)
                    if seg.flags & ACK and (
                        best is None or (seg.ack - best) & 0xFFFFFFFF < 0x80000000
                    ):
                        best = seg.ack
                kept.reverse()
                segments = kept
            self._tcp_send(quad, segments)

    async def _run_handler(self, handler: TcpHandler, flow: TcpFlow) -> None:
        try:
            await handler(flow)
        except Exception:
            log.exception("TCP handler failed")
            await flow.close()

    def ephemeral_port(self) -> int:
        lo, hi = EPHEMERAL
        self._next_port = lo + (self._next_port + 1 - lo) % (hi - lo)
        return self._next_port

    async def tcp_connect(self, dst: str, port: int, timeout: float | None = None) -> TcpFlow:
        remote = _packed(dst)
        local = self.source_for(remote)
        for _ in range(hi_lo := EPHEMERAL[1] - EPHEMERAL[0]):
            quad = (local, self.ephemeral_port(), remote, port)
            if quad not in self.conns:
                break
        else:  # pragma: no cover
            raise OSError(f"no free port among {hi_lo}")
        now = self.now()
        conn = Connection(quad[1], port, self.isn(*quad, now), now, self._config_for(remote))
        conn.path_mtu = self._cached_pmtu(remote)
        flow = TcpFlow(self, conn, quad)
        self.conns[quad] = flow
        conn.open(now)
        self._after(conn, quad)
        while conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
            await flow._wait()
        if conn.state is State.CLOSED:
            error = conn.error or "connection failed"
            if "refused" in error:
                raise ConnectionRefusedError(error)
            if "timed out" in error:
                raise TimeoutError(error)
            raise ConnectionError(error)
        return flow
