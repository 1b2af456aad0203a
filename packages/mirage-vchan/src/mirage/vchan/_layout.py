"""The shared page of libxenvchan (``struct vchan_interface``), little-endian.

=======  =====================  =================================================
offset   field                  meaning
=======  =====================  =================================================
0, 4     left.cons, left.prod   the ring the client writes and the server reads
8, 12    right.cons, right.prod the ring the server writes and the client reads
16, 18   left_order, right_order log2 of each ring's size in bytes
20, 21   cli_live, srv_live     0 exited, 1 connected, 2 client not yet connected
22, 23   cli_notify, srv_notify bits a peer sets to be woken: 1 write, 2 read
24...    grants                 u32 references: left ring pages, then right ring's
=======  =====================  =================================================

Order 10 places a ring inside the shared page at offset 1024, order 11 at 2048;
orders 12 to 20 are rings of ``2**(order - 12)`` separately granted pages.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "CLI_LIVE",
    "CLI_NOTIFY",
    "GRANTS",
    "LEFT",
    "LEFT_ORDER",
    "Live",
    "MAX_ORDER",
    "Notify",
    "RIGHT",
    "RIGHT_ORDER",
    "RingPlan",
    "SRV_LIVE",
    "SRV_NOTIFY",
    "VchanLayoutError",
    "page_order",
    "plan_rings",
    "pull_header",
]

LEFT, RIGHT = 0, 8  # struct ring_shared {u32 cons, prod}
CONS, PROD = 0, 4
LEFT_ORDER, RIGHT_ORDER = 16, 18
CLI_LIVE, SRV_LIVE = 20, 21
CLI_NOTIFY, SRV_NOTIFY = 22, 23
GRANTS = 24
PAGE_SIZE = 4096
SMALL_ORDER, LARGE_ORDER = 10, 11
SMALL_OFFSET, LARGE_OFFSET = 1024, 2048
PAGE_ORDER = 12
MAX_ORDER = 20
HEADER = struct.Struct("<IIIIHHBBBB")


class Live(enum.IntEnum):
    EXITED = 0
    CONNECTED = 1
    WAITING = 2


class Notify(enum.IntFlag):
    WRITE = 1
    READ = 2


class VchanLayoutError(ValueError):
    """A shared page whose orders or grant list no vchan peer could have written."""


@dataclass(frozen=True, slots=True)
class Header:
    """The fixed fields of the shared page: ring indexes, ring orders, liveness and notify bits."""

    left_cons: int
    left_prod: int
    right_cons: int
    right_prod: int
    left_order: int
    right_order: int
    cli_live: int
    srv_live: int
    cli_notify: int
    srv_notify: int


def pull_header(page: bytes | memoryview) -> Header:
    if len(page) < HEADER.size:
        raise VchanLayoutError("short shared page")
    return Header(*HEADER.unpack_from(page, 0))


def page_order(size: int) -> int:
    """The smallest order ≥ 12 whose ring holds ``size`` bytes."""
    order = PAGE_ORDER
    while (1 << order) < size:
        order += 1
    return order


@dataclass(frozen=True, slots=True)
class RingPlan:
    """Where a ring lives: ``offset`` in the shared page, or ``pages`` granted pages."""

    order: int
    offset: int | None
    pages: int

    @property
    def size(self) -> int:
        return 1 << self.order

    @classmethod
    def for_order(cls, order: int) -> RingPlan:
        if order == SMALL_ORDER:
            return cls(order, SMALL_OFFSET, 0)
        if order == LARGE_ORDER:
            return cls(order, LARGE_OFFSET, 0)
        if PAGE_ORDER <= order <= MAX_ORDER:
            return cls(order, None, 1 << (order - PAGE_ORDER))
        raise VchanLayoutError(f"ring order {order} out of range")


def plan_rings(left_min: int, right_min: int) -> tuple[RingPlan, RingPlan]:
    """Ring placement as libxenvchan chooses it for the minimum sizes asked.

    The left (server-read) ring takes the small in-page slot if it fits 1024 bytes,
    else the large one if it fits 2048; the right ring takes whichever in-page slot
    is left and fits, else pages.
    """
    if left_min > 1 << MAX_ORDER or right_min > 1 << MAX_ORDER:
        raise VchanLayoutError(f"ring larger than 2**{MAX_ORDER} bytes")
    if left_min <= 1 << SMALL_ORDER:
        left = SMALL_ORDER
    elif left_min <= 1 << LARGE_ORDER:
        left = LARGE_ORDER
    else:
        left = page_order(left_min)
    if right_min <= 1 << SMALL_ORDER and left != SMALL_ORDER:
        right = SMALL_ORDER
    elif right_min <= 1 << LARGE_ORDER and left != LARGE_ORDER:
        right = LARGE_ORDER
    else:
        right = page_order(right_min)
    return RingPlan.for_order(left), RingPlan.for_order(right)


def check_orders(left_order: int, right_order: int) -> tuple[RingPlan, RingPlan]:
    """The plans a client reads from a server's page; rejects overlapping rings."""
    left, right = RingPlan.for_order(left_order), RingPlan.for_order(right_order)
    if left.offset is not None and left.offset == right.offset:
        raise VchanLayoutError("both rings claim the same place in the shared page")
    if GRANTS + 4 * (left.pages + right.pages) > SMALL_OFFSET and (
        left.offset is not None or right.offset is not None
    ):
        raise VchanLayoutError("grant list overlaps an in-page ring")
    if GRANTS + 4 * (left.pages + right.pages) > PAGE_SIZE:
        raise VchanLayoutError("grant list larger than the shared page")
    return left, right
