"""Two TCP connection cores over a simulated link, on a virtual clock.

Segments cross a :class:`~mirage.net.LinkModel` per direction (loss, delay,
reordering, duplication, corruption), encoded and decoded with checksums as on a
real wire, so corrupted segments are dropped as a stack would drop them. Used by the
tests and the loss-recovery benchmark; nothing here sleeps.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from mirage.net import LinkConfig, LinkModel

from ._errors import DecodeError
from .tcp import ACK, RST, Connection, State, TcpConfig, TcpSegment

__all__ = ["SimPair", "TransferResult", "transfer"]

A_IP = bytes((10, 0, 0, 1))
B_IP = bytes((10, 0, 0, 2))


@dataclass
class TransferResult:
    """The outcome of a simulated transfer: data received, timing, segment counts, connections."""

    received: bytes
    duration: float
    completed: bool
    client: Connection
    server: Connection
    segments: int = 0
    dropped: int = 0
    finished_at: float = 0.0
    """Virtual time from the first SYN until the receiver had every byte and the FIN."""

    @property
    def throughput(self) -> float:
        """Bytes per virtual second."""
        return len(self.received) / self.duration if self.duration > 0 else 0.0


@dataclass
class SimPair:
    """A client and a server connection joined by two simulated links."""

    a_to_b: LinkConfig = field(default_factory=LinkConfig)
    b_to_a: LinkConfig = field(default_factory=LinkConfig)
    seed: int = 0
    config: TcpConfig = field(default_factory=TcpConfig)
    server_config: TcpConfig | None = None
    now: float = 0.0

    def __post_init__(self) -> None:
        self._links = {
            "a": LinkModel(self.a_to_b, self.seed),
            "b": LinkModel(self.b_to_a, self.seed + 1),
        }
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._order = itertools.count()
        self.client = Connection(40000, 80, 1_000_000 + self.seed * 7919, 0.0, self.config)
        self.server: Connection | None = None
        self.segments = 0
        self.dropped = 0

    def _flush(self, conn: Connection, side: str) -> None:
        src, dst = (A_IP, B_IP) if side == "a" else (B_IP, A_IP)
        for seg in conn.take_segments():
            self.segments += 1
            wire = seg.encode(src, dst)
            for d in self._links[side].transmit(wire, self.now):
                heapq.heappush(self._queue, (d.at, next(self._order), side, d.frame))

    def flush(self) -> None:
        self._flush(self.client, "a")
        if self.server is not None:
            self._flush(self.server, "b")

    def _deliver(self, side: str, wire: bytes) -> None:
        src, dst = (A_IP, B_IP) if side == "a" else (B_IP, A_IP)
        try:
            seg = TcpSegment.decode(wire, src, dst)
        except DecodeError:
            self.dropped += 1
            return
        if side == "a":
            if self.server is None or self.server.state is State.CLOSED:
                if seg.syn and not seg.has_ack and not seg.rst and self.server is None:
                    self.server = Connection(
                        80,
                        40000,
                        7_000_000 + self.seed,
                        self.now,
                        self.server_config or self.config,
                    )
                    self.server.accept(seg, self.now)
                elif not seg.rst:
                    self._reset(seg)
                return
            self.server.receive(seg, self.now)
        else:
            self.client.receive(seg, self.now)

    def _reset(self, seg: TcpSegment) -> None:
        """What a stack answers for a connection it no longer has (RFC 9293 3.10.7.1)."""
        if seg.has_ack:
            rst = TcpSegment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
        else:
            rst = TcpSegment(seg.dst_port, seg.src_port, 0, seg.seq + seg.seq_len, RST | ACK, 0)
        for d in self._links["b"].transmit(rst.encode(B_IP, A_IP), self.now):
            heapq.heappush(self._queue, (d.at, next(self._order), "b", d.frame))

    def next_time(self) -> float | None:
        times = [t for t in (self.client.get_timer(),) if t is not None]
        if self.server is not None and (t := self.server.get_timer()) is not None:
            times.append(t)
        if self._queue:
            times.append(self._queue[0][0])
        return min(times) if times else None

    def step(self) -> bool:
        """Advance to the next event and process it; False when nothing is left."""
        t = self.next_time()
        if t is None:
            return False
        self.now = max(self.now, t)
        while self._queue and self._queue[0][0] <= self.now:
            _, _, side, wire = heapq.heappop(self._queue)
            self._deliver(side, wire)
        for conn in (self.client, self.server):
            if conn is not None and (timer := conn.get_timer()) is not None and timer <= self.now:
                conn.handle_timer(self.now)
        self.flush()
        return True


def transfer(
    data: bytes,
    *,
    link: LinkConfig | None = None,
    back: LinkConfig | None = None,
    seed: int = 0,
    config: TcpConfig | None = None,
    time_limit: float = 3600.0,
    read_chunk: int = 1 << 30,
) -> TransferResult:
    """Send ``data`` from client to server and close; the server reads everything."""
    pair = SimPair(link or LinkConfig(), back or link or LinkConfig(), seed, config or TcpConfig())
    client = pair.client
    client.open(pair.now)
    pair.flush()
    sent = 0
    got = bytearray()
    closed = False
    start = None
    finished: float | None = None
    while pair.now < time_limit:
        if client.state is State.ESTABLISHED and start is None:
            start = pair.now
        if sent < len(data) and client.send_space:
            sent += client.send(data[sent : sent + client.send_space], pair.now)
        if sent == len(data) and not closed and client.state is State.ESTABLISHED:
            client.shutdown(pair.now)
            closed = True
        server = pair.server
        if server is not None:
            if server.readable:
                got += server.read(pair.now, read_chunk)
            if server.eof and not server.readable and server.state is State.CLOSE_WAIT:
                server.close(pair.now)
            if finished is None and server.eof and not server.readable:
                finished = pair.now
        pair.flush()
        done = (
            server is not None
            and server.state is State.CLOSED
            and client.state in (State.TIME_WAIT, State.CLOSED)
        )
        if done or (client.state is State.CLOSED and client.error):
            break
        if server is not None and server.readable:
            continue  # the application has reading to do before time moves on
        if not pair.step():
            break
    return TransferResult(
        bytes(got),
        (finished if finished is not None else pair.now) - (start or 0.0),
        bytes(got) == data and pair.server is not None and pair.server.state is State.CLOSED,
        client,
        pair.server or client,
        pair.segments,
        pair.dropped,
        finished if finished is not None else pair.now,
    )
