"""The TCP layer of one host as a sans-IO core: connections keyed by their ports and
the peer's address, listeners with a bounded SYN backlog and SYN cookies once it is
full, resets for segments that reach no connection (RFC 9293 3.10.7.1), and a new SYN
reusing a 4-tuple in TIME-WAIT (RFC 9293 3.6.1).

The driver feeds ``receive(remote, segment, now)``, application calls, and
``handle_timer(now)`` at ``get_timer()``; ``take_segments()`` gives ``(remote,
segment)`` pairs to send. Established passive connections wait in ``accept(port)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ._conn import Connection, State, TcpConfig, unwrap
from ._cookies import SynCookies
from ._segment import ACK, RST, SYN, TcpSegment

__all__ = ["TcpHost"]

Key = tuple[int, bytes, int]
"""(local port, remote address, remote port)."""


class TcpHost:
    def __init__(
        self,
        local_ip: bytes,
        *,
        config: TcpConfig | None = None,
        isn: Callable[[Key, float], int] | None = None,
        cookies: SynCookies | None = None,
    ) -> None:
        self.local_ip = local_ip
        self.config = config or TcpConfig()
        self._isn = isn or (lambda key, now: (int(now * 250_000) + hash(key)) & 0xFFFFFFFF)
        self.cookies = cookies or SynCookies()
        self.conns: dict[Key, Connection] = {}
        self.listeners: dict[int, int] = {}
        """Listening port -> SYN backlog: with more connections than this in
        SYN-RECEIVED, SYNs are answered with cookies."""
        self._accept: dict[int, deque[Connection]] = {}
        self._out: list[tuple[bytes, TcpSegment]] = []
        self._pending: set[Key] = set()
        self._active: dict[Key, Connection] = {}
        """Connections not in TIME-WAIT: the only ones application calls can make
        send anything, so ``flush`` looks at these alone."""
        self.resets_sent = 0
        self.cookies_sent = 0
        self.cookies_accepted = 0

    # ------------------------------------------------------------------ application

    def listen(self, port: int, backlog: int = 128) -> None:
        self.listeners[port] = max(1, backlog)
        self._accept.setdefault(port, deque())

    def unlisten(self, port: int) -> None:
        self.listeners.pop(port, None)

    def accept(self, port: int) -> Connection | None:
        """The oldest connection established on listening ``port`` not yet taken."""
        queue = self._accept.get(port)
        return queue.popleft() if queue else None

    def connect(self, remote: bytes, remote_port: int, local_port: int, now: float) -> Connection:
        key = (local_port, remote, remote_port)
        conn = Connection(local_port, remote_port, self._isn(key, now), now, self.config)
        self.conns[key] = conn
        conn.open(now)
        self._collect(key, conn)
        return conn

    def flush(self, now: float) -> None:
        """Collect what application calls on connections produced."""
        for key, conn in list(self._active.items()):
            self._collect(key, conn)

    # ------------------------------------------------------------------ driver

    def take_segments(self) -> list[tuple[bytes, TcpSegment]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        times = [t for c in self.conns.values() if (t := c.get_timer()) is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for key, conn in list(self.conns.items()):
            at = conn.get_timer()
            if at is not None and at <= now:
                conn.handle_timer(now)
            self._collect(key, conn)

    def receive(self, remote: bytes, seg: TcpSegment, now: float) -> None:
        key = (seg.dst_port, remote, seg.src_port)
        conn = self.conns.get(key)
        if (
            conn is not None
            and conn.state is State.TIME_WAIT
            and seg.syn
            and not seg.has_ack
            and unwrap(seg.seq, conn.rcv_nxt) > conn.rcv_nxt
        ):
            del self.conns[key]
            conn = None
        if conn is not None:
            conn.receive(seg, now)
            self._collect(key, conn)
            return
        backlog = self.listeners.get(seg.dst_port)
        if backlog is not None and seg.syn and not seg.has_ack and not seg.rst:
            pending = sum(
                1
                for k, c in self.conns.items()
                if k[0] == seg.dst_port and c.state is State.SYN_RECEIVED and c.passive
            )
            if pending > backlog:  # as Linux counts: more than the backlog waiting
                iss, _ = self.cookies.make(_quad(key), seg.seq, seg.mss or 536, now)
                self.cookies_sent += 1
                reply = TcpSegment(
                    seg.dst_port,
                    seg.src_port,
                    iss,
                    (seg.seq + 1) & 0xFFFFFFFF,
                    SYN | ACK,
                    min(self.config.recv_buffer, 0xFFFF),
                    mss=self.config.mss,  # ours; the peer's is in the cookie
                )
                self._out.append((remote, reply))
                return
            conn = Connection(seg.dst_port, seg.src_port, self._isn(key, now), now, self.config)
            conn.accept(seg, now)
            self.conns[key] = conn
            self._collect(key, conn)
            return
        if backlog is not None and seg.has_ack and not seg.syn and not seg.rst:
            cookie_mss = self.cookies.check(
                _quad(key), seg.seq - 1, (seg.ack - 1) & 0xFFFFFFFF, now
            )
            if cookie_mss is not None:
                self.cookies_accepted += 1
                conn = Connection.from_cookie(
                    seg.dst_port,
                    seg.src_port,
                    iss=(seg.ack - 1) & 0xFFFFFFFF,
                    irs=(seg.seq - 1) & 0xFFFFFFFF,
                    mss=cookie_mss,
                    now=now,
                    config=self.config,
                )
                self.conns[key] = conn
                self._accept.setdefault(seg.dst_port, deque()).append(conn)
                conn.receive(seg, now)
                self._collect(key, conn, established=True)
                return
        if seg.rst:
            return
        self.resets_sent += 1
        if seg.has_ack:
            reply = TcpSegment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
        else:
            reply = TcpSegment(
                seg.dst_port, seg.src_port, 0, (seg.seq + seg.seq_len) & 0xFFFFFFFF, RST | ACK, 0
            )
        self._out.append((remote, reply))

    def _collect(self, key: Key, conn: Connection, *, established: bool = False) -> None:
        was_pending = key in self._pending
        for seg in conn.take_segments():
            self._out.append((key[1], seg))
        if (
            conn.passive
            and was_pending
            and not established
            and conn.state is not State.SYN_RECEIVED
            and conn.state is not State.CLOSED
            and key[0] in self._accept
        ):
            self._accept[key[0]].append(conn)
        if conn.passive and conn.state is State.SYN_RECEIVED:
            self._pending.add(key)
        else:
            self._pending.discard(key)
        if conn.state is State.CLOSED or conn.state is State.TIME_WAIT:
            if self._active.get(key) is conn:
                del self._active[key]
        elif self.conns.get(key) is conn:
            self._active[key] = conn
        if conn.state is State.CLOSED and self.conns.get(key) is conn:
            del self.conns[key]
            self._pending.discard(key)


def _quad(key: Key) -> bytes:
    local_port, remote, remote_port = key
    return remote + local_port.to_bytes(2, "big") + remote_port.to_bytes(2, "big")
