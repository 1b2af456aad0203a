"""The direct stack: our Ethernet, ARP, IPv4, ICMP, UDP and TCP over a Network.

Theory of operation: this module is the asyncio driver around the sans-IO cores.
``_on_frame`` (the network's listener) decodes each frame and hands it to the cores
synchronously; everything the cores want to send is appended to a transmit list that
one writer task drains into the network, in order. One timer, armed at the earliest
deadline of every core (ARP, reassembly, each TCP connection), calls their
``handle_timer``. Application calls (flows, UDP writes) run the cores directly and
wake the writer. Malformed input is counted in ``stats`` and dropped; it never
raises out of the listener.

Packets to one of our own addresses are looped back without touching the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import os
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from mirage.core.types import FlowClosed, Network, TcpHandler, UdpCallback

from ._errors import DecodeError
from .arp import ArpConflict, ArpCore, ArpFailed, ArpPacket, ArpResolved, ArpSend
from .ethernet import BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame
from .icmp import (
    CODE_PORT_UNREACHABLE,
    PROTO_ICMP,
    TYPE_DEST_UNREACHABLE,
    TYPE_ECHO_REPLY,
    TYPE_ECHO_REQUEST,
    IcmpMessage,
)
from .ipv4 import Ipv4Packet, Reassembler, fragment
from .tcp import (
    ACK,
    PROTO_TCP,
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

__all__ = ["DirectStack", "StackStats", "TcpFlow"]

log = logging.getLogger("mirage.tcpip.stack")

Quad = tuple[bytes, int, bytes, int]
EPHEMERAL = (49152, 65535)
MAX_ARP_QUEUE = 64
LISTEN_BACKLOG = 128


@dataclass(slots=True)
class StackStats:
    rx_frames: int = 0
    rx_dropped: int = 0
    rx_bad: int = 0
    tx_frames: int = 0
    icmp_echo_replies: int = 0
    icmp_unreachable_sent: int = 0
    icmp_errors_received: int = 0
    tcp_resets_sent: int = 0
    syn_cookies_sent: int = 0
    syn_cookies_accepted: int = 0


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

    @property
    def peer(self) -> tuple[str, int]:
        return str(ipaddress.IPv4Address(self.quad[2])), self.quad[3]

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
        dst_ip = ipaddress.IPv4Address(dst).packed
        datagram = UdpDatagram(sport, dst_port, payload).encode(stack.address, dst_ip)
        stack.ip_output(dst_ip, PROTO_UDP, datagram)


class _Ip:
    def __init__(self, stack: DirectStack) -> None:
        self._stack = stack

    def configured_ips(self) -> list[str]:
        return [str(self._stack.interface.ip)]

    def mtu(self, dst: str) -> int:
        return self._stack.network.mtu

    async def write(self, dst: str, proto: int, payload: bytes) -> None:
        self._stack.ip_output(ipaddress.IPv4Address(dst).packed, proto, payload)


class DirectStack:
    def __init__(
        self,
        network: Network,
        interface: ipaddress.IPv4Interface,
        gateway: ipaddress.IPv4Address | None,
        tcp_config: TcpConfig | None = None,
    ) -> None:
        self.network = network
        self.interface = interface
        self.address = interface.ip.packed
        self.gateway = gateway.packed if gateway is not None else None
        self.mac = network.mac
        self.stats = StackStats()
        self._loop = asyncio.get_running_loop()
        self.arp = ArpCore(self.mac, [self.address])
        self.reassembler = Reassembler()
        mss = network.mtu - 40
        self.tcp_config = tcp_config or TcpConfig(mss=mss)
        self.isn = IsnGenerator()
        self.syn_cookies = SynCookies()
        self.listen_backlog = LISTEN_BACKLOG
        self.conns: dict[Quad, TcpFlow] = {}
        self.listeners: dict[int, TcpHandler] = {}
        self.udp_listeners: dict[int, UdpCallback] = {}
        self._arp_queue: dict[bytes, list[bytes]] = {}
        self._arp_waiters: dict[bytes, list[asyncio.Future[bytes]]] = {}
        self._tx: list[bytes] = []
        self._tx_ready = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._pings: dict[int, asyncio.Future[float]] = {}
        self._next_port = EPHEMERAL[0] + int.from_bytes(os.urandom(2), "big") % 10000
        self._ip_ident = int.from_bytes(os.urandom(2), "big")
        self._tcp = _Tcp(self)
        self._udp = _Udp(self)
        self._ip = _Ip(self)
        self._closed = False
        self._writer = self._spawn(self._write_loop())
        self._reader = self._spawn(network.listen(self._on_frame))

    @classmethod
    async def connect(
        cls,
        *,
        network: Network,
        ipv4: str = "10.0.0.2/24",
        ipv4_gateway: str | None = None,
        tcp_config: TcpConfig | None = None,
    ) -> DirectStack:
        interface = ipaddress.IPv4Interface(ipv4)
        gateway = ipaddress.IPv4Address(ipv4_gateway) if ipv4_gateway else None
        stack = cls(network, interface, gateway, tcp_config)
        stack._emit_arp(stack.arp.gratuitous())
        return stack

    async def disconnect(self) -> None:
        if self._closed:
            return
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
        while True:
            await self._tx_ready.wait()
            self._tx_ready.clear()
            frames, self._tx = self._tx, []
            for frame in frames:
                await self.network.write(frame)
                self.stats.tx_frames += 1

    def _send_frame(self, dst: bytes, ethertype: int, payload: bytes) -> None:
        self._tx.append(EthernetFrame(dst, self.mac, ethertype, payload).encode())
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
                log.warning("address conflict: %s used by %s", action.ip.hex(), action.mac.hex())
        self._want(self.arp.get_timer())

    def _next_hop(self, dst: bytes) -> bytes:
        if ipaddress.IPv4Address(dst) in self.interface.network or self.gateway is None:
            return dst
        return self.gateway

    def ip_output(self, dst: bytes, proto: int, payload: bytes, *, df: bool = True) -> None:
        self._ip_ident = (self._ip_ident + 1) & 0xFFFF
        packet = Ipv4Packet(self.address, dst, proto, payload, ident=self._ip_ident)
        if dst == self.address:
            self._loop.call_soon(self._ip_input, packet)
            return
        pieces = fragment(packet, self.network.mtu)
        if dst in (b"\xff\xff\xff\xff", self.interface.network.broadcast_address.packed):
            for piece in pieces:
                self._send_frame(BROADCAST, ETHERTYPE_IPV4, piece)
            return
        hop = self._next_hop(dst)
        mac, actions = self.arp.query(hop, self.now())
        if mac is not None:
            for piece in pieces:
                self._send_frame(mac, ETHERTYPE_IPV4, piece)
            return
        queue = self._arp_queue.setdefault(hop, [])
        for piece in pieces:
            if len(queue) < MAX_ARP_QUEUE:
                queue.append(piece)
        self._emit_arp(actions)

    async def resolve(self, ip: str) -> bytes:
        """The MAC address of ``ip`` on the link (an ARP query if needed)."""
        raw = ipaddress.IPv4Address(ip).packed
        mac, actions = self.arp.query(raw, self.now())
        if mac is not None:
            return mac
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
        message = IcmpMessage.echo_request(ident, 1, payload).encode()
        self.ip_output(ipaddress.IPv4Address(dst).packed, PROTO_ICMP, message)
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
        times = [t for t in (self.arp.get_timer(), self.reassembler.get_timer()) if t is not None]
        for flow in self.conns.values():
            t = flow.conn.get_timer()
            if t is not None:
                times.append(t)
        self._timer_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if times:
            self._want(min(times))

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
        for quad, flow in list(self.conns.items()):
            t = flow.conn.get_timer()
            if t is not None and t <= now:
                flow.conn.handle_timer(now)
                self._after(flow.conn, quad, arm=False)
        self._arm_timer()

    # ------------------------------------------------------------------ input

    def _on_frame(self, data: bytes) -> None:
        self.stats.rx_frames += 1
        try:
            frame = EthernetFrame.decode(data)
            if frame.dst not in (self.mac, BROADCAST):
                return
            if frame.ethertype == ETHERTYPE_ARP:
                self._emit_arp(self.arp.input(ArpPacket.decode(frame.payload), self.now()))
            elif frame.ethertype == ETHERTYPE_IPV4:
                packet = Ipv4Packet.decode(frame.payload)
                self._ip_input(packet)
            else:
                self.stats.rx_dropped += 1
        except DecodeError as exc:
            self.stats.rx_bad += 1
            log.debug("dropped: %s", exc)

    def _ip_input(self, packet: Ipv4Packet) -> None:
        if packet.dst != self.address:
            bcast = self.interface.network.broadcast_address.packed
            if packet.dst not in (bcast, b"\xff\xff\xff\xff"):
                self.stats.rx_dropped += 1
                return
        whole = self.reassembler.push(packet, self.now())
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
            self.stats.rx_bad += 1
            log.debug("dropped: %s", exc)

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
        """A hard error about one of our TCP connections that is still opening aborts it."""
        try:
            inner = message.payload
            ihl = (inner[0] & 0x0F) * 4
            if len(inner) < ihl + 8 or inner[9] != PROTO_TCP:
                return
            sport = int.from_bytes(inner[ihl : ihl + 2], "big")
            dport = int.from_bytes(inner[ihl + 2 : ihl + 4], "big")
            quad = (inner[12:16], sport, inner[16:20], dport)
        except IndexError:
            return
        flow = self.conns.get(quad)
        if flow is not None and flow.conn.state is State.SYN_SENT and message.code in (2, 3):
            flow.conn.abort(self.now(), "connection refused (ICMP unreachable)")
            self._after(flow.conn, quad)

    def _udp_input(self, packet: Ipv4Packet) -> None:
        datagram = UdpDatagram.decode(packet.payload, packet.src, packet.dst)
        callback = self.udp_listeners.get(datagram.dst_port)
        if callback is None:
            if packet.dst == self.address:
                err = IcmpMessage.unreachable(CODE_PORT_UNREACHABLE, packet.encode())
                self.stats.icmp_unreachable_sent += 1
                self.ip_output(packet.src, PROTO_ICMP, err.encode())
            return
        result = callback(
            str(ipaddress.IPv4Address(packet.src)), datagram.src_port, datagram.payload
        )
        if inspect.isawaitable(result):
            self._spawn(result)

    def _tcp_input(self, packet: Ipv4Packet) -> None:
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
            flow.conn.receive(seg, now)
            self._after(flow.conn, quad)
            return
        handler = self.listeners.get(seg.dst_port)
        if handler is not None and seg.syn and not seg.has_ack and not seg.rst:
            pending = sum(1 for f in self.conns.values() if f.conn.state is State.SYN_RECEIVED)
            if pending >= self.listen_backlog:
                # Under pressure: answer statelessly with a SYN cookie.
                iss, mss = self.syn_cookies.make(
                    b"".join((packet.dst, packet.src)) + _ports(seg), seg.seq, seg.mss or 536, now
                )
                reply = TcpSegment(
                    seg.dst_port,
                    seg.src_port,
                    iss,
                    (seg.seq + 1) & 0xFFFFFFFF,
                    SYN | ACK,
                    min(self.tcp_config.recv_buffer, 0xFFFF),
                    mss=min(mss, self.tcp_config.mss),
                )
                self.stats.syn_cookies_sent += 1
                self.ip_output(packet.src, PROTO_TCP, reply.encode(packet.dst, packet.src))
                return
            conn = Connection(
                seg.dst_port, seg.src_port, self.isn(*quad, now), now, self.tcp_config
            )
            conn.accept(seg, now)
            flow = TcpFlow(self, conn, quad)
            flow.handler = handler  # type: ignore[attr-defined]
            self.conns[quad] = flow
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
                    config=self.tcp_config,
                )
                flow = TcpFlow(self, conn, quad)
                flow.handler = handler  # type: ignore[attr-defined]
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
        self.ip_output(packet.src, PROTO_TCP, reply.encode(packet.dst, packet.src))

    def _forget(self, quad: Quad) -> None:
        flow = self.conns.pop(quad, None)
        if flow is not None:
            flow.changed.set()

    def _after(self, conn: Connection, quad: Quad, *, arm: bool = True) -> None:
        """Send what ``conn`` produced, start handlers, wake waiters, re-arm timers."""
        local, _, remote, _ = quad
        for seg in conn.take_segments():
            self.ip_output(remote, PROTO_TCP, seg.encode(local, remote))
        flow = self.conns.get(quad)
        if flow is not None and flow.conn is conn:
            handler = getattr(flow, "handler", None)
            if handler is not None and conn.state is not State.SYN_RECEIVED:
                flow.handler = None  # type: ignore[attr-defined]
                if conn.state is not State.CLOSED:
                    self._spawn(self._run_handler(handler, flow))
            flow.changed.set()
            if conn.state is State.CLOSED:
                del self.conns[quad]
        if arm:
            self._want(conn.get_timer())

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
        remote = ipaddress.IPv4Address(dst).packed
        for _ in range(hi_lo := EPHEMERAL[1] - EPHEMERAL[0]):
            quad = (self.address, self.ephemeral_port(), remote, port)
            if quad not in self.conns:
                break
        else:  # pragma: no cover
            raise OSError(f"no free port among {hi_lo}")
        now = self.now()
        conn = Connection(quad[1], port, self.isn(*quad, now), now, self.tcp_config)
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
