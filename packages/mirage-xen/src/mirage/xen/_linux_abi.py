"""The ioctl interface of Linux's Xen devices, declared for cffi (ABI mode).

The structures are those of Linux's ``include/uapi/xen/gntalloc.h``, ``gntdev.h``
and ``evtchn.h``; request numbers are ``_IOC(_IOC_NONE, type, nr, size)`` as there.
The tests compile the headers with gcc and compare sizes, offsets and numbers.

Atomic byte operations on shared pages come from the compiler's runtime library
(``libatomic``), loaded through the same FFI; without it they fall back to plain
read-modify-write, which a peer in another domain may race with (a lost wake-up
then costs the drivers' poll interval, not correctness of the data).
"""

from __future__ import annotations

import importlib
from typing import Any

# cffi ships no type information: its objects are Any here.
_cffi: Any = importlib.import_module("cffi")

__all__ = ["REQUESTS", "atomics", "ffi"]

CDEF = """
struct ioctl_gntalloc_alloc_gref {
    uint16_t domid; uint16_t flags; uint32_t count; uint64_t index; uint32_t gref_ids[1];
};
struct ioctl_gntalloc_dealloc_gref { uint64_t index; uint32_t count; };
struct ioctl_gntalloc_unmap_notify {
    uint64_t index; uint32_t action; uint32_t event_channel_port;
};
struct ioctl_gntdev_grant_ref { uint32_t domid; uint32_t ref; };
struct ioctl_gntdev_map_grant_ref {
    uint32_t count; uint32_t pad; uint64_t index; struct ioctl_gntdev_grant_ref refs[1];
};
struct ioctl_gntdev_unmap_grant_ref { uint64_t index; uint32_t count; uint32_t pad; };
struct ioctl_gntdev_set_max_grants { uint32_t count; };
struct ioctl_gntdev_unmap_notify {
    uint64_t index; uint32_t action; uint32_t event_channel_port;
};
struct gntdev_grant_copy_segment {
    union {
        void *virt;
        struct { uint32_t ref; uint16_t offset; uint16_t domid; } foreign;
    } source, dest;
    uint16_t len; uint16_t flags; int16_t status;
};
struct ioctl_gntdev_grant_copy { unsigned int count; struct gntdev_grant_copy_segment *segments; };
struct ioctl_evtchn_bind_interdomain { unsigned int remote_domain, remote_port; };
struct ioctl_evtchn_bind_unbound_port { unsigned int remote_domain; };
struct ioctl_evtchn_unbind { unsigned int port; };
struct ioctl_evtchn_notify { unsigned int port; };
"""

ATOMICS_CDEF = """
uint8_t __atomic_fetch_and_1(void *ptr, uint8_t val, int memorder);
uint8_t __atomic_fetch_or_1(void *ptr, uint8_t val, int memorder);
"""

ffi: Any = _cffi.FFI()
ffi.cdef(CDEF)
ffi.cdef(ATOMICS_CDEF)

_IOC_NONE = 0


def _ioc(kind: str, nr: int, struct: str | None) -> int:
    size = ffi.sizeof(struct) if struct else 0
    return (_IOC_NONE << 30) | (size << 16) | (ord(kind) << 8) | nr


REQUESTS = {
    "IOCTL_GNTALLOC_ALLOC_GREF": _ioc("G", 5, "struct ioctl_gntalloc_alloc_gref"),
    "IOCTL_GNTALLOC_DEALLOC_GREF": _ioc("G", 6, "struct ioctl_gntalloc_dealloc_gref"),
    "IOCTL_GNTALLOC_SET_UNMAP_NOTIFY": _ioc("G", 7, "struct ioctl_gntalloc_unmap_notify"),
    "IOCTL_GNTDEV_MAP_GRANT_REF": _ioc("G", 0, "struct ioctl_gntdev_map_grant_ref"),
    "IOCTL_GNTDEV_UNMAP_GRANT_REF": _ioc("G", 1, "struct ioctl_gntdev_unmap_grant_ref"),
    "IOCTL_GNTDEV_SET_MAX_GRANTS": _ioc("G", 3, "struct ioctl_gntdev_set_max_grants"),
    "IOCTL_GNTDEV_SET_UNMAP_NOTIFY": _ioc("G", 7, "struct ioctl_gntdev_unmap_notify"),
    "IOCTL_GNTDEV_GRANT_COPY": _ioc("G", 8, "struct ioctl_gntdev_grant_copy"),
    "IOCTL_EVTCHN_BIND_INTERDOMAIN": _ioc("E", 1, "struct ioctl_evtchn_bind_interdomain"),
    "IOCTL_EVTCHN_BIND_UNBOUND_PORT": _ioc("E", 2, "struct ioctl_evtchn_bind_unbound_port"),
    "IOCTL_EVTCHN_UNBIND": _ioc("E", 3, "struct ioctl_evtchn_unbind"),
    "IOCTL_EVTCHN_NOTIFY": _ioc("E", 4, "struct ioctl_evtchn_notify"),
    "IOCTL_EVTCHN_RESET": _ioc("E", 5, None),
    # xenbus_dev.h: dom0's kernel's xenstore port, for a xenstored in dom0.
    "IOCTL_XENBUS_BACKEND_EVTCHN": _ioc("B", 0, None),
}

UNMAP_NOTIFY_CLEAR_BYTE = 0x1
UNMAP_NOTIFY_SEND_EVENT = 0x2
GNTALLOC_FLAG_WRITABLE = 1
GNTCOPY_SOURCE_GREF, GNTCOPY_DEST_GREF = 1, 2  # Xen's grant_table.h
GNTST_OKAY = 0
SEQ_CST = 5  # __ATOMIC_SEQ_CST

_atomics: Any = None


def atomics() -> Any:
    """``libatomic`` through the FFI, or None if it cannot be loaded."""
    global _atomics
    if _atomics is None:
        try:
            _atomics = ffi.dlopen("libatomic.so.1")
        except OSError:
            _atomics = False
    return _atomics or None
