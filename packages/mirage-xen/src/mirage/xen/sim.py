"""A simulated hypervisor: domains as processes of one machine.

Theory of operation. A simulation lives in a directory. Each domain's memory is a
file ``mem/<domid>``; page ``ref`` of that file is what grant reference ``ref``
names (references start at 8, as Xen reserves the first ones). The domain's grant
table is the file ``gnttab/<domid>``: entry ``ref`` (4 bytes at ``4 * ref``) holds
the remote domain (``u16``) and flags (granted, writable). Mapping checks the
entries and ``mmap``s the pages, so both domains see the same memory.
References granted together are consecutive and map as one contiguous region.

Event channels: each domain owns a datagram socket in Linux's abstract namespace,
named after the simulation and the domain. ``evtchn/<domid>-<port>`` records a port:
the remote domain, and once bound, the remote port. ``notify`` sends the remote port
number to the remote domain's socket; the receiver marks it pending or wakes the
task waiting for it. Pending notifications coalesce.

Unmap notification (as ``gntalloc``/``gntdev`` offer): a domain may ask that, when
it dies, a byte of some shared page be zeroed and a port notified.
:meth:`SimHypervisor.destroy` plays the toolstack destroying the domain and does it.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import secrets
import socket
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from ._hypervisor import PAGE_SIZE, Grant, HypervisorError, Mapping
from ._portwait import PortWaiters

__all__ = ["SimDomain", "SimEventChannels", "SimGrantTable", "SimHypervisor"]

FIRST_REF = 8
_PORT = struct.Struct("<I")
_ENTRY = struct.Struct("<HBx")
GRANTED, WRITABLE = 1, 2


class SimHypervisor:
    """A simulation rooted at ``root``; other processes open it with the same path."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        for sub in ("mem", "gnttab", "evtchn", "notify"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        ident = self.root / "id"
        if not ident.exists():
            tmp = self.root / f"id.{os.getpid()}"
            tmp.write_text(secrets.token_hex(8))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, ident)
            tmp.unlink()
        self.ident = ident.read_text()

    def socket_name(self, domid: int) -> bytes:
        return f"\0mirage-xen-sim-{self.ident}-{domid}".encode()

    def domain(self, domid: int) -> SimDomain:
        return SimDomain(self, domid)

    def destroy(self, domid: int) -> None:
        """Run the unmap notifications ``domid`` registered, as Xen does when a
        domain dies, and forget its ports."""
        for entry in sorted((self.root / "notify").glob(f"{domid}-*")):
            owner, ref, offset, port = (int(x) for x in entry.read_text().split())
            with open(self.root / "mem" / str(owner), "r+b") as f:
                f.seek(ref * PAGE_SIZE + offset)
                f.write(b"\0")
            peer = _read_port(self.root / "evtchn" / f"{domid}-{port}")
            if peer is not None and peer[1] is not None:
                _send(self.socket_name(peer[0]), peer[1])
            entry.unlink()


def _read_port(path: Path) -> tuple[int, int | None] | None:
    try:
        fields = path.read_text().split()
    except FileNotFoundError:
        return None
    return int(fields[0]), (int(fields[1]) if len(fields) > 1 else None)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def _send(name: bytes, port: int) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(_PORT.pack(port), name)
        except (ConnectionRefusedError, FileNotFoundError, BlockingIOError):
            pass  # the peer is gone (or drowning): like an event to a dead domain


class SimGrantTable:
    def __init__(self, hv: SimHypervisor, domid: int) -> None:
        self._hv, self._domid = hv, domid
        self._mem = hv.root / "mem" / str(domid)
        self._mem.touch()
        self._table = hv.root / "gnttab" / str(domid)
        self._table.touch()
        self._maps: list[mmap.mmap] = []
        self._fds: dict[int, int] = {}
        self._table_fds: dict[int, int] = {}
        self._notify = 0

    def share(self, remote: int, count: int, writable: bool = True) -> Grant:
        if count < 1:
            raise HypervisorError("share at least one page")
        with open(self._mem, "r+b") as f:
            first = max(FIRST_REF, os.fstat(f.fileno()).st_size // PAGE_SIZE)
            f.truncate((first + count) * PAGE_SIZE)
            mem = mmap.mmap(f.fileno(), count * PAGE_SIZE, offset=first * PAGE_SIZE)
        self._maps.append(mem)
        refs = tuple(range(first, first + count))
        entry = _ENTRY.pack(remote, GRANTED | (WRITABLE if writable else 0))
        with open(self._table, "r+b") as f:
            os.pwrite(f.fileno(), entry * count, first * _ENTRY.size)
        return Grant(remote, refs, memoryview(mem))

    def end_access(self, grant: Grant) -> None:
        with open(self._table, "r+b") as f:
            os.pwrite(f.fileno(), bytes(_ENTRY.size * len(grant.refs)), grant.refs[0] * _ENTRY.size)

    def map(self, remote: int, refs: Sequence[int], writable: bool = True) -> Mapping:
        refs = tuple(refs)
        if not refs or refs != tuple(range(refs[0], refs[0] + len(refs))):
            raise HypervisorError(f"the simulation maps consecutive references only: {refs}")
        try:
            with open(self._hv.root / "gnttab" / str(remote), "rb") as f:
                table = os.pread(f.fileno(), _ENTRY.size * len(refs), refs[0] * _ENTRY.size)
        except FileNotFoundError:
            raise HypervisorError(f"domain {remote} does not exist") from None
        for i, ref in enumerate(refs):
            if len(table) < (i + 1) * _ENTRY.size:
                raise HypervisorError(f"domain {remote} has no grant {ref}")
            granted_to, flags = _ENTRY.unpack_from(table, i * _ENTRY.size)
            if not flags & GRANTED:
                raise HypervisorError(f"domain {remote} has no grant {ref}")
            if granted_to != self._domid or (writable and not flags & WRITABLE):
                raise HypervisorError(f"grant {ref} of domain {remote} is not ours to map")
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        with open(self._hv.root / "mem" / str(remote), "r+b" if writable else "rb") as f:
            mem = mmap.mmap(
                f.fileno(), len(refs) * PAGE_SIZE, offset=refs[0] * PAGE_SIZE, access=access
            )
        self._maps.append(mem)
        return Mapping(remote, refs, memoryview(mem))

    def unmap(self, mapping: Mapping) -> None:
        with contextlib.suppress(BufferError):
            mapping.memory.release()

    def _copy_check(self, remote: int, ref: int, offset: int, length: int, write: bool) -> int:
        """The file offset of a grant copy, once the remote's grant allows it."""
        if offset < 0 or length < 0 or offset + length > PAGE_SIZE:
            raise HypervisorError(f"copy of {length} bytes at {offset} crosses the page")
        try:
            entry = os.pread(self._table_fd(remote), _ENTRY.size, ref * _ENTRY.size)
        except FileNotFoundError:
            raise HypervisorError(f"domain {remote} does not exist") from None
        if len(entry) < _ENTRY.size:
            raise HypervisorError(f"domain {remote} has no grant {ref}")
        granted_to, flags = _ENTRY.unpack(entry)
        if not flags & GRANTED:
            raise HypervisorError(f"domain {remote} has no grant {ref}")
        if granted_to != self._domid or (write and not flags & WRITABLE):
            raise HypervisorError(f"grant {ref} of domain {remote} is not ours to copy")
        return ref * PAGE_SIZE + offset

    def copy_from(self, remote: int, ref: int, offset: int, length: int) -> bytes:
        where = self._copy_check(remote, ref, offset, length, write=False)
        return os.pread(self._fd(remote), length, where)

    def copy_to(self, remote: int, ref: int, offset: int, data: bytes) -> None:
        where = self._copy_check(remote, ref, offset, len(data), write=True)
        os.pwrite(self._fd(remote), data, where)

    def _table_fd(self, owner: int) -> int:
        fd = self._table_fds.get(owner)
        if fd is None:
            fd = os.open(self._hv.root / "gnttab" / str(owner), os.O_RDONLY)
            self._table_fds[owner] = fd
        return fd

    def _fd(self, owner: int) -> int:
        fd = self._fds.get(owner)
        if fd is None:
            fd = self._fds[owner] = os.open(self._hv.root / "mem" / str(owner), os.O_RDWR)
        return fd

    def _atomic(self, region: Grant | Mapping, offset: int, op: Callable[[int], int]) -> int:
        # Byte-range locks exclude other processes; within one process the GIL and
        # the absence of await between read and write exclude everything else.
        owner = self._domid if isinstance(region, Grant) else region.remote
        fd = self._fd(owner)
        where = region.refs[0] * PAGE_SIZE + offset
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, where)
        try:
            old = region.memory[offset]
            region.memory[offset] = op(old) & 0xFF
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, where)
        return old

    def fetch_and(self, region: Grant | Mapping, offset: int, mask: int) -> int:
        return self._atomic(region, offset, lambda b: b & mask)

    def fetch_or(self, region: Grant | Mapping, offset: int, bits: int) -> int:
        return self._atomic(region, offset, lambda b: b | bits)

    def unmap_notify(self, region: Grant | Mapping, offset: int, port: int) -> None:
        """When this domain dies, zero byte ``offset`` of ``region`` and notify ``port``."""
        owner = self._domid if isinstance(region, Grant) else region.remote
        ref = region.refs[offset // PAGE_SIZE]
        self._notify += 1
        entry = self._hv.root / "notify" / f"{self._domid}-{self._notify}"
        entry.write_text(f"{owner} {ref} {offset % PAGE_SIZE} {port}")

    def close(self) -> None:
        for m in self._maps:
            with contextlib.suppress(BufferError, ValueError):
                m.close()
        self._maps.clear()
        for fd in (*self._fds.values(), *self._table_fds.values()):
            os.close(fd)
        self._fds.clear()
        self._table_fds.clear()


class SimEventChannels(PortWaiters):
    def __init__(self, hv: SimHypervisor, domid: int) -> None:
        super().__init__()
        self._hv, self._domid = hv, domid
        self._dir = hv.root / "evtchn"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(hv.socket_name(domid))
        self._sock.setblocking(False)
        self._peers: dict[int, tuple[int, int]] = {}
        self._local: set[int] = set()

    def _new_port(self, record: str) -> int:
        port = 1
        while True:
            try:
                fd = os.open(
                    self._dir / f"{self._domid}-{port}", os.O_CREAT | os.O_EXCL | os.O_WRONLY
                )
            except FileExistsError:
                port += 1
                continue
            os.write(fd, record.encode())
            os.close(fd)
            self._local.add(port)
            return port

    def bind_unbound_port(self, remote: int) -> int:
        return self._new_port(str(remote))

    def bind_interdomain(self, remote: int, remote_port: int) -> int:
        theirs = self._dir / f"{remote}-{remote_port}"
        record = _read_port(theirs)
        if record is None or record[0] != self._domid or record[1] is not None:
            raise HypervisorError(f"port {remote_port} of domain {remote} is not open to us")
        port = self._new_port(f"{remote} {remote_port}")
        _write_atomic(theirs, f"{self._domid} {port}")
        self._peers[port] = (remote, remote_port)
        return port

    def _peer(self, port: int) -> tuple[int, int] | None:
        peer = self._peers.get(port)
        if peer is None:
            record = _read_port(self._dir / f"{self._domid}-{port}")
            if record is None:
                raise HypervisorError(f"port {port} is not bound")
            if record[1] is None:
                return None
            peer = self._peers[port] = (record[0], record[1])
        return peer

    def notify(self, port: int) -> None:
        peer = self._peer(port)
        if peer is not None:
            _send(self._hv.socket_name(peer[0]), peer[1])

    def unbind(self, port: int) -> None:
        self._peers.pop(port, None)
        self._local.discard(port)
        with contextlib.suppress(FileNotFoundError):
            (self._dir / f"{self._domid}-{port}").unlink()

    def _fileno(self) -> int:
        return self._sock.fileno()

    def _read_ports(self) -> list[int] | None:
        try:
            data = self._sock.recv(64)
        except OSError:  # BlockingIOError: nothing more for now
            return None
        if len(data) != _PORT.size:
            return []
        return [_PORT.unpack(data)[0]]

    def close(self) -> None:
        self._stop_reading()
        for port in list(self._local):
            self.unbind(port)
        self._sock.close()


class SimDomain:
    """One domain of a simulation: its grant table and event channels."""

    def __init__(self, hv: SimHypervisor, domid: int) -> None:
        self.hv = hv
        self._domid = domid
        self._gnttab = SimGrantTable(hv, domid)
        self._evtchn = SimEventChannels(hv, domid)

    @property
    def domid(self) -> int:
        return self._domid

    @property
    def gnttab(self) -> SimGrantTable:
        return self._gnttab

    @property
    def evtchn(self) -> SimEventChannels:
        return self._evtchn

    def close(self) -> None:
        """Leave the machine: the unmap notifications run (as when Linux's gntdev
        and gntalloc devices close), then ports and pages go."""
        self.hv.destroy(self._domid)
        self._evtchn.close()
        self._gnttab.close()
