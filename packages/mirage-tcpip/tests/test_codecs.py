"""Every decoder is total, every encoder round-trips; checksums agree with RFC 1071."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.tcpip import _checksum_py
from mirage.tcpip._errors import DecodeError
from mirage.tcpip.arp import ArpPacket
from mirage.tcpip.ethernet import EthernetFrame
from mirage.tcpip.icmp import IcmpMessage
from mirage.tcpip.ipv4 import Ipv4Packet
from mirage.tcpip.tcp import TcpSegment
from mirage.tcpip.udp import UdpDatagram

SRC, DST = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))
FAST = settings(max_examples=150, deadline=None)


def rfc1071(data: bytes) -> int:
    """The reference: add 16-bit words with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@FAST
@given(st.binary(max_size=3000))
@example(b"")
@example(b"\xff\xff")
@example(b"\x00\x00")
def test_checksum_matches_rfc1071(data: bytes) -> None:
    assert _checksum_py.checksum(data) == rfc1071(data)


@FAST
@given(st.binary(max_size=3000))
@example(b"\xff\xff")
@example(b"\xff\xff\xff\xff\xff\xff")
@example(b"\x00\x00\x00")
def test_checksum_accelerator_agrees(data: bytes) -> None:
    from mirage.tcpip import checksum as chosen

    if chosen.IMPLEMENTATION != "cffi":
        pytest.skip("the cffi checksum accelerator was not built (no C compiler or cffi)")
    assert chosen.ones_sum(data) == _checksum_py.ones_sum(data)
    assert chosen.checksum(data) == _checksum_py.checksum(data)
    assert chosen.checksum(bytearray(data)) == _checksum_py.checksum(data)
    assert chosen.checksum(memoryview(data)) == _checksum_py.checksum(data)


decoders = [
    EthernetFrame.decode,
    ArpPacket.decode,
    Ipv4Packet.decode,
    IcmpMessage.decode,
    lambda b: UdpDatagram.decode(b, SRC, DST),
    lambda b: TcpSegment.decode(b, SRC, DST),
    lambda b: TcpSegment.decode(b, SRC, DST, verify=False),
    lambda b: UdpDatagram.decode(b, SRC, DST, verify=False),
]


@pytest.mark.parametrize(
    "decode",
    decoders,
    ids=["eth", "arp", "ipv4", "icmp", "udp", "tcp", "tcp-noverify", "udp-noverify"],
)
@FAST
@given(data=st.binary(max_size=200))
def test_decoders_are_total(decode, data: bytes) -> None:  # type: ignore[no-untyped-def]
    try:
        decode(data)
    except DecodeError:
        pass


@FAST
@given(data=st.binary(min_size=20, max_size=120))
def test_tcp_decoder_total_on_plausible_headers(data: bytes) -> None:
    raw = bytearray(data)
    raw[12] = (min(len(raw), 60) // 4) << 4
    try:
        TcpSegment.decode(bytes(raw), SRC, DST, verify=False)
    except DecodeError:
        pass


@FAST
@given(
    st.builds(
        TcpSegment,
        st.integers(0, 65535),
        st.integers(0, 65535),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 0x3F),
        st.integers(0, 65535),
        st.binary(max_size=100),
        st.none() | st.integers(0, 65535),
        st.none() | st.integers(0, 14),
        st.booleans(),
        st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=1).map(
            tuple
        ),
    )
)
def test_tcp_round_trip(seg: TcpSegment) -> None:
    assert TcpSegment.decode(seg.encode(SRC, DST), SRC, DST) == seg


@FAST
@given(st.integers(0, 65535), st.integers(0, 65535), st.binary(max_size=300))
def test_udp_round_trip_and_corruption(sport: int, dport: int, payload: bytes) -> None:
    wire = UdpDatagram(sport, dport, payload).encode(SRC, DST)
    assert UdpDatagram.decode(wire, SRC, DST) == UdpDatagram(sport, dport, payload)
    bad = bytearray(wire)
    bad[-1 if payload else 0] ^= 0x40
    with pytest.raises(DecodeError):
        UdpDatagram.decode(bytes(bad), SRC, DST)


@FAST
@given(
    st.integers(0, 255),
    st.binary(max_size=300),
    st.integers(0, 65535),
    st.integers(1, 255),
    st.booleans(),
)
def test_ipv4_round_trip(proto: int, payload: bytes, ident: int, ttl: int, df: bool) -> None:
    packet = Ipv4Packet(SRC, DST, proto, payload, ttl, ident, df)
    wire = packet.encode()
    assert Ipv4Packet.decode(wire) == packet
    bad = bytearray(wire)
    bad[8] ^= 1  # TTL: the header checksum no longer matches
    with pytest.raises(DecodeError, match="checksum"):
        Ipv4Packet.decode(bytes(bad))


@FAST
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**32 - 1), st.binary(max_size=100))
def test_icmp_round_trip(type_: int, code: int, rest: int, payload: bytes) -> None:
    m = IcmpMessage(type_, code, rest, payload)
    assert IcmpMessage.decode(m.encode()) == m


def test_arp_and_ethernet_round_trip() -> None:
    p = ArpPacket(1, b"\x02" * 6, SRC, b"\0" * 6, DST)
    assert ArpPacket.decode(p.encode()) == p
    f = EthernetFrame(b"\xff" * 6, b"\x02" * 6, 0x0806, p.encode())
    assert EthernetFrame.decode(f.encode()) == f
    with pytest.raises(DecodeError):
        EthernetFrame.decode(b"\0" * 12 + b"\x00\x40" + b"x")
