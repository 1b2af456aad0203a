"""The per-segment fast paths of the TCP codec agree with the plain ones: encoding
with the checksum summed in parts, decoding with fast paths for common option
layouts, and ``fast_segment`` against the dataclass constructor."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mirage.tcpip.checksum import checksum, pseudo_header
from mirage.tcpip.tcp import PROTO_TCP, TcpSegment
from mirage.tcpip.tcp._segment import fast_segment

V4 = (bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2)))
V6 = (bytes(range(16)), bytes(range(16, 32)))
u32 = st.integers(0, 0xFFFFFFFF)
u16 = st.integers(0, 0xFFFF)
segments = st.builds(
    TcpSegment,
    src_port=u16,
    dst_port=u16,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 0x3F),
    window=u16,
    payload=st.binary(max_size=64),
    mss=st.none() | u16,
    wscale=st.none() | st.integers(0, 14),
    sack_permitted=st.booleans(),
    timestamp=st.none() | st.tuples(u32, u32),
    sack=st.lists(st.tuples(u32, u32), max_size=2).map(tuple),
    urgent=st.sampled_from([0, 0, 7]),
)


def reference_encode(seg: TcpSegment, src: bytes, dst: bytes) -> bytes:
    """The plain way: the whole segment with a zero checksum, summed in one piece."""
    wire = seg.encode(src, dst)
    zeroed = wire[:16] + b"\0\0" + wire[18:]
    csum = checksum(pseudo_header(src, dst, PROTO_TCP, len(zeroed)) + zeroed)
    return zeroed[:16] + csum.to_bytes(2, "big") + zeroed[18:]


@settings(max_examples=300, deadline=None)
@given(segments, st.sampled_from([V4, V6]))
def test_encode_checksum_and_round_trip(seg: TcpSegment, addrs: tuple[bytes, bytes]) -> None:
    src, dst = addrs
    try:
        wire = seg.encode(src, dst)
    except ValueError:  # more options than fit in 40 bytes: refused, as it should be
        assume(False)
    assert wire == reference_encode(seg, src, dst)
    assert checksum(pseudo_header(src, dst, PROTO_TCP, len(wire)) + wire) == 0
    back = TcpSegment.decode(wire, src, dst)
    assert back == seg
    assert type(back) is TcpSegment


@settings(max_examples=200, deadline=None)
@given(segments)
def test_fast_segment_is_the_constructor(seg: TcpSegment) -> None:
    fast = fast_segment(
        seg.src_port,
        seg.dst_port,
        seg.seq,
        seg.ack,
        seg.flags,
        window=seg.window,
        payload=seg.payload,
        timestamp=seg.timestamp,
        sack=seg.sack,
    )
    plain = TcpSegment(
        seg.src_port,
        seg.dst_port,
        seg.seq,
        seg.ack,
        seg.flags,
        seg.window,
        seg.payload,
        timestamp=seg.timestamp,
        sack=seg.sack,
    )
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([V4, V6]))
def test_decode_is_total_and_checks_the_sum(data: bytes, addrs: tuple[bytes, bytes]) -> None:
    from mirage.tcpip._errors import DecodeError

    src, dst = addrs
    try:
        seg = TcpSegment.decode(data, src, dst)
    except DecodeError:
        return
    assert checksum(pseudo_header(src, dst, PROTO_TCP, len(data)) + data) == 0
    assert isinstance(seg.payload, bytes)


def test_memoryview_input_gives_bytes_payload() -> None:
    seg = TcpSegment(1, 2, 3, 4, 0x18, 5, b"hello", timestamp=(1, 2))
    wire = seg.encode(*V4)
    for view in (memoryview(wire), bytearray(wire)):
        back = TcpSegment.decode(view, *V4)
        assert back == seg and type(back.payload) is bytes
