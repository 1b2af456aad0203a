"""Grant tables and event channels of a real Xen host, through Linux's devices.

Theory of operation. The same interface as :mod:`mirage.xen.sim`, over the three
character devices a Linux domain (dom0 or a guest) offers:

- ``/dev/xen/gntalloc`` shares pages: ``IOCTL_GNTALLOC_ALLOC_GREF`` allocates
  ``count`` pages granted to a remote domain and answers their grant references and
  an offset, at which ``mmap`` of the device gives the pages;
  ``IOCTL_GNTALLOC_DEALLOC_GREF`` ends the access.
- ``/dev/xen/gntdev`` maps pages granted to us: ``IOCTL_GNTDEV_MAP_GRANT_REF`` takes
  (domain, reference) pairs and answers an offset to ``mmap``;
  ``IOCTL_GNTDEV_UNMAP_GRANT_REF`` forgets them after ``munmap``.
- ``/dev/xen/evtchn``: ``IOCTL_EVTCHN_BIND_UNBOUND_PORT``/``BIND_INTERDOMAIN``
  answer the local port; ``IOCTL_EVTCHN_NOTIFY`` signals; reading the device gives
  the ports that fired (``u32`` each), which stay masked until written back.

Both grant devices offer unmap notifications (``*_SET_UNMAP_NOTIFY``: clear a byte
and signal a port when the mapping goes, e.g. when the process dies), which the
vchan endpoints use for their live bytes.

The ioctl structures are declared for cffi in :mod:`mirage.xen._linux_abi`. Opening
a :class:`LinuxDomain` where ``/dev/xen`` is absent raises :class:`HypervisorError`
naming the missing device.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
from collections.abc import Sequence
from typing import Any

from ._hypervisor import PAGE_SIZE, Grant, HypervisorError, Mapping
from ._linux_abi import (
    GNTALLOC_FLAG_WRITABLE,
    GNTCOPY_DEST_GREF,
    GNTCOPY_SOURCE_GREF,
    GNTST_OKAY,
    REQUESTS,
    SEQ_CST,
    UNMAP_NOTIFY_CLEAR_BYTE,
    UNMAP_NOTIFY_SEND_EVENT,
    atomics,
    ffi,
)
from ._portwait import PortWaiters

__all__ = [
    "DEVICES",
    "XENBUS_BACKEND",
    "LinuxDomain",
    "LinuxEventChannels",
    "LinuxGrantTable",
    "available",
    "xenbus_backend_ring",
]

DEVICES = ("/dev/xen/gntalloc", "/dev/xen/gntdev", "/dev/xen/evtchn")
XENBUS_BACKEND = "/dev/xen/xenbus_backend"
_PORT = struct.Struct("<I")


def available() -> str | None:
    """None if this host has Linux's Xen devices, else why not (the missing one)."""
    for path in DEVICES:
        if not os.path.exists(path):
            return f"{path} is missing (not a Xen domain, or the xen modules are not loaded)"
    return None


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        raise HypervisorError(f"cannot open {path}: {err.strerror}") from None


def _ioctl(fd: int, name: str, arg: Any) -> int:
    try:
        return int(fcntl.ioctl(fd, REQUESTS[name], ffi.buffer(arg), True))
    except OSError as err:
        raise HypervisorError(f"{name}: {err.strerror}") from None


class LinuxGrantTable:
    def __init__(self, domid: int) -> None:
        self._domid = domid
        self._alloc = _open(DEVICES[0])
        try:
            self._dev = _open(DEVICES[1])
        except BaseException:
            os.close(self._alloc)
            raise
        # What each region came from: the device, its offset, page count and mmap.
        self._regions: dict[int, tuple[int, int, int, mmap.mmap]] = {}
        self._atomics = atomics()

    def share(self, remote: int, count: int, writable: bool = True) -> Grant:
        if count < 1:
            raise HypervisorError("share at least one page")
        struct_name = "struct ioctl_gntalloc_alloc_gref"
        size = ffi.sizeof(struct_name) + 4 * (count - 1)
        buf = ffi.new("char[]", size)
        req = ffi.cast(struct_name + " *", buf)
        req.domid = remote
        req.flags = GNTALLOC_FLAG_WRITABLE if writable else 0
        req.count = count
        _ioctl(self._alloc, "IOCTL_GNTALLOC_ALLOC_GREF", buf)
        ids = ffi.cast(
            "uint32_t *", ffi.cast("char *", buf) + ffi.offsetof(struct_name, "gref_ids")
        )
        refs = tuple(int(ids[i]) for i in range(count))
        index = int(req.index)
        mem = mmap.mmap(self._alloc, count * PAGE_SIZE, mmap.MAP_SHARED, offset=index)
        view = memoryview(mem)
        self._regions[id(view)] = (self._alloc, index, count, mem)
        return Grant(remote, refs, view)

    def end_access(self, grant: Grant) -> None:
        dev, index, count, _ = self._forget(grant)
        arg = ffi.new("struct ioctl_gntalloc_dealloc_gref *", {"index": index, "count": count})
        _ioctl(dev, "IOCTL_GNTALLOC_DEALLOC_GREF", arg)

    def map(self, remote: int, refs: Sequence[int], writable: bool = True) -> Mapping:
        refs = tuple(refs)
        if not refs:
            raise HypervisorError("map at least one reference")
        struct_name = "struct ioctl_gntdev_map_grant_ref"
        size = ffi.sizeof(struct_name) + 8 * (len(refs) - 1)
        buf = ffi.new("char[]", size)
        req = ffi.cast(struct_name + " *", buf)
        req.count = len(refs)
        pairs = ffi.cast(
            "struct ioctl_gntdev_grant_ref *",
            ffi.cast("char *", buf) + ffi.offsetof(struct_name, "refs"),
        )
        for i, ref in enumerate(refs):
            pairs[i].domid = remote
            pairs[i].ref = ref
        _ioctl(self._dev, "IOCTL_GNTDEV_MAP_GRANT_REF", buf)
        index = int(req.index)
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        try:
            mem = mmap.mmap(self._dev, len(refs) * PAGE_SIZE, mmap.MAP_SHARED, prot, offset=index)
        except OSError as err:  # a bad reference shows here: the hypervisor refused it
            arg = ffi.new(
                "struct ioctl_gntdev_unmap_grant_ref *", {"index": index, "count": len(refs)}
            )
            with contextlib.suppress(HypervisorError):
                _ioctl(self._dev, "IOCTL_GNTDEV_UNMAP_GRANT_REF", arg)
            raise HypervisorError(f"mapping grants {refs} of domain {remote}: {err}") from None
        view = memoryview(mem)
        self._regions[id(view)] = (self._dev, index, len(refs), mem)
        return Mapping(remote, refs, view)

    def unmap(self, mapping: Mapping) -> None:
        dev, index, count, _ = self._forget(mapping)
        arg = ffi.new("struct ioctl_gntdev_unmap_grant_ref *", {"index": index, "count": count})
        _ioctl(dev, "IOCTL_GNTDEV_UNMAP_GRANT_REF", arg)

    def _grant_copy(
        self, remote: int, ref: int, offset: int, buf: Any, *, n: int, out: bool
    ) -> None:
        if offset < 0 or n < 0 or offset + n > PAGE_SIZE:
            raise HypervisorError(f"copy of {n} bytes at {offset} crosses the page")
        seg = ffi.new("struct gntdev_grant_copy_segment *")
        foreign = seg.source.foreign if not out else seg.dest.foreign
        foreign.ref, foreign.offset, foreign.domid = ref, offset, remote
        if out:
            seg.source.virt = ffi.cast("void *", buf)
            seg.flags = GNTCOPY_DEST_GREF
        else:
            seg.dest.virt = ffi.cast("void *", buf)
            seg.flags = GNTCOPY_SOURCE_GREF
        seg.len = n
        arg = ffi.new("struct ioctl_gntdev_grant_copy *", {"count": 1, "segments": seg})
        _ioctl(self._dev, "IOCTL_GNTDEV_GRANT_COPY", arg)
        if seg.status != GNTST_OKAY:
            raise HypervisorError(f"grant copy of {ref} of domain {remote}: status {seg.status}")

    def copy_from(self, remote: int, ref: int, offset: int, length: int) -> bytes:
        buf = ffi.new("char[]", max(length, 1))
        self._grant_copy(remote, ref, offset, buf, n=length, out=False)
        return bytes(ffi.buffer(buf, length))

    def copy_to(self, remote: int, ref: int, offset: int, data: bytes) -> None:
        buf = ffi.from_buffer(data)
        self._grant_copy(remote, ref, offset, buf, n=len(data), out=True)

    def _forget(self, region: Grant | Mapping) -> tuple[int, int, int, mmap.mmap]:
        entry = self._regions.pop(id(region.memory), None)
        if entry is None:
            raise HypervisorError("not a region of this grant table")
        # Views of the region still held elsewhere keep it mapped until they go.
        with contextlib.suppress(BufferError, ValueError):
            region.memory.release()
        with contextlib.suppress(BufferError, ValueError):
            entry[3].close()
        return entry

    def _byte_op(self, region: Grant | Mapping, offset: int, value: int, name: str) -> int:
        if self._atomics is not None:
            ptr = ffi.cast("char *", ffi.from_buffer(region.memory)) + offset
            return int(getattr(self._atomics, name)(ptr, value, SEQ_CST))
        old = region.memory[offset]
        region.memory[offset] = (old & value) if name == "__atomic_fetch_and_1" else (old | value)
        return old

    def fetch_and(self, region: Grant | Mapping, offset: int, mask: int) -> int:
        return self._byte_op(region, offset, mask & 0xFF, "__atomic_fetch_and_1")

    def fetch_or(self, region: Grant | Mapping, offset: int, bits: int) -> int:
        return self._byte_op(region, offset, bits & 0xFF, "__atomic_fetch_or_1")

    def unmap_notify(self, region: Grant | Mapping, offset: int, port: int) -> None:
        entry = self._regions.get(id(region.memory))
        if entry is None:
            raise HypervisorError("not a region of this grant table")
        dev, index = entry[0], entry[1]
        which = "gntalloc" if dev == self._alloc else "gntdev"
        arg = ffi.new(
            f"struct ioctl_{which}_unmap_notify *",
            {
                "index": index + offset,
                "action": UNMAP_NOTIFY_CLEAR_BYTE | UNMAP_NOTIFY_SEND_EVENT,
                "event_channel_port": port,
            },
        )
        _ioctl(dev, f"IOCTL_{which.upper()}_SET_UNMAP_NOTIFY", arg)

    def close(self) -> None:
        for _, _, _, mem in self._regions.values():
            with contextlib.suppress(BufferError, ValueError):
                mem.close()
        self._regions.clear()
        os.close(self._dev)
        os.close(self._alloc)


class LinuxEventChannels(PortWaiters):
    def __init__(self) -> None:
        super().__init__()
        self._fd = _open(DEVICES[2])
        os.set_blocking(self._fd, False)

    def bind_unbound_port(self, remote: int) -> int:
        arg = ffi.new("struct ioctl_evtchn_bind_unbound_port *", {"remote_domain": remote})
        return _ioctl(self._fd, "IOCTL_EVTCHN_BIND_UNBOUND_PORT", arg)

    def bind_interdomain(self, remote: int, remote_port: int) -> int:
        arg = ffi.new(
            "struct ioctl_evtchn_bind_interdomain *",
            {"remote_domain": remote, "remote_port": remote_port},
        )
        return _ioctl(self._fd, "IOCTL_EVTCHN_BIND_INTERDOMAIN", arg)

    def notify(self, port: int) -> None:
        arg = ffi.new("struct ioctl_evtchn_notify *", {"port": port})
        _ioctl(self._fd, "IOCTL_EVTCHN_NOTIFY", arg)

    def unbind(self, port: int) -> None:
        arg = ffi.new("struct ioctl_evtchn_unbind *", {"port": port})
        _ioctl(self._fd, "IOCTL_EVTCHN_UNBIND", arg)

    def _fileno(self) -> int:
        return self._fd

    def _read_ports(self) -> list[int] | None:
        try:
            data = os.read(self._fd, 4 * 64)
        except OSError:  # BlockingIOError, InterruptedError: nothing more for now
            return None
        if not data:
            return None
        ports = [port for (port,) in _PORT.iter_unpack(data[: len(data) - len(data) % 4])]
        for port in ports:
            # Unmask: the driver masks a port that fired until we write it back.
            with contextlib.suppress(OSError):
                os.write(self._fd, _PORT.pack(port))
        return ports

    def close(self) -> None:
        self._stop_reading()
        os.close(self._fd)


def xenbus_backend_ring() -> tuple[memoryview, int]:
    """Dom0's kernel's xenstore page and the kernel's port, for a xenstored running in
    dom0 (as Xen's C xenstored takes them): ``mmap`` of ``/dev/xen/xenbus_backend``
    and its ``IOCTL_XENBUS_BACKEND_EVTCHN``. Serve them with
    :meth:`mirage.xen.xenstore.RingConnection.local` (bind to domain 0's port)."""
    fd = _open(XENBUS_BACKEND)
    try:
        try:
            port = fcntl.ioctl(fd, REQUESTS["IOCTL_XENBUS_BACKEND_EVTCHN"])
        except OSError as err:
            raise HypervisorError(f"IOCTL_XENBUS_BACKEND_EVTCHN: {err.strerror}") from None
        try:
            page = mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED)
        except OSError as err:  # ENODEV: xenstore is not local (a stub domain runs it)
            raise HypervisorError(f"mapping {XENBUS_BACKEND}: {err.strerror}") from None
    finally:
        os.close(fd)
    return memoryview(page), int(port)


class LinuxDomain:
    """This Linux domain (``domid`` as xenstore's ``domid`` node says) on a Xen host."""

    introduce_names_frames = True
    """xenstore's INTRODUCE names a real guest's ring by its frame, not a grant."""

    def __init__(self, domid: int) -> None:
        why = available()
        if why is not None:
            raise HypervisorError(why)
        self._domid = domid
        self._gnttab = LinuxGrantTable(domid)
        try:
            self._evtchn = LinuxEventChannels()
        except BaseException:
            self._gnttab.close()
            raise

    @property
    def domid(self) -> int:
        return self._domid

    @property
    def gnttab(self) -> LinuxGrantTable:
        return self._gnttab

    @property
    def evtchn(self) -> LinuxEventChannels:
        return self._evtchn

    def close(self) -> None:
        """Close the devices: Linux ends our grants and mappings, running the unmap
        notifications, and unbinds our ports."""
        self._evtchn.close()
        self._gnttab.close()
