"""Our vchan endpoint against libxenvchan's own code, on one shared page.

libxenvchan (Debian package libxen-dev, or libxenmisc4.17 for the library alone)
needs Xen's devices to set a vchan up, but its data path (``libxenvchan_write``,
``libxenvchan_read``, ``libxenvchan_data_ready``, ``libxenvchan_buffer_space``,
``libxenvchan_is_open``) only reads and writes the shared page through the control
structure. We fill that structure ourselves (ctypes, its layout checked with gcc
against ``libxenvchan.h``), point it at a page our :class:`Endpoint` also uses, and
run random interleavings of both ends, across the wrap of the ``u32`` indices.

libxenvchan signals its event channel only when the peer asked for it in its own
notify byte; the tests clear that byte before each of its calls, so that it never
reaches for the (absent) event-channel device.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.vchan._endpoint import Endpoint
from mirage.vchan._layout import (
    CLI_LIVE,
    CLI_NOTIFY,
    LEFT,
    LEFT_ORDER,
    RIGHT,
    RIGHT_ORDER,
    SRV_LIVE,
    SRV_NOTIFY,
    Live,
)

HEADER = "/usr/include/libxenvchan.h"


class Ring(ctypes.Structure):
    _fields_ = [("shr", ctypes.c_void_p), ("buffer", ctypes.c_void_p), ("order", ctypes.c_int)]


class Ctrl(ctypes.Structure):
    _fields_ = [
        ("handle", ctypes.c_void_p),
        ("ring", ctypes.c_void_p),
        ("event", ctypes.c_void_p),
        ("event_port", ctypes.c_uint32),
        ("is_server", ctypes.c_int, 1),
        ("server_persist", ctypes.c_int, 1),
        ("blocking", ctypes.c_int, 1),
        ("read", Ring),
        ("write", Ring),
        ("xs_path", ctypes.c_char_p),
    ]


LAYOUT_C = r"""
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <libxenvchan.h>
int main(void) {
    struct libxenvchan c;
    memset(&c, 0, sizeof c);
    c.is_server = 1;
    c.blocking = 1;
    unsigned char *p = (unsigned char *)&c;
    printf("%zu %zu %zu %zu %zu %zu %zu %d\n", sizeof c,
           offsetof(struct libxenvchan, event_port), offsetof(struct libxenvchan, read),
           offsetof(struct libxenvchan, write), offsetof(struct libxenvchan, xs_path),
           sizeof(struct libxenvchan_ring), offsetof(struct libxenvchan_ring, order),
           p[offsetof(struct libxenvchan, event_port) + 4]);
    return 0;
}
"""


def test_control_structure_matches_the_header() -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    if not os.path.exists(HEADER):
        pytest.skip(f"{HEADER} is missing (Debian package libxen-dev)")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "layout.c", Path(tmp) / "layout"
        src.write_text(LAYOUT_C)
        subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    c = [int(x) for x in out.split()]
    ours = Ctrl()
    ours.is_server = 1
    ours.blocking = 1
    flags = bytes(ours)[Ctrl.event_port.offset + 4]
    assert c == [
        ctypes.sizeof(Ctrl),
        Ctrl.event_port.offset,
        Ctrl.read.offset,
        Ctrl.write.offset,
        Ctrl.xs_path.offset,
        ctypes.sizeof(Ring),
        Ring.order.offset,
        flags,
    ]


def library() -> Any:
    name = ctypes.util.find_library("xenvchan") or "libxenvchan.so.4.17"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        pytest.skip("libxenvchan is not installed (Debian package libxenmisc4.17 / libxen-dev)")
    ptr = ctypes.POINTER(Ctrl)
    for fn in ("libxenvchan_write", "libxenvchan_read"):
        getattr(lib, fn).argtypes = [ptr, ctypes.c_void_p, ctypes.c_size_t]
        getattr(lib, fn).restype = ctypes.c_int
    for fn in ("libxenvchan_data_ready", "libxenvchan_buffer_space", "libxenvchan_is_open"):
        getattr(lib, fn).argtypes = [ptr]
        getattr(lib, fn).restype = ctypes.c_int
    return lib


class Pair:
    """A page shared by libxenvchan (one end) and our Endpoint (the other), with the
    rings inside the page: the left one (order 10) at 1024, the right (11) at 2048."""

    def __init__(self, lib: Any, lib_is_server: bool, start: int) -> None:
        self.lib = lib
        self.page = (ctypes.c_uint8 * 4096)()
        view = memoryview(self.page).cast("B")
        self.view = view
        for off in (LEFT, LEFT + 4, RIGHT, RIGHT + 4):
            view[off : off + 4] = start.to_bytes(4, "little")
        view[LEFT_ORDER : LEFT_ORDER + 2] = (10).to_bytes(2, "little")
        view[RIGHT_ORDER : RIGHT_ORDER + 2] = (11).to_bytes(2, "little")
        view[CLI_LIVE] = view[SRV_LIVE] = Live.CONNECTED
        base = ctypes.addressof(self.page)
        left = Ring(base + LEFT, base + 1024, 10)
        right = Ring(base + RIGHT, base + 2048, 11)
        self.ctrl = Ctrl()
        self.ctrl.ring = base
        self.ctrl.is_server = 1 if lib_is_server else 0
        # The server reads the left ring and writes the right one.
        self.ctrl.read, self.ctrl.write = (left, right) if lib_is_server else (right, left)
        self.lib_notify = SRV_NOTIFY if lib_is_server else CLI_NOTIFY

        def fetch_and(off: int, mask: int) -> int:
            old = view[off]
            view[off] = old & mask & 0xFF
            return old

        def fetch_or(off: int, bits: int) -> int:
            old = view[off]
            view[off] = (old | bits) & 0xFF
            return old

        self.ours = Endpoint(
            view,
            view[1024:2048],
            view[2048:4096],
            is_server=not lib_is_server,
            fetch_and=fetch_and,
            fetch_or=fetch_or,
        )

    def _quiet(self) -> None:
        self.view[self.lib_notify] = 0  # nobody asked libxenvchan to signal

    def lib_write(self, data: bytes) -> int:
        self._quiet()
        return int(self.lib.libxenvchan_write(ctypes.byref(self.ctrl), data, len(data)))

    def lib_read(self, n: int) -> bytes | int:
        self._quiet()
        buf = ctypes.create_string_buffer(max(n, 1))
        got = int(self.lib.libxenvchan_read(ctypes.byref(self.ctrl), buf, n))
        return buf.raw[:got] if got >= 0 else got

    def call(self, fn: str) -> int:
        self._quiet()
        return int(getattr(self.lib, fn)(ctypes.byref(self.ctrl)))


ops = st.lists(
    st.tuples(
        st.sampled_from(["lib_write", "our_read", "our_write", "lib_read"]), st.integers(1, 3000)
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    ops,
    st.booleans(),
    st.sampled_from([0, 0xFFFFFFFF - 700, 0xFFFFFFFF - 1500, 123456]),
    st.randoms(use_true_random=False),
)
def test_random_interleavings_agree(
    steps: list[tuple[str, int]], lib_is_server: bool, start: int, rnd: Any
) -> None:
    pair = Pair(library(), lib_is_server, start)
    to_ours, to_lib = bytearray(), bytearray()  # what is in flight each way
    for op, n in steps:
        if op == "lib_write":
            data = rnd.randbytes(n)
            space = pair.call("libxenvchan_buffer_space")
            assert space == pair.ours.rd.size - len(to_ours)
            wrote = pair.lib_write(data)
            assert wrote == min(n, space)
            to_ours += data[:wrote]
        elif op == "our_read":
            assert pair.ours.data_ready() == len(to_ours)
            got, _ = pair.ours.read(n)
            assert got == bytes(to_ours[:n])
            del to_ours[:n]
        elif op == "our_write":
            data = rnd.randbytes(n)
            wrote, _ = pair.ours.write(data)
            to_lib += data[:wrote]
        else:
            assert pair.call("libxenvchan_data_ready") == len(to_lib)
            got = pair.lib_read(n)
            assert got == bytes(to_lib[:n])
            del to_lib[:n]


@pytest.mark.parametrize("lib_is_server", [False, True])
def test_our_shutdown_is_libxenvchans_end_of_stream(lib_is_server: bool) -> None:
    """After our shutdown (live byte 0, libxenvchan's own value for a closed end)
    libxenvchan reads what is left, then sees the end (-1), and will not write."""
    pair = Pair(library(), lib_is_server, 0xFFFFFFF0)
    assert pair.ours.write(b"last words")[0] == 10
    pair.ours.set_live(Live.EXITED)
    if lib_is_server:  # a server sees the client's live byte
        assert pair.view[CLI_LIVE] == 0
    assert pair.call("libxenvchan_is_open") == 0
    assert pair.lib_read(100) == b"last words"
    assert pair.lib_read(100) == -1
    assert pair.lib_write(b"x") == -1
    # And libxenvchan's close is our end of stream: its live byte at 0.
    pair2 = Pair(library(), lib_is_server, 0)
    assert pair2.lib_write(b"bye") == 3
    pair2.view[SRV_LIVE if lib_is_server else CLI_LIVE] = 0  # what libxenvchan_close writes
    assert pair2.ours.peer_live() == Live.EXITED
    assert pair2.ours.read(100)[0] == b"bye"
