"""The in-process back-end: our TCP core (``TcpHost``) on a virtual clock.

Timers fire exactly when the core asks, so runs are deterministic and take no real
time. Segments cross the codec both ways (encode, then decode with the checksum
verified), as they would on a wire. ``config`` lines of a script set
:class:`~mirage.tcpip.tcp.TcpConfig` fields.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from mirage.tcpip._errors import DecodeError
from mirage.tcpip.tcp import Connection, TcpConfig, TcpHost, TcpSegment

from ._model import Call, Script
from ._run import Output

__all__ = ["CoreBackend"]

LOCAL_IP = bytes((192, 0, 2, 1))
REMOTE_IP = bytes((192, 0, 2, 2))
LOCAL_IP6 = bytes.fromhex("20010db8000000000000000000000001")
REMOTE_IP6 = bytes.fromhex("20010db8000000000000000000000002")
MSS6 = 1440
"""The MSS over IPv6 on a 1500-byte link (the IPv6 header is 20 bytes longer)."""


def _config(script: Script) -> TcpConfig:
    fields = {f.name: f for f in dataclasses.fields(TcpConfig)}
    values: dict[str, object] = {"mss": MSS6} if script.ipv6 else {}
    for key, text in script.config.items():
        if key not in fields:
            raise ValueError(f"{script.name}: no TcpConfig field {key!r}")
        default = getattr(TcpConfig(), key)
        if isinstance(default, bool):
            values[key] = text.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int):
            values[key] = int(text)
        elif isinstance(default, float):
            values[key] = float(text)
        else:
            values[key] = text
    return TcpConfig(**values)  # type: ignore[arg-type]


def spoil_checksum(wire: bytes) -> bytes:
    """``wire`` (a TCP segment) with its checksum field changed."""
    return wire[:16] + bytes([wire[16] ^ 0x5A]) + wire[17:]


def payload(n: int) -> bytes:
    """What ``write N`` sends: a repeating pattern."""
    return bytes(i & 0xFF for i in range(n))


class CoreBackend:
    name = "ours"
    early = 1e-9
    late = 1e-9

    def __init__(self, local_port: int = 8080, remote_port: int = 40000) -> None:
        self.local_port = local_port
        self.remote_port = remote_port
        self._now = 0.0
        self._queue: deque[Output] = deque()
        self.host = TcpHost(LOCAL_IP)
        self.conns: dict[int, Connection] = {}
        self.checksum_errors = 0
        self.local_ip, self.remote_ip = LOCAL_IP, REMOTE_IP

    def start(self, script: Script) -> None:
        self._now = 0.0
        self._queue.clear()
        self.conns.clear()
        self.checksum_errors = 0
        v6 = script.ipv6
        self.local_ip, self.remote_ip = (LOCAL_IP6, REMOTE_IP6) if v6 else (LOCAL_IP, REMOTE_IP)
        self.host = TcpHost(
            self.local_ip,
            config=_config(script),
            isn=lambda key, now: 0x10000 * (key[2] % 1000 + 1),
        )

    def now(self) -> float:
        return self._now

    def _collect(self) -> None:
        for remote, seg in self.host.take_segments():
            wire = seg.encode(self.local_ip, remote)
            self._queue.append(Output(self._now, TcpSegment.decode(wire, self.local_ip, remote)))

    def _step(self, until: float) -> bool:
        """Fire the next timer due by ``until``; False when there is none."""
        at = self.host.get_timer()
        if at is None or at > until:
            return False
        self._now = max(self._now, at)
        self.host.handle_timer(self._now)
        self._collect()
        return True

    def advance(self, until: float) -> list[Output]:
        while self._step(until):
            pass
        self._now = max(self._now, until)
        out = list(self._queue)
        self._queue.clear()
        return out

    def next_output(self, deadline: float) -> Output | None:
        while not self._queue:
            if not self._step(deadline):
                return None
        return self._queue.popleft()

    def inject(self, segment: TcpSegment, *, bad_checksum: bool = False) -> None:
        wire = segment.encode(self.remote_ip, self.local_ip)
        if bad_checksum:
            wire = spoil_checksum(wire)
        try:
            seg = TcpSegment.decode(wire, self.remote_ip, self.local_ip)
        except DecodeError:
            # What the stack does with a segment that fails its checksum: drop, count.
            self.checksum_errors += 1
            return
        self.host.receive(self.remote_ip, seg, self._now)
        self._collect()

    def call(self, call: Call) -> str | None:
        try:
            return self._call(call)
        finally:
            self.host.flush(self._now)
            self._collect()

    def _call(self, call: Call) -> str | None:
        now = self._now
        name, args = call.name, call.args
        if name == "listen":
            backlog = int(args[1]) if args else 128
            self.host.listen(self.local_port, backlog)
            return None
        if name == "connect":
            self.conns[0] = self.host.connect(
                self.remote_ip, self.remote_port, self.local_port, now
            )
            return None
        if name == "accept":
            conn = self.host.accept(self.local_port)
            if conn is None:
                return "no connection to accept"
            via = (conn.remote_port - self.remote_port) & 0xFFFF
            if via != call.via:
                return f"accepted peer {via}, not {call.via}"
            self.conns[via] = conn
            return None
        if name == "checksum_errors":
            got_errors = self.checksum_errors
            return None if got_errors == int(args[0]) else f"{got_errors} checksum errors"
        conn = self.conns.get(call.via)
        if name == "state":
            if conn is None:
                key = (self.local_port, self.remote_ip, (self.remote_port + call.via) & 0xFFFF)
                conn = self.host.conns.get(key)
            got = conn.state.value if conn is not None else "CLOSED"
            if conn is None and self.local_port in self.host.listeners:
                got = "LISTEN"
            return None if got == args[0] else f"state {got}, not {args[0]}"
        if conn is None:
            return "no connection"
        if name == "write":
            n = int(args[0])
            taken = conn.send(payload(n), now)
            return None if taken == n else f"took {taken} of {n} bytes"
        if name == "read":
            if args[0] == "error":
                return None if conn.error is not None else "no error"
            if args[0] == "eof":
                if conn.readable or not conn.eof or conn.error is not None:
                    return f"not at end of data (readable {conn.readable}, error {conn.error})"
                return None
            want = int(args[0])
            data = conn.read(now, want)
            return None if len(data) == want else f"read {len(data)} bytes, not {want}"
        if name == "shutdown":
            conn.shutdown(now)
        elif name == "close":
            conn.close(now)
        elif name == "abort":
            conn.abort(now)
        elif name == "nodelay":
            conn.config = dataclasses.replace(conn.config, nodelay=True)
        elif name == "keepalive":
            idle, interval, count = (int(a) for a in args)
            conn.set_keepalive(now, True, idle=idle, interval=interval, count=count)
        return None

    def finish(self) -> None:
        pass
