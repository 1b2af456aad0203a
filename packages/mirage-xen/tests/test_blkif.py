"""The blkif codec (blkif.h, x86_64 ABI): layout, round trips, totality."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.xen.blkif import (
    MAX_SEGMENTS,
    REQUEST_SIZE,
    RESPONSE_SIZE,
    BlkifDecodeError,
    Op,
    Request,
    Response,
    Segment,
    Status,
    pull_request,
    pull_response,
    push_request,
    push_response,
)

SEGMENTS = st.builds(
    lambda gref, first, n: Segment(gref, first, min(7, first + n)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 7),
    st.integers(0, 7),
)
REQUESTS = st.builds(
    Request,
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.lists(SEGMENTS, max_size=MAX_SEGMENTS).map(tuple),
)


def test_layout() -> None:
    req = push_request(Request(Op.WRITE, 0x0102, 0x1122334455667788, 99, (Segment(7, 1, 6),)))
    assert len(req) == REQUEST_SIZE == 112
    assert req[:4] == bytes([1, 1, 0x02, 0x01])  # operation, nr_segments, handle
    assert req[4:8] == bytes(4)  # padding before the 8-byte aligned id
    assert struct.unpack_from("<QQ", req, 8) == (0x1122334455667788, 99)
    assert struct.unpack_from("<IBB", req, 24) == (7, 1, 6)
    rsp = push_response(Response(5, Op.READ, Status.ERROR))
    assert len(rsp) == RESPONSE_SIZE == 16
    assert struct.unpack("<QBxh4x", rsp) == (5, 0, -1)
    assert (Status.OKAY, Status.ERROR, Status.EOPNOTSUPP) == (0, -1, -2)
    assert (Op.FLUSH_DISKCACHE, Op.DISCARD, Op.INDIRECT) == (3, 5, 6)


@settings(max_examples=100)
@given(REQUESTS)
def test_request_round_trip(req: Request) -> None:
    assert pull_request(push_request(req)) == req


@given(st.integers(0, 2**64 - 1), st.integers(0, 255), st.sampled_from(list(Status)))
def test_response_round_trip(rid: int, op: int, status: Status) -> None:
    assert pull_response(push_response(Response(rid, op, status))) == Response(rid, op, status)


@settings(max_examples=200)
@given(st.binary(max_size=REQUEST_SIZE + 4))
def test_decoders_are_total(data: bytes) -> None:
    for pull in (pull_request, pull_response):
        try:
            pull(data)
        except BlkifDecodeError:
            pass


def test_bad_requests() -> None:
    good = bytearray(push_request(Request(Op.READ, 0, 1, 0, (Segment(1, 0, 7),))))
    bad = bytearray(good)
    bad[1] = MAX_SEGMENTS + 1
    with pytest.raises(BlkifDecodeError):
        pull_request(bytes(bad))
    bad = bytearray(good)
    bad[28], bad[29] = 5, 4  # first_sect after last_sect
    with pytest.raises(BlkifDecodeError):
        pull_request(bytes(bad))
    bad[28], bad[29] = 0, 8  # beyond the page
    with pytest.raises(BlkifDecodeError):
        pull_request(bytes(bad))
    with pytest.raises(BlkifDecodeError):
        pull_request(bytes(good[:50]))
    with pytest.raises(ValueError):
        push_request(Request(Op.READ, 0, 1, 0, (Segment(1, 0, 7),) * (MAX_SEGMENTS + 1)))
