"""The ioctl interface of Linux's Xen devices, declared for cffi (ABI mode).

The structures are those of Linux's ``include/uapi/xen/gntalloc.h``, ``gntdev.h``
and ``evtchn.h``; request numbers are ``_IOC(_IOC_NONE, type, nr, size)`` as there.
The tests compile the headers with gcc and compare sizes, offsets and numbers.

Atomic byte operations on shared pages come from the compiler's runtime library
(``libatomic``), loaded through the same FFI; without it they fall back to plain
read-modify-write, which a peer in another domain may race with (a lost wake-up
then costs the drivers' poll interval, not correctness of the data).

Declaring the types parses C (cffi's ``cdef``, with pycparser) at import, and imports
cffi's Python package and pycparser (tens of milliseconds on a build host, many times
that under emulation). An image that
carries this package writes :func:`out_of_line_source` (cffi's out-of-line ABI module
of the same declarations) as ``mirage/xen/_linux_ffi``; with it there, the FFI is
built from that data, and neither the C parser nor cffi's Python package is needed
at run time, only its ``_cffi_backend``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import tempfile
from typing import Any

__all__ = ["REQUESTS", "atomics", "ffi", "out_of_line_source"]

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


def _declared() -> Any:
    """An FFI with the declarations parsed now (cffi ships no type information: its
    objects are Any here)."""
    declared = importlib.import_module("cffi").FFI()
    declared.cdef(CDEF)
    declared.cdef(ATOMICS_CDEF)
    return declared


def out_of_line_source() -> bytes:
    """The source of ``mirage.xen._linux_ffi``: cffi's out-of-line ABI module for
    these declarations (it imports only ``_cffi_backend``)."""
    declared = _declared()
    declared.set_source("mirage.xen._linux_ffi", None)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        path = os.path.join(tmp, "_linux_ffi.py")
        declared.emit_python_code(path)  # it says "generating <path>" on stdout
        with open(path, "rb") as f:
            return f.read()


try:
    # Written into images by their builders (see the module's docstring).
    ffi: Any = importlib.import_module("mirage.xen._linux_ffi").ffi
except ImportError:
    ffi = _declared()

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
