"""The shared page, pinned to libxenvchan's ``struct vchan_interface``."""

from __future__ import annotations

import ctypes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirage.vchan import Live, Notify, VchanLayoutError, check_orders, plan_rings
from mirage.vchan import _layout as layout


class RingShared(ctypes.LittleEndianStructure):
    _fields_ = [("cons", ctypes.c_uint32), ("prod", ctypes.c_uint32)]


class VchanInterface(ctypes.LittleEndianStructure):
    """``struct vchan_interface`` as libxenvchan.h declares it."""

    _fields_ = [
        ("left", RingShared),
        ("right", RingShared),
        ("left_order", ctypes.c_uint16),
        ("right_order", ctypes.c_uint16),
        ("cli_live", ctypes.c_uint8),
        ("srv_live", ctypes.c_uint8),
        ("cli_notify", ctypes.c_uint8),
        ("srv_notify", ctypes.c_uint8),
        ("grants", ctypes.c_uint32 * 0),
    ]


def test_offsets_match_the_c_header() -> None:
    c = VchanInterface
    assert layout.LEFT == c.left.offset == 0
    assert layout.RIGHT == c.right.offset == 8
    assert layout.CONS == RingShared.cons.offset == 0
    assert layout.PROD == RingShared.prod.offset == 4
    assert layout.LEFT_ORDER == c.left_order.offset == 16
    assert layout.RIGHT_ORDER == c.right_order.offset == 18
    assert layout.CLI_LIVE == c.cli_live.offset == 20
    assert layout.SRV_LIVE == c.srv_live.offset == 21
    assert layout.CLI_NOTIFY == c.cli_notify.offset == 22
    assert layout.SRV_NOTIFY == c.srv_notify.offset == 23
    assert layout.GRANTS == c.grants.offset == 24
    assert layout.HEADER.size == ctypes.sizeof(c) == 24


def test_header_decodes_what_c_writes() -> None:
    page = bytearray(4096)
    c = VchanInterface.from_buffer(page)
    c.left.cons, c.left.prod, c.right.cons, c.right.prod = 1, 2, 3, 4
    c.left_order, c.right_order = 10, 13
    c.cli_live, c.srv_live, c.cli_notify, c.srv_notify = 2, 1, 1, 0
    header = layout.pull_header(page)
    assert (header.left_cons, header.left_prod, header.right_cons, header.right_prod) == (
        1,
        2,
        3,
        4,
    )
    assert (header.left_order, header.right_order) == (10, 13)
    assert (header.cli_live, header.srv_live, header.cli_notify, header.srv_notify) == (2, 1, 1, 0)
    del c
    with pytest.raises(VchanLayoutError):
        layout.pull_header(b"short")


def test_constants() -> None:
    assert (Notify.WRITE, Notify.READ) == (1, 2)  # VCHAN_NOTIFY_WRITE, VCHAN_NOTIFY_READ
    assert (Live.EXITED, Live.CONNECTED, Live.WAITING) == (0, 1, 2)


@pytest.mark.parametrize(
    ("left_min", "right_min", "left", "right"),
    [
        (1024, 1024, (10, 1024, 0), (11, 2048, 0)),  # libxenvchan's and ocaml-vchan's default
        (1, 2048, (10, 1024, 0), (11, 2048, 0)),
        (2048, 1024, (11, 2048, 0), (10, 1024, 0)),
        (2048, 2048, (11, 2048, 0), (12, None, 1)),
        (4096, 1024, (12, None, 1), (10, 1024, 0)),
        (5000, 65536, (13, None, 2), (16, None, 16)),
        (1 << 20, 1 << 20, (20, None, 256), (20, None, 256)),
    ],
)
def test_ring_placement(
    left_min: int,
    right_min: int,
    left: tuple[int, int | None, int],
    right: tuple[int, int | None, int],
) -> None:
    got = plan_rings(left_min, right_min)
    assert [(p.order, p.offset, p.pages) for p in got] == [left, right]


def test_orders_a_peer_could_not_have_written() -> None:
    for left, right in ((10, 10), (11, 11), (9, 10), (10, 21), (0, 0)):
        with pytest.raises(VchanLayoutError):
            check_orders(left, right)
    with pytest.raises(VchanLayoutError):
        check_orders(10, 20)  # 256 grant refs would overwrite the ring at 1024
    with pytest.raises(VchanLayoutError):
        plan_rings(1 << 21, 1024)
    assert check_orders(20, 20)[0].pages == 256


@given(st.binary(max_size=40))
def test_pull_header_is_total(data: bytes) -> None:
    try:
        header = layout.pull_header(data)
    except VchanLayoutError:
        assert len(data) < 24
    else:
        assert header.left_order == int.from_bytes(data[16:18], "little")


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_check_orders_is_total(left: int, right: int) -> None:
    try:
        plans = check_orders(left, right)
    except VchanLayoutError:
        return
    assert all(10 <= p.order <= 20 for p in plans)
