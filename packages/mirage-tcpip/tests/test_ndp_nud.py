"""Neighbour Unreachability Detection and redirects in the NDP core, in virtual time
(RFC 4861 7.3 and 8), and a redirect followed by a stack."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.tcpip.icmpv6 import (
    NA_OVERRIDE,
    NA_ROUTER,
    NA_SOLICITED,
    TYPE_NEIGHBOR_ADVERTISEMENT,
    TYPE_NEIGHBOR_SOLICITATION,
    TYPE_REDIRECT,
    TYPE_ROUTER_ADVERTISEMENT,
    Icmpv6Message,
    NdpMessage,
    PrefixInfo,
)
from mirage.tcpip.ipv6 import ALL_NODES, link_local, solicited_node
from mirage.tcpip.ndp import NdpCore, NdpFailed, NdpResolved, NdpSend, NeighborState

MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
OTHER_MAC = bytes.fromhex("020000000003")
B6 = ipaddress.IPv6Address("fe80::2").packed
ROUTER = ipaddress.IPv6Address("fe80::1:1").packed
ROUTER2 = ipaddress.IPv6Address("fe80::1:2").packed
FAR = ipaddress.IPv6Address("2001:db8::99").packed
PREFIX = bytes.fromhex("fd000009" + "00" * 12)


def ndp_in(core: NdpCore, src: bytes, message: NdpMessage, now: float) -> list[object]:
    return list(core.input(src, link_local(MAC), 255, message.to_icmp(), now))


def core_with_neighbour() -> NdpCore:
    core = NdpCore(MAC, reachable_time=30.0, delay_first_probe=5.0, dad_transmits=0)
    core.add_address(link_local(MAC), 64, 0.0)
    _, (ns,) = core.query(B6, 0.0)
    assert isinstance(ns, NdpSend) and ns.dst == solicited_node(B6)
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, B6, NA_SOLICITED, target_ll=PEER_MAC)
    assert ndp_in(core, B6, na, 0.1) == [NdpResolved(B6, PEER_MAC)]
    return core


def test_reachable_stale_delay_probe_reachable() -> None:
    core = core_with_neighbour()
    assert core.state(B6, 10.0) is NeighborState.REACHABLE
    assert core.state(B6, 31.0) is NeighborState.STALE
    assert core.get_timer() is None  # nothing to do while unused
    assert core.query(B6, 40.0) == (PEER_MAC, [])  # still usable...
    assert core.state(B6, 40.0) is NeighborState.DELAY  # ...but now to be checked
    assert core.get_timer() == 45.0
    (probe,) = core.handle_timer(45.0)
    assert isinstance(probe, NdpSend)
    assert probe.dst == B6 and probe.dst_mac == PEER_MAC  # unicast, to the cached MAC
    parsed = NdpMessage.parse(probe.message)
    assert parsed.type == TYPE_NEIGHBOR_SOLICITATION and parsed.target == B6
    assert core.state(B6, 45.0) is NeighborState.PROBE
    # A solicited answer (which may leave out its link-layer address) confirms it.
    ndp_in(core, B6, NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, B6, NA_SOLICITED), 45.2)
    assert core.state(B6, 45.2) is NeighborState.REACHABLE
    assert core.get_timer() is None
    assert core.stats.nud_probes == 1


def test_upper_layer_confirmation_avoids_probing() -> None:
    core = core_with_neighbour()
    core.query(B6, 40.0)  # STALE -> DELAY
    core.confirm(B6, 42.0)  # e.g. TCP saw new data acknowledged
    assert core.state(B6, 42.0) is NeighborState.REACHABLE
    assert core.handle_timer(45.0) == []


def test_unreachable_neighbour_is_deleted_after_probes() -> None:
    core = core_with_neighbour()
    core.query(B6, 40.0)
    probes = 0
    failed: list[object] = []
    while (at := core.get_timer()) is not None:
        for action in core.handle_timer(at):
            probes += isinstance(action, NdpSend)
            failed += [action] if isinstance(action, NdpFailed) else []
    assert probes == core.retries and failed == [NdpFailed(B6)]
    assert core.lookup(B6, 60.0) is None and core.stats.nud_failures == 1
    # The next use resolves afresh, by multicast.
    mac, (ns,) = core.query(B6, 61.0)
    assert mac is None and isinstance(ns, NdpSend) and ns.dst == solicited_node(B6)


def test_advertisement_flags_per_rfc_4861_7_2_5() -> None:
    core = core_with_neighbour()
    # Different address without override: a REACHABLE entry only becomes STALE.
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, B6, NA_SOLICITED, target_ll=OTHER_MAC)
    ndp_in(core, B6, na, 1.0)
    assert core.lookup(B6, 1.0) == PEER_MAC
    assert core.state(B6, 1.0) is NeighborState.STALE
    # With override, unsolicited: the new address, STALE.
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, B6, NA_OVERRIDE, target_ll=OTHER_MAC)
    ndp_in(core, B6, na, 2.0)
    assert core.lookup(B6, 2.0) == OTHER_MAC
    assert core.state(B6, 2.0) is NeighborState.STALE
    # Solicited and override: REACHABLE.
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, B6, NA_SOLICITED | NA_OVERRIDE, target_ll=PEER_MAC)
    ndp_in(core, B6, na, 3.0)
    assert core.lookup(B6, 3.0) == PEER_MAC
    assert core.state(B6, 3.0) is NeighborState.REACHABLE
    # A solicitation with a new source address: STALE with the new address.
    ns = NdpMessage(TYPE_NEIGHBOR_SOLICITATION, link_local(MAC), source_ll=OTHER_MAC)
    core.input(B6, solicited_node(link_local(MAC)), 255, ns.to_icmp(), 4.0)
    assert core.lookup(B6, 4.0) == OTHER_MAC
    assert core.state(B6, 4.0) is NeighborState.STALE


def with_router(core: NdpCore, router: bytes, mac: bytes, now: float) -> None:
    ra = NdpMessage(
        TYPE_ROUTER_ADVERTISEMENT,
        flags=1800,
        source_ll=mac,
        prefixes=(PrefixInfo(PREFIX, 64, True, False, 600, 300),),
    )
    core.input(router, ALL_NODES, 255, ra.to_icmp(), now)


def test_a_router_that_says_it_is_not_one_is_dropped() -> None:
    core = NdpCore(MAC, dad_transmits=0)
    core.add_address(link_local(MAC), 64, 0.0)
    with_router(core, ROUTER, PEER_MAC, 1.0)
    assert core.default_router(1.0) == ROUTER
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, ROUTER, NA_OVERRIDE, target_ll=PEER_MAC)
    ndp_in(core, ROUTER, na, 2.0)
    assert core.default_router(2.0) is None
    with_router(core, ROUTER, PEER_MAC, 3.0)
    na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, ROUTER, NA_ROUTER, target_ll=PEER_MAC)
    ndp_in(core, ROUTER, na, 4.0)
    assert core.default_router(4.0) == ROUTER


def test_redirects() -> None:
    core = NdpCore(MAC, dad_transmits=0)
    core.add_address(link_local(MAC), 64, 0.0)
    with_router(core, ROUTER, PEER_MAC, 1.0)
    assert core.next_hop(FAR, 1.0) == ROUTER
    # From a router we do not use for FAR: ignored.
    bad = NdpMessage(TYPE_REDIRECT, ROUTER2, destination=FAR, target_ll=OTHER_MAC)
    assert ndp_in(core, ROUTER2, bad, 2.0) == []
    assert core.next_hop(FAR, 2.0) == ROUTER and core.stats.ignored == 1
    # From our router: FAR goes through ROUTER2, whose address it gives.
    good = NdpMessage(TYPE_REDIRECT, ROUTER2, destination=FAR, target_ll=OTHER_MAC)
    ndp_in(core, ROUTER, good, 3.0)
    assert core.next_hop(FAR, 3.0) == ROUTER2
    assert core.lookup(ROUTER2, 3.0) == OTHER_MAC
    assert core.state(ROUTER2, 3.0) is NeighborState.STALE
    assert core.stats.redirects_in == 1
    # When the redirect's target proves unreachable, the redirect is forgotten.
    core.query(ROUTER2, 4.0)
    while (at := core.get_timer()) is not None:
        core.handle_timer(at)
    assert core.next_hop(FAR, 100.0) == ROUTER
    # A redirect to the destination itself: it is on the link.
    onlink = NdpMessage(TYPE_REDIRECT, FAR, destination=FAR)
    ndp_in(core, ROUTER, onlink, 101.0)
    assert core.next_hop(FAR, 101.0) == FAR
    # A multicast destination or a global target that is not the destination: ignored.
    ignored = core.stats.ignored
    for wrong in (
        NdpMessage(TYPE_REDIRECT, ROUTER2, destination=ALL_NODES),
        NdpMessage(TYPE_REDIRECT, PREFIX[:15] + b"\x05", destination=FAR),
    ):
        assert ndp_in(core, FAR, wrong, 102.0) == []
    assert core.stats.ignored == ignored + 2


def test_redirect_codec_round_trip() -> None:
    message = NdpMessage(TYPE_REDIRECT, ROUTER2, destination=FAR, target_ll=OTHER_MAC)
    parsed = NdpMessage.parse(Icmpv6Message.decode(message.to_icmp().encode(B6, FAR), B6, FAR))
    assert (parsed.target, parsed.destination, parsed.target_ll) == (ROUTER2, FAR, OTHER_MAC)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["na", "ns", "query", "confirm", "timer"]),
            st.integers(0, 3),
            st.integers(0, 0xE0000000),
            st.floats(0, 5),
        ),
        max_size=40,
    )
)
def test_any_sequence_keeps_nud_consistent(events: list[tuple[str, int, int, float]]) -> None:
    core = NdpCore(MAC, dad_transmits=0, max_entries=3)
    core.add_address(link_local(MAC), 64, 0.0)
    now = 0.0
    peers = [ipaddress.IPv6Address(f"fe80::{i + 2}").packed for i in range(4)]
    for kind, who, flags, dt in events:
        now += dt
        peer = peers[who]
        mac = bytes((2, 0, 0, 0, 0, who + 2))
        if kind == "na":
            na = NdpMessage(TYPE_NEIGHBOR_ADVERTISEMENT, peer, flags, target_ll=mac)
            core.input(peer, link_local(MAC), 255, na.to_icmp(), now)
        elif kind == "ns":
            ns = NdpMessage(TYPE_NEIGHBOR_SOLICITATION, link_local(MAC), source_ll=mac)
            core.input(peer, link_local(MAC), 255, ns.to_icmp(), now)
        elif kind == "query":
            core.query(peer, now)
        elif kind == "confirm":
            core.confirm(peer, now)
        else:
            at = core.get_timer()
            if at is not None:
                now = max(now, at)
                core.handle_timer(now)
        assert len(core._cache) <= 3
        t = core.get_timer()
        assert t is None or t > now - 1e-9 or kind != "timer"
