"""The kernel back-end: the Linux kernel's TCP as the stack under test.

Inside a network namespace of its own, a TAP device carries the kernel's addresses
(192.0.2.1 and 2001:db8::1, the latter without DAD, router solicitations or
advertisements taken); the scripted peer (192.0.2.2 and 2001:db8::2, permanent
neighbour entries, so no ARP or NDP to answer) exists only as the frames this runner
writes to the TAP and reads from it. A script with an ``ipv6`` line uses IPv6
sockets and frames. Segments injected with ``csum bad`` are counted by the kernel in
``InCsumErrors`` (``/proc/net/snmp`` of the namespace). Application calls
are real sockets in the namespace; ``state`` reads ``/proc/net/tcp``. Outbound
segments are matched with the kernel's timing slack (``early``/``late``); ISNs and
timestamp values are remapped by the runner as for any back-end.

The namespace is tuned so that the kernel does what RFC 9293/5681/6675 describe
and not its own extensions: no tail loss probes (``tcp_early_retrans=0``), no RACK
(``tcp_recovery=0``), no F-RTO, no ACK compression for SACK (``tcp_comp_sack_nr=0``),
no autocorking, no saved metrics, exponential SYN backoff from the first retry
(``tcp_syn_linear_timeouts=0``). ``sysctl`` lines of a script add settings for
that script alone. Needs root and ``/dev/net/tun``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import time
from collections import deque
from pathlib import Path

from mirage.tcpip._errors import DecodeError
from mirage.tcpip.ethernet import ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetFrame
from mirage.tcpip.ipv4 import Ipv4Packet
from mirage.tcpip.ipv6 import Ipv6Packet
from mirage.tcpip.tcp import PROTO_TCP, TcpSegment

from ._core import payload, spoil_checksum
from ._model import Call, Script
from ._run import Output

__all__ = ["KERNEL_SYSCTLS", "KernelBackend"]

KERNEL_IP = "192.0.2.1"
PEER_IP = "192.0.2.2"
KERNEL_IP6 = "2001:db8::1"
PEER_IP6 = "2001:db8::2"
PEER_MAC = bytes.fromhex("020000000002")
TUNSETIFF = 0x400454CA
SIOCGIFHWADDR = 0x8927
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
KERNEL_SYSCTLS = {
    "net.ipv4.tcp_early_retrans": "0",
    "net.ipv4.tcp_recovery": "0",
    "net.ipv4.tcp_frto": "0",
    "net.ipv4.tcp_comp_sack_nr": "0",
    "net.ipv4.tcp_autocorking": "0",
    "net.ipv4.tcp_no_metrics_save": "1",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.tcp_syn_linear_timeouts": "0",
}
_STATES = {
    1: "ESTABLISHED",
    2: "SYN-SENT",
    3: "SYN-RECEIVED",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "CLOSED",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
}


def _proc_address(address: bytes) -> str:
    """An address as ``/proc/net/tcp{,6}`` prints it: 32-bit words in host order."""
    return "".join(
        f"{int.from_bytes(address[i : i + 4], 'little'):08X}" for i in range(0, len(address), 4)
    )


def _tcp_checksum_errors() -> int:
    """The namespace's TCP InCsumErrors counter (``/proc/net/snmp``)."""
    rows = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    tcp = [row[1:] for row in rows if row and row[0] == "Tcp:"]
    if len(tcp) < 2 or "InCsumErrors" not in tcp[0]:
        return 0
    return int(tcp[1][tcp[0].index("InCsumErrors")])


def _sysctl(name: str, value: str | None = None) -> str:
    path = Path("/proc/sys") / name.replace(".", "/")
    old = path.read_text().strip()
    if value is not None:
        path.write_text(value)
    return old


def _ip(*args: str) -> None:
    import subprocess

    subprocess.run(["ip", *args], check=True, capture_output=True)


class KernelBackend:
    """Must be made in a thread that is already inside a fresh network namespace
    (see ``mirage.net.testing.inside_netns``); one instance runs scripts one after
    another, each on ports of its own."""

    name = "kernel"
    early = 0.05
    late = 0.6

    def __init__(self, tap: str = "pdtap0") -> None:
        self.tap = tap
        self._fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        ifr = struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI).ljust(40, b"\0")
        fcntl.ioctl(self._fd, TUNSETIFF, ifr)
        # IPv6 for the scripts that ask for it, without router solicitations,
        # router advertisements taken or duplicate address detection to wait for.
        quiet = {"accept_ra": "0", "router_solicitations": "0", "dad_transmits": "0"}
        for key, value in quiet.items():
            with contextlib.suppress(OSError):
                _sysctl(f"net.ipv6.conf.{tap}.{key}", value)
        _ip("link", "set", tap, "up")
        _ip("addr", "add", f"{KERNEL_IP}/24", "dev", tap)
        _ip("-6", "addr", "add", f"{KERNEL_IP6}/64", "dev", tap, "nodad")
        mac = "02:00:00:00:00:02"
        _ip("-6", "neigh", "replace", PEER_IP6, "lladdr", mac, "dev", tap, "nud", "permanent")
        _ip(
            "neigh",
            "replace",
            PEER_IP,
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            tap,
            "nud",
            "permanent",
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            req = struct.pack("16s24x", tap.encode())
            self.mac = fcntl.ioctl(probe.fileno(), SIOCGIFHWADDR, req)[18:24]
        for key, value in KERNEL_SYSCTLS.items():
            with contextlib.suppress(OSError):
                _sysctl(key, value)
        self._kip = socket.inet_aton(KERNEL_IP)
        self._pip = socket.inet_aton(PEER_IP)
        self._kip6 = socket.inet_pton(socket.AF_INET6, KERNEL_IP6)
        self._pip6 = socket.inet_pton(socket.AF_INET6, PEER_IP6)
        self._v6 = False
        self._runs = 0
        self.local_port = 0
        self.remote_port = 0
        self._t0 = 0.0
        self._queue: deque[Output] = deque()
        self._socks: dict[int, socket.socket] = {}
        self._listener: socket.socket | None = None
        self._restore: dict[str, str] = {}
        self._csum_base = 0

    def close(self) -> None:
        os.close(self._fd)

    # ---------------------------------------------------------------- a run

    def start(self, script: Script) -> None:
        self._runs += 1
        self.local_port = 10000 + self._runs
        self.remote_port = 30000 + 16 * self._runs
        self._queue.clear()
        self._socks = {}
        self._listener = None
        self._restore = {}
        self._v6 = script.ipv6
        for key, value in script.sysctl.items():
            self._restore[key] = _sysctl(key, value)
        self._drain(0.0)
        self._csum_base = _tcp_checksum_errors()
        self._t0 = time.monotonic()

    def finish(self) -> None:
        linger = struct.pack("ii", 1, 0)
        for sock in [*self._socks.values(), self._listener]:
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sock.close()
        for key, value in self._restore.items():
            _sysctl(key, value)

    def now(self) -> float:
        return time.monotonic() - self._t0

    # ---------------------------------------------------------------- frames

    def _drain(self, timeout: float) -> bool:
        """Read what the TAP has (waiting up to ``timeout``); True if a segment of
        this run came."""
        got = False
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        while ready:
            try:
                frame = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            at = self.now()
            seg = self._decode(frame)
            if seg is not None:
                self._queue.append(Output(at, seg))
                got = True
        return got

    def _decode(self, frame: bytes) -> TcpSegment | None:
        try:
            eth = EthernetFrame.decode(frame)
            packet: Ipv4Packet | Ipv6Packet
            if eth.ethertype == ETHERTYPE_IPV4:
                packet = Ipv4Packet.decode(eth.payload)
            elif eth.ethertype == ETHERTYPE_IPV6:
                packet = Ipv6Packet.decode(eth.payload)
            else:
                return None
            if packet.proto != PROTO_TCP or packet.dst not in (self._pip, self._pip6):
                return None
            seg = TcpSegment.decode(packet.payload, packet.src, packet.dst)
        except DecodeError:
            return None
        if seg.src_port != self.local_port:
            return None
        if not 0 <= seg.dst_port - self.remote_port < 16:
            return None
        return seg

    def advance(self, until: float) -> list[Output]:
        while (left := until - self.now()) > 0:
            self._drain(left)
        self._drain(0.0)
        out = list(self._queue)
        self._queue.clear()
        return out

    def next_output(self, deadline: float) -> Output | None:
        while not self._queue:
            left = deadline - self.now()
            if left <= 0:
                self._drain(0.0)
                break
            self._drain(left)
        return self._queue.popleft() if self._queue else None

    def inject(self, segment: TcpSegment, *, bad_checksum: bool = False) -> None:
        if self._v6:
            tcp = segment.encode(self._pip6, self._kip6)
            if bad_checksum:
                tcp = spoil_checksum(tcp)
            ip = Ipv6Packet(self._pip6, self._kip6, PROTO_TCP, tcp).encode()
            frame = EthernetFrame(self.mac, PEER_MAC, ETHERTYPE_IPV6, ip).encode()
        else:
            tcp = segment.encode(self._pip, self._kip)
            if bad_checksum:
                tcp = spoil_checksum(tcp)
            packet = Ipv4Packet(self._pip, self._kip, PROTO_TCP, tcp, dont_fragment=True)
            frame = EthernetFrame(self.mac, PEER_MAC, ETHERTYPE_IPV4, packet.encode()).encode()
        os.write(self._fd, frame)

    # ---------------------------------------------------------------- calls

    def _state(self, via: int) -> str:
        kip, pip = (self._kip6, self._pip6) if self._v6 else (self._kip, self._pip)
        want_local = f"{_proc_address(kip)}:{self.local_port:04X}"
        want_remote = f"{_proc_address(pip)}:{self.remote_port + via:04X}"
        listening = False
        table = "/proc/net/tcp6" if self._v6 else "/proc/net/tcp"
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] != want_local:
                continue
            state = _STATES.get(int(fields[3], 16), fields[3])
            if fields[2] == want_remote:
                return state
            if state == "LISTEN":
                listening = True
        return "LISTEN" if listening and via not in self._socks else "CLOSED"

    def _wait_readable(self, sock: socket.socket, timeout: float = 1.0) -> bool:
        ready, _, _ = select.select([sock], [], [], timeout)
        return bool(ready)

    def call(self, call: Call) -> str | None:
        try:
            return self._call(call)
        finally:
            self._drain(0.0)

    def _new_socket(self) -> socket.socket:
        family = socket.AF_INET6 if self._v6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((KERNEL_IP6 if self._v6 else KERNEL_IP, self.local_port))
        sock.setblocking(False)
        return sock

    def _call(self, call: Call) -> str | None:
        name, args = call.name, call.args
        if name == "listen":
            self._listener = self._new_socket()
            self._listener.listen(int(args[1]) if args else 128)
            return None
        if name == "connect":
            active = self._new_socket()
            err = active.connect_ex((PEER_IP6 if self._v6 else PEER_IP, self.remote_port))
            self._socks[0] = active
            return None if err in (0, 115) else os.strerror(err)
        if name == "accept":
            if self._listener is None:
                return "not listening"
            if not self._wait_readable(self._listener):
                return "no connection to accept"
            child, addr = self._listener.accept()
            child.setblocking(False)
            via = (addr[1] - self.remote_port) & 0xFFFF
            self._socks[via] = child
            return None if via == call.via else f"accepted peer {via}, not {call.via}"
        if name == "state":
            got = self._state(call.via)
            return None if got == args[0] else f"state {got}, not {args[0]}"
        if name == "checksum_errors":
            errors = _tcp_checksum_errors() - self._csum_base
            return None if errors == int(args[0]) else f"{errors} checksum errors"
        sock = self._socks.get(call.via)
        if sock is None:
            return "no connection"
        if name == "write":
            n = int(args[0])
            try:
                sent = sock.send(payload(n))
            except OSError as e:
                return f"write failed: {e}"
            return None if sent == n else f"took {sent} of {n} bytes"
        if name == "read":
            return self._read(sock, args[0])
        if name == "shutdown":
            sock.shutdown(socket.SHUT_WR)
        elif name == "close":
            sock.close()
        elif name == "abort":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        elif name == "nodelay":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        elif name == "keepalive":
            idle, interval, count = (int(a) for a in args)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
        return None

    def _read(self, sock: socket.socket, what: str) -> str | None:
        if what == "error":
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return None
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return "no error (would block)"
            except OSError:
                return None
            return f"no error (read {len(data)} bytes)"
        if what == "eof":
            if not self._wait_readable(sock):
                return "not at end of data (would block)"
            try:
                data = sock.recv(65536)
            except OSError as e:
                return f"error {e}"
            return None if data == b"" else f"not at end of data (read {len(data)} bytes)"
        want = int(what)
        got = 0
        deadline = time.monotonic() + 1.0
        while got < want and self._wait_readable(sock, max(0.0, deadline - time.monotonic())):
            try:
                data = sock.recv(want - got)
            except BlockingIOError:
                continue
            except OSError as e:
                return f"error {e} after {got} bytes"
            if not data:
                break
            got += len(data)
        return None if got == want else f"read {got} bytes, not {want}"


def _worker(paths: list[str]) -> list[tuple[str, str | None]]:
    from mirage.net.testing import inside_netns

    from ._model import ScriptError
    from ._parse import parse_file
    from ._run import run_script

    results: list[tuple[str, str | None]] = []
    with inside_netns():
        backend = KernelBackend()
        try:
            for path in paths:
                try:
                    run_script(parse_file(path), backend)
                    results.append((path, None))
                except ScriptError as e:
                    results.append((path, str(e)))
                except Exception as e:
                    results.append((path, f"{type(e).__name__}: {e}"))
        finally:
            backend.close()
    return results


def run_on_kernel(paths: list[str], workers: int = 6) -> dict[str, str | None]:
    """Run script files against the kernel, each worker process in a namespace of
    its own; path -> None (passed) or why it failed."""
    import multiprocessing

    shares = [paths[i::workers] for i in range(workers)]
    shares = [s for s in shares if s]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(shares)) as pool:
        parts = pool.map(_worker, shares)
    return dict(item for part in parts for item in part)
