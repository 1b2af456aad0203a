"""The asyncio driver of the authoritative server, over a mirage ``Stack``.

UDP: each datagram to the port is handed to :class:`Authority` and the answer sent
back from the same port. TCP (RFC 7766): each connection carries length-prefixed
queries, answered in order as they arrive (pipelining); a connection idle for
``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mirage.core.types import Flow, FlowClosed, Stack

from ._consts import RRType
from ._journal import Delta, Journal, apply_delta, parse_journal
from ._name import Name
from ._notify import Notifier
from ._rdata import SOA
from ._server import CACHE_SIZE, Authority
from ._signing import ZoneSigner
from ._tsig import TsigKey
from ._zone import Zone
from ._zonefile import read_zone

__all__ = ["DnsServer", "load_zones", "serve"]

log = logging.getLogger("mirage.dns.server")

IDLE_TIMEOUT = 10.0
HOST_BATCH = 64
MAX_TCP_BUFFER = 1 << 20


def replay(zone: Zone, path: Path) -> tuple[Zone, list[Delta]]:
    """``zone`` with the deltas of the journal file that follow from its serial."""
    deltas = parse_journal(path.read_text(encoding="utf-8"), str(path))
    applied = []
    for delta in deltas:
        if delta.old_serial == _serial(zone):
            zone = apply_delta(zone, delta)
            applied.append(delta)
    return zone, applied


def _serial(zone: Zone) -> int:
    soa = zone.soa.rdata
    assert isinstance(soa, SOA)
    return soa.serial


def strip_dnssec(delta: Delta) -> Delta:
    """The delta without the records the server's signer makes (they are made again)."""
    made = (RRType.RRSIG, RRType.NSEC, RRType.NSEC3, RRType.NSEC3PARAM, RRType.DNSKEY)
    removed = tuple(rr for rr in delta.removed if rr.rtype not in made)
    added = tuple(rr for rr in delta.added if rr.rtype not in made)
    return Delta(delta.old_soa, removed, delta.new_soa, added)


def load_zones(paths: Iterable[str | Path]) -> list[Zone]:
    """Read and check each zone file (origin: the SOA's owner)."""
    return [Zone.from_records(read_zone(path), source=str(path)) for path in paths]


class DnsServer:
    """An :class:`Authority` listening on one port of a stack, UDP and TCP."""

    def __init__(
        self,
        stack: Stack,
        authority: Authority,
        port: int = 53,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        notify: Mapping[Name, Sequence[tuple[str, int]]] | None = None,
        journal_files: Mapping[Name, Path] | None = None,
        host_udp: str | None = None,
    ) -> None:
        """``host_udp``: an address of this host to answer UDP on with a host socket of
        our own instead of the stack's UDP, reading datagrams in batches (the
        ``mirage-dns serve`` command on the unix target does; TCP stays on the stack)."""
        self.stack = stack
        self.authority = authority
        self.port = port
        self.idle_timeout = idle_timeout
        self.notifier = Notifier(notify) if notify else None
        self.journal_files = {name.key: path for name, path in (journal_files or {}).items()}
        self.host_udp = host_udp
        self._sock: socket.socket | None = None
        self._view = memoryview(bytearray(65536))
        self._outbox: deque[tuple[str, int, bytes]] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())
        if self.host_udp is not None:
            family = socket.AF_INET6 if ":" in self.host_udp else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((self.host_udp, self.port))
            self._sock = sock
            asyncio.get_running_loop().add_reader(sock.fileno(), self._host_datagrams)
        else:
            await self.stack.udp.listen(self.port, self._datagram)
        await self.stack.tcp.listen(self.port, self._connection)

    def _host_datagrams(self) -> None:
        """Answer every datagram waiting on the host socket (up to a batch)."""
        sock = self._sock
        assert sock is not None
        handle = self.authority.handle
        receive = sock.recvfrom_into
        send = sock.sendto
        view = self._view
        notifier = self.notifier
        now = time.time()  # one clock reading per batch
        for _ in range(HOST_BATCH):
            try:
                size, addr = receive(view)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # an ICMP error reported on the socket
                log.debug("UDP receive: %s", exc)
                continue
            data = view[:size].tobytes()
            if notifier is not None and size > 2 and data[2] & 0x80:
                notifier.receive(data, (addr[0], addr[1]))
                continue
            for reply in handle(data, tcp=False, client=addr[0], now=now):
                try:
                    send(reply, addr)
                except OSError as exc:  # a full buffer: UDP may drop, the client retries
                    log.debug("UDP answer to %s not sent: %s", addr, exc)
            if self.authority.changes:
                self._drain()

    async def _send_udp(self, dst: str, dst_port: int, data: bytes) -> None:
        if self._sock is not None:
            self._sock.sendto(data, (dst, dst_port))
        else:
            await self.stack.udp.write(dst, dst_port, data, src_port=self.port)

    async def stop(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        else:
            await self.stack.udp.unlisten(self.port)
        await self.stack.tcp.unlisten(self.port)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    def _datagram(self, src: str, src_port: int, payload: bytes) -> None:
        # Synchronous, so the stack starts no task per datagram; one writer task
        # sends what is queued.
        if self.notifier is not None and len(payload) > 2 and payload[2] & 0x80:
            self.notifier.receive(payload, (src, src_port))  # a NOTIFY acknowledged
            return
        replies = self.authority.handle(payload, tcp=False, client=src, now=time.time())
        if self.authority.changes:
            self._drain()
        if replies:
            self._outbox.extend((src, src_port, reply) for reply in replies)
            self._wake.set()

    def _drain(self) -> None:
        """Persist the zone changes the authority made and announce them."""
        for delta in self.authority.changes:
            origin = delta.new_soa.name
            path = self.journal_files.get(origin.key)
            if path is not None:
                signed = origin.key in self.authority.signers
                try:
                    with open(path, "a", encoding="utf-8") as journal:
                        journal.write((strip_dnssec(delta) if signed else delta).to_text())
                except OSError as exc:
                    log.error("%s: journal %s not written: %s", origin, path, exc)
            if self.notifier is not None:
                self.notifier.zone_changed(origin, delta.new_soa, time.monotonic())
        self.authority.changes.clear()
        self._wake.set()

    async def _write_loop(self) -> None:
        outbox = self._outbox
        while True:
            timer = self.notifier.get_timer() if self.notifier is not None else None
            if timer is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, timer - time.monotonic()))
            self._wake.clear()
            while outbox:
                dst, dst_port, reply = outbox.popleft()
                try:
                    await self._send_udp(dst, dst_port, reply)
                except OSError as exc:
                    log.debug("UDP answer to %s:%d not sent: %s", dst, dst_port, exc)
            if self.notifier is not None:
                for (dst, dst_port), data in self.notifier.transmit(time.monotonic()):
                    try:
                        await self._send_udp(dst, dst_port, data)
                    except OSError as exc:
                        log.debug("NOTIFY to %s:%d not sent: %s", dst, dst_port, exc)

    async def _connection(self, flow: Flow, encrypted: bool = False) -> None:
        buf = bytearray()
        client = ""
        peer = getattr(flow, "peer", None)
        if isinstance(peer, tuple) and peer:
            client = str(peer[0])
        try:
            while True:
                try:
                    data = await asyncio.wait_for(flow.read(), self.idle_timeout)
                except TimeoutError:
                    break
                if not data:
                    break
                buf += data
                if len(buf) > MAX_TCP_BUFFER:
                    break
                while len(buf) >= 2:
                    length = int.from_bytes(buf[:2], "big")
                    if len(buf) < 2 + length:
                        break
                    query = bytes(buf[2 : 2 + length])
                    del buf[: 2 + length]
                    replies = self.authority.handle(
                        query, tcp=True, client=client, now=time.time(), encrypted=encrypted
                    )
                    if self.authority.changes:
                        self._drain()
                    if replies:
                        await flow.writev([len(r).to_bytes(2, "big") + r for r in replies])
        except FlowClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                await flow.close()


async def serve(
    stack: Stack,
    zone_files: Iterable[str | Path],
    port: int = 53,
    *,
    tsig_keys: Iterable[TsigKey] = (),
    cache_size: int = CACHE_SIZE,
    signers: Mapping[Name, ZoneSigner] | None = None,
    notify: Mapping[Name, Sequence[tuple[str, int]]] | None = None,
    journal: bool = False,
    host_udp: str | None = None,
    nsid: bytes | None = None,
) -> DnsServer:
    """Load the zone files and start answering on ``port``; returns the server.

    Requests signed with one of ``tsig_keys`` get signed answers, and UPDATEs signed
    with one of them are applied (unsigned UPDATEs are refused). The zones named in
    ``signers`` are signed by the server (DNSSEC answers to queries with DO). Each
    change is sent as a NOTIFY to the zone's ``notify`` targets, and with ``journal``
    appended to ``ZONEFILE.jnl``, replayed at the next start: UPDATEs survive restarts
    and IXFR can give the deltas.
    """
    paths = [Path(p) for p in zone_files]
    zones = load_zones(paths)
    journals: dict[Name, Path] = {}
    histories: dict[Name, list[Delta]] = {}
    if journal:
        for index, (path, zone) in enumerate(zip(paths, zones, strict=True)):
            jnl = path.with_name(path.name + ".jnl")
            journals[zone.origin] = jnl
            if jnl.exists():
                zones[index], histories[zone.origin] = replay(zone, jnl)
    authority = Authority(zones, tsig_keys=tsig_keys, cache_size=cache_size, signers=signers,
                          nsid=nsid)  # fmt: skip
    for origin, deltas in histories.items():
        if origin.key not in authority.signers:
            authority.journals[origin.key] = Journal(deltas)
    server = DnsServer(stack, authority, port, notify=notify, journal_files=journals,
                       host_udp=host_udp)  # fmt: skip
    await server.start()
    return server
