"""Fragmentation and overlap-safe reassembly."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.tcpip.ipv4 import Ipv4Packet, Reassembler, fragment

SRC, DST = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=5000), st.integers(68, 1500), st.randoms())
def test_fragments_reassemble_in_any_order(payload: bytes, mtu: int, rnd: random.Random) -> None:
    packet = Ipv4Packet(SRC, DST, 17, payload, ident=7)
    pieces = [Ipv4Packet.decode(w) for w in fragment(packet, mtu)]
    assert all(len(p.encode()) <= mtu for p in pieces)
    rnd.shuffle(pieces)
    if len(pieces) > 1:
        pieces.insert(1, pieces[0])  # an exact duplicate is harmless
    r = Reassembler()
    whole = [out for p in pieces if (out := r.push(p, 0.0)) is not None]
    assert len(whole) == 1
    assert whole[0].payload == payload
    assert len(r) == 0


def test_overlap_discards_the_datagram() -> None:
    r = Reassembler()
    a = Ipv4Packet(SRC, DST, 17, b"A" * 16, ident=1, more_fragments=True)
    b = Ipv4Packet(SRC, DST, 17, b"B" * 16, ident=1, offset=8)  # overlaps a's tail
    assert r.push(a, 0.0) is None
    assert r.push(b, 0.0) is None
    assert r.stats.overlaps == 1
    assert len(r) == 0
    c = Ipv4Packet(SRC, DST, 17, b"C" * 8, ident=1, offset=16)
    assert r.push(c, 0.0) is None  # the first part is gone: no datagram


def test_limits_and_timeout() -> None:
    r = Reassembler(max_datagrams=4, timeout=30.0)
    for ident in range(10):
        r.push(Ipv4Packet(SRC, DST, 17, b"x" * 8, ident=ident, more_fragments=True), 0.0)
    assert len(r) == 4 and r.stats.evicted == 6
    assert r.get_timer() == 30.0
    r.expire(30.0)
    assert len(r) == 0 and r.stats.expired == 4
    # beyond 64 KiB
    big = Ipv4Packet(SRC, DST, 17, b"x" * 8, ident=99, offset=65528, more_fragments=False)
    assert r.push(big, 0.0) is None and r.stats.oversized == 1


def test_df_does_not_fragment() -> None:
    import pytest

    with pytest.raises(ValueError):
        fragment(Ipv4Packet(SRC, DST, 17, bytes(2000), dont_fragment=True), 1500)
