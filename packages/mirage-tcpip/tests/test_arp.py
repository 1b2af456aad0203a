"""The ARP core: queries, replies, expiry, retries, gratuitous ARP, RFC 5227 probes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.tcpip.arp import (
    OP_REPLY,
    OP_REQUEST,
    ArpConflict,
    ArpCore,
    ArpFailed,
    ArpPacket,
    ArpProbed,
    ArpResolved,
    ArpSend,
)

MAC_A, MAC_B = b"\x02\0\0\0\0\x0a", b"\x02\0\0\0\0\x0b"
IP_A, IP_B, IP_C = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2)), bytes((10, 0, 0, 3))


def test_query_reply_and_expiry() -> None:
    a = ArpCore(MAC_A, [IP_A], cache_timeout=60)
    b = ArpCore(MAC_B, [IP_B])
    mac, actions = a.query(IP_B, 0.0)
    assert mac is None
    (send,) = actions
    assert isinstance(send, ArpSend) and send.packet.op == OP_REQUEST
    replies = b.input(send.packet, 0.0)
    reply = next(x for x in replies if isinstance(x, ArpSend))
    assert reply.packet.op == OP_REPLY and reply.dst == MAC_A
    assert b.lookup(IP_A, 0.0) == MAC_A  # learnt from a request aimed at it
    assert a.input(reply.packet, 0.1) == [ArpResolved(IP_B, MAC_B)]
    assert a.query(IP_B, 1.0) == (MAC_B, [])
    assert a.get_timer() == 60.1
    a.handle_timer(60.1)
    assert a.lookup(IP_B, 60.1) is None


def test_retries_then_failure() -> None:
    a = ArpCore(MAC_A, [IP_A], retries=3, retry_interval=1.0)
    _, first = a.query(IP_C, 0.0)
    assert len(first) == 1
    assert a.query(IP_C, 0.5) == (None, [])  # one request in flight
    assert [type(x) for x in a.handle_timer(1.0)] == [ArpSend]
    assert [type(x) for x in a.handle_timer(2.0)] == [ArpSend]
    assert a.handle_timer(3.0) == [ArpFailed(IP_C)]


def test_gratuitous() -> None:
    (g,) = ArpCore(MAC_A, [IP_A]).gratuitous()
    assert isinstance(g, ArpSend)
    assert g.packet.spa == g.packet.tpa == IP_A and g.dst == b"\xff" * 6


def test_probe_free_address_is_announced() -> None:
    a = ArpCore(MAC_A, [])
    (p,) = a.probe(IP_A, 0.0)
    assert isinstance(p, ArpSend) and p.packet.spa == b"\0\0\0\0" and p.packet.tpa == IP_A
    now, probes, probed = 0.0, 1, False
    while (t := a.get_timer()) is not None:
        now = t
        for action in a.handle_timer(now):
            if isinstance(action, ArpSend) and action.packet.spa == b"\0\0\0\0":
                probes += 1
            probed = probed or isinstance(action, ArpProbed)
    assert probes == 3 and probed and a.ips == [IP_A]


def test_probe_conflict() -> None:
    a = ArpCore(MAC_A, [])
    a.probe(IP_B, 0.0)
    owner = ArpPacket(OP_REPLY, MAC_B, IP_B, MAC_A, IP_A)
    assert a.input(owner, 0.5) == [ArpConflict(IP_B, MAC_B)]
    assert a.ips == []
    # someone else probing the same address is a conflict too
    a.probe(IP_C, 1.0)
    other_probe = ArpPacket(OP_REQUEST, MAC_B, b"\0\0\0\0", b"\0" * 6, IP_C)
    assert a.input(other_probe, 1.2) == [ArpConflict(IP_C, MAC_B)]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([OP_REQUEST, OP_REPLY]),
            st.binary(min_size=6, max_size=6),
            st.sampled_from([IP_A, IP_B, IP_C, b"\0\0\0\0"]),
            st.sampled_from([IP_A, IP_B, IP_C]),
            st.floats(0, 200),
        ),
        max_size=30,
    )
)
def test_any_input_sequence_keeps_the_cache_bounded(events: list) -> None:  # type: ignore[type-arg]
    a = ArpCore(MAC_A, [IP_A], max_entries=2)
    for op, sha, spa, tpa, now in sorted(events, key=lambda e: e[-1]):
        a.input(ArpPacket(op, sha, spa, b"\0" * 6, tpa), now)
        a.handle_timer(now)
        assert len(a.entries()) <= 2
