"""The sans-IO recursive resolver over a hierarchy of our own Authority cores.

Virtual time throughout: the "network" maps server addresses to sans-IO servers,
and a query to an address with no server times out on the virtual clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DATA

from mirage.dns import (
    NSEC3PARAM,
    ROOT,
    RR,
    A,
    Authority,
    Cache,
    Name,
    Rcode,
    ResolveError,
    RRType,
    Zone,
    parse_zone,
    pull_message,
    push_message,
    read_zone,
)
from mirage.dns._dnssec import (
    EDE_BOGUS,
    EDE_DNSKEY_MISSING,
    EDE_EXPIRED,
    SigningKey,
    make_ds,
)
from mirage.dns._recursive import Delegations, Limits, Recursion
from mirage.dns._signing import ZoneSigner
from mirage.dns.resolver import addresses_from_answer

HIER = DATA / "hier"
Responder = Callable[[bytes, bool], bytes | None]


def zone(name: str) -> Zone:
    return Zone.from_records(read_zone(Path(HIER) / name))


def authority(*names: str) -> Responder:
    auth = Authority([zone(n) for n in names], cache_size=0)

    def answer(data: bytes, tcp: bool) -> bytes | None:
        replies = auth.handle(data, tcp=tcp)
        return replies[0] if replies else None

    return answer


def network() -> dict[str, Responder]:
    return {
        "10.53.0.1": authority("root.zone"),
        "10.53.0.2": authority("test.zone"),
        "10.53.0.3": authority("example.test.zone", "example.net.zone", "glueless.test.zone"),
        "10.53.0.4": authority("net.zone"),
    }


class World:
    def __init__(self, hints: tuple[str, ...] = ("10.53.0.1",)) -> None:
        self.net = network()
        self.delegations = Delegations(hints)
        self.cache = Cache()
        self.now = 1000.0
        self.sent: list[tuple[str, str]] = []

    def resolve(self, name: str, rtype: int = RRType.A, limits: Limits | None = None) -> Recursion:
        counter = iter(range(1, 1 << 30))
        rec = Recursion(
            Name.from_text(name),
            rtype,
            self.delegations,
            now=self.now,
            cache=self.cache,
            limits=limits,
            ident=lambda: next(counter) & 0xFFFF,
        )
        steps = 0
        while not rec.done:
            steps += 1
            assert steps < 10000
            transmit = rec.transmit()
            if transmit is not None:
                query = pull_message(transmit.data)
                assert not query.rd
                self.sent.append((transmit.server[0], str(query.question[0].name)))
                server = self.net.get(transmit.server[0])
                reply = server(transmit.data, transmit.tcp) if server is not None else None
                if reply is not None:
                    rec.receive(reply, self.now, tcp=transmit.tcp)
                    continue
            timer = rec.get_timer()
            assert timer is not None
            self.now = max(self.now, timer)
            rec.handle_timer(self.now)
        return rec


def addresses(rec: Recursion, name: str, rtype: int = RRType.A) -> list[str]:
    assert rec.result is not None
    return addresses_from_answer(Name.from_text(name), rtype, rec.result.answer)


def test_walks_down_from_the_root_and_caches() -> None:
    world = World()
    rec = world.resolve("www.example.test.")
    assert rec.result is not None and rec.result.rcode == Rcode.NOERROR
    assert addresses(rec, "www.example.test.") == ["192.0.2.1"]
    assert [server for server, _ in world.sent] == ["10.53.0.1", "10.53.0.2", "10.53.0.3"]
    assert rec.queries == 3
    again = world.resolve("WWW.example.test.")
    assert again.queries == 0 and addresses(again, "www.example.test.") == ["192.0.2.1"]
    # the zone cut is remembered: a new name in the zone goes straight to its server
    aaaa = world.resolve("www.example.test.", RRType.AAAA)
    assert aaaa.queries == 1 and addresses(aaaa, "www.example.test.", RRType.AAAA) == [
        "2001:db8::1"
    ]


def test_cname_inside_and_across_zones() -> None:
    world = World()
    rec = world.resolve("inzone.example.test.")
    assert addresses(rec, "inzone.example.test.") == ["192.0.2.1"]
    rec = world.resolve("alias.example.test.")
    assert rec.result is not None
    assert [rr.rtype for rr in rec.result.answer] == [RRType.CNAME, RRType.A]
    assert addresses(rec, "alias.example.test.") == ["192.0.2.2"]
    back = world.resolve("back.example.net.")
    assert addresses(back, "back.example.net.") == ["192.0.2.1"]


def test_nxdomain_at_the_end_of_a_cname_chain() -> None:
    rec = World().resolve("gone.example.net.")
    assert rec.result is not None and rec.result.rcode == Rcode.NXDOMAIN
    assert [rr.rtype for rr in rec.result.answer] == [RRType.CNAME]
    assert [rr.rtype for rr in rec.result.authority] == [RRType.SOA]


def test_glueless_name_server_is_resolved_on_the_side() -> None:
    world = World()
    rec = world.resolve("host.glueless.test.")
    assert addresses(rec, "host.glueless.test.") == ["192.0.2.3"]
    assert ("10.53.0.4", "ns.example.net.") in world.sent  # via the net. TLD


def test_negative_answers_are_cached_for_the_soa_minimum() -> None:
    world = World()
    nx = world.resolve("nope.example.test.")
    assert nx.result is not None and nx.result.rcode == Rcode.NXDOMAIN and nx.queries == 3
    nodata = world.resolve("www.example.test.", RRType.TXT)
    assert nodata.result is not None
    assert (nodata.result.rcode, nodata.result.answer) == (Rcode.NOERROR, ())
    assert world.resolve("nope.example.test.").queries == 0
    world.now += 301  # the SOA MINIMUM is 300
    assert world.resolve("nope.example.test.").queries == 1


def test_lame_delegation_fails_without_looping() -> None:
    world = World()
    rec = world.resolve("www.lame.test.")
    assert rec.error is not None and rec.error.rcode == Rcode.SERVFAIL
    assert rec.queries <= 2 * Limits().attempts + 2


def test_glueless_cycle_ends() -> None:
    rec = World().resolve("www.cycle.test.")
    assert rec.error is not None and rec.error.rcode == Rcode.SERVFAIL
    assert rec.queries < 20


def test_query_budget_is_enforced() -> None:
    rec = World().resolve("www.example.test.", limits=Limits(queries=2))
    assert rec.error is not None and "too many queries" in str(rec.error)


def test_dead_root_server_times_out_on_virtual_time_then_the_next_answers() -> None:
    world = World(hints=("10.53.0.99", "10.53.0.1"))
    start = world.now
    rec = world.resolve("www.example.test.")
    assert addresses(rec, "www.example.test.") == ["192.0.2.1"]
    assert world.now == start + Limits().timeout


def test_nobody_answers() -> None:
    world = World(hints=("10.53.0.99",))
    rec = world.resolve("www.example.test.")
    assert isinstance(rec.error, ResolveError) and rec.error.rcode == Rcode.SERVFAIL
    assert rec.queries == Limits().attempts


def poisoning(inner: Responder, extra: RR) -> Responder:
    """A server that adds ``extra`` to the answer and additional sections."""

    def answer(data: bytes, tcp: bool) -> bytes | None:
        reply = inner(data, tcp)
        if reply is None:
            return None
        msg = pull_message(reply)
        msg = replace(msg, answer=(*msg.answer, extra), additional=(*msg.additional, extra))
        return push_message(msg)

    return answer


def test_out_of_bailiwick_records_are_not_believed() -> None:
    world = World()
    evil = RR(Name.from_text("www.example.net."), RRType.A, 1, 86400, A("203.0.113.66"))
    world.net["10.53.0.2"] = poisoning(world.net["10.53.0.2"], evil)  # the test. TLD
    rec = world.resolve("www.example.test.")
    assert addresses(rec, "www.example.test.") == ["192.0.2.1"]
    other = world.resolve("www.example.net.")
    assert addresses(other, "www.example.net.") == ["192.0.2.2"]
    assert other.queries >= 2  # nothing about example.net was cached from test.


def test_out_of_bailiwick_glue_is_not_used() -> None:
    world = World()
    # the root hands out glue for ns.example.net under its referral to test.: a root
    # server may (net. is in its bailiwick), but a TLD may not.
    evil = RR(Name.from_text("ns.example.test."), RRType.A, 1, 86400, A("10.53.0.99"))
    world.net["10.53.0.4"] = poisoning(world.net["10.53.0.4"], evil)  # the net. TLD
    world.resolve("www.example.net.")
    rec = world.resolve("www.example.test.")
    assert addresses(rec, "www.example.test.") == ["192.0.2.1"]
    assert "10.53.0.99" not in [server for server, _ in world.sent]


def test_referral_upwards_is_lame() -> None:
    world = World()
    # the example.test server answering for the root: refers back to test. (upwards)
    world.net["10.53.0.3"] = world.net["10.53.0.2"]
    rec = world.resolve("www.example.test.")
    assert rec.error is not None
    assert rec.queries <= 10


@pytest.mark.parametrize("name", ["www.example.test.", "alias.example.test.", "x.nowhere."])
def test_every_resolution_terminates(name: str) -> None:
    rec = World().resolve(name)
    assert rec.done


# -- DNSSEC validation over a signed hierarchy ----------------------------------------

EPOCH = 1_800_000_000.0


def signed_network(nsec3: bool = False) -> tuple[dict[str, Responder], RR]:
    """The hierarchy with the root, test. and example.test. signed (each with one
    key), the DS records in their parents; net., example.net. and glueless.test. are
    unsigned. Returns the servers and the root's DS as trust anchor."""
    keys = {name: SigningKey.generate(13, 257) for name in (".", "test.", "example.test.")}
    param = NSEC3PARAM(1, 0, 0, b"\xab") if nsec3 else None

    def build(filename: str, children: list[str], extra: str = "") -> Zone:
        records = read_zone(HIER / filename)
        origin = records[0].name
        for child in children:
            name = Name.from_text(child)
            records.append(RR(name, RRType.DS, 1, 3600, make_ds(name, keys[child].dnskey)))
        if extra:
            records += parse_zone(extra, origin)
        zone = Zone.from_records(records)
        signer = ZoneSigner((keys[str(origin)],), param)
        return signer.sign(zone, EPOCH)

    wild = '$TTL 600\n*.wild A 192.0.2.77\nmixed TXT "x"\n'
    net = {
        "10.53.0.1": Authority([build("root.zone", ["test."])], cache_size=0),
        "10.53.0.2": Authority([build("test.zone", ["example.test."])], cache_size=0),
        "10.53.0.3": Authority([build("example.test.zone", [], wild), zone("example.net.zone"),
                                zone("glueless.test.zone")], cache_size=0),
        "10.53.0.4": Authority([zone("net.zone")], cache_size=0),
    }  # fmt: skip
    responders: dict[str, Responder] = {}
    for address, auth in net.items():

        def answer(data: bytes, tcp: bool, auth: Authority = auth) -> bytes | None:
            replies = auth.handle(data, tcp=tcp, now=EPOCH)
            return replies[0] if replies else None

        responders[address] = answer
    anchor = RR(ROOT, RRType.DS, 1, 3600, make_ds(ROOT, keys["."].dnskey))
    return responders, anchor


class SignedWorld(World):
    def __init__(self, nsec3: bool = False, anchor: RR | None = None) -> None:
        super().__init__()
        self.net, good = signed_network(nsec3)
        self.delegations = Delegations(("10.53.0.1",), trust_anchors=[anchor or good])

    def resolve(self, name: str, rtype: int = RRType.A, limits: Limits | None = None) -> Recursion:
        counter = iter(range(1, 1 << 30))
        rec = Recursion(Name.from_text(name), rtype, self.delegations, now=self.now,
                        cache=self.cache, limits=limits, ident=lambda: next(counter) & 0xFFFF,
                        epoch=EPOCH + self.now - 1000.0)  # fmt: skip
        while not rec.done:
            transmit = rec.transmit()
            assert transmit is not None
            query = pull_message(transmit.data)
            assert query.edns is not None and query.edns.dnssec_ok
            self.sent.append((transmit.server[0], str(query.question[0].name)))
            reply = self.net[transmit.server[0]](transmit.data, transmit.tcp)
            assert reply is not None
            rec.receive(reply, self.now, tcp=transmit.tcp)
        return rec


@pytest.mark.parametrize("nsec3", [False, True], ids=["nsec", "nsec3"])
def test_validates_down_from_the_root_trust_anchor(nsec3: bool) -> None:
    world = SignedWorld(nsec3)
    cases = [
        ("www.example.test.", RRType.A, Rcode.NOERROR, True),
        ("nope.example.test.", RRType.A, Rcode.NXDOMAIN, True),
        ("www.example.test.", RRType.TXT, Rcode.NOERROR, True),  # NODATA
        ("x.wild.example.test.", RRType.A, Rcode.NOERROR, True),  # a wildcard expansion
        ("x.wild.example.test.", RRType.MX, Rcode.NOERROR, True),  # wildcard NODATA
        ("inzone.example.test.", RRType.A, Rcode.NOERROR, True),
        ("nothing.test.", RRType.A, Rcode.NXDOMAIN, True),
        ("alias.example.test.", RRType.A, Rcode.NOERROR, False),  # into unsigned net.
        ("host.glueless.test.", RRType.A, Rcode.NOERROR, False),  # no DS: insecure
        ("www.example.net.", RRType.A, Rcode.NOERROR, False),
    ]
    for name, rtype, rcode, secure in cases:
        rec = world.resolve(name, rtype)
        assert rec.error is None, (name, rec.error)
        assert rec.result is not None
        assert (rec.result.rcode, rec.result.ad) == (rcode, secure), name
    www = world.resolve("www.example.test.")  # from the cache, still secure
    assert www.queries == 0 and www.result is not None and www.result.ad


def tampering(inner: Responder) -> Responder:
    """A server that changes the addresses it gives (signatures left as they are)."""

    def answer(data: bytes, tcp: bool) -> bytes | None:
        reply = inner(data, tcp)
        if reply is None:
            return None
        msg = pull_message(reply)
        forged = tuple(replace(rr, rdata=A("203.0.113.66")) if rr.rtype == RRType.A else rr
                       for rr in msg.answer)  # fmt: skip
        return push_message(replace(msg, answer=forged))

    return answer


def stripping(inner: Responder) -> Responder:
    """A server that drops every RRSIG, NSEC and NSEC3."""

    def answer(data: bytes, tcp: bool) -> bytes | None:
        reply = inner(data, tcp)
        if reply is None:
            return None
        msg = pull_message(reply)
        dnssec = (RRType.RRSIG, RRType.NSEC, RRType.NSEC3)
        return push_message(replace(
            msg, answer=tuple(rr for rr in msg.answer if rr.rtype not in dnssec),
            authority=tuple(rr for rr in msg.authority if rr.rtype not in dnssec)))  # fmt: skip

    return answer


def test_forged_data_is_bogus() -> None:
    world = SignedWorld()
    world.net["10.53.0.3"] = tampering(world.net["10.53.0.3"])
    rec = world.resolve("www.example.test.")
    assert rec.error is not None and rec.error.rcode == Rcode.SERVFAIL
    assert rec.bogus is not None and rec.bogus.ede == EDE_BOGUS
    # the unsigned zone on the same server is not affected: forged, but insecure
    other = world.resolve("www.example.net.")
    assert other.result is not None and not other.result.ad


def test_stripped_signatures_are_bogus() -> None:
    world = SignedWorld()
    world.net["10.53.0.3"] = stripping(world.net["10.53.0.3"])
    for name in ("www.example.test.", "nope.example.test."):
        rec = world.resolve(name)
        assert rec.error is not None and rec.bogus is not None, name


def test_a_wrong_trust_anchor_fails_everything_signed() -> None:
    wrong = RR(ROOT, RRType.DS, 1, 3600, make_ds(ROOT, SigningKey.generate(13).dnskey))
    world = SignedWorld(anchor=wrong)
    rec = world.resolve("www.example.test.")
    assert rec.error is not None and rec.bogus is not None
    assert rec.bogus.ede == EDE_DNSKEY_MISSING


def test_expired_signatures_are_bogus() -> None:
    world = SignedWorld()
    world.now += 30 * 86400  # the zones were signed for 14 days
    rec = world.resolve("www.example.test.")
    assert rec.bogus is not None and rec.bogus.ede == EDE_EXPIRED


# -- whatever the servers send, a resolution ends --------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=8), st.booleans())
def test_garbage_from_servers_never_crashes(replies: list[bytes], signed: bool) -> None:
    """Each server answers with the query's id and header, then arbitrary bytes."""
    world = SignedWorld() if signed else World()
    feed = iter(replies * 20)

    def garbage(data: bytes, tcp: bool) -> bytes | None:
        tail = next(feed, b"")
        return data[:2] + b"\x84\x00" + tail[:8] + data[12:] + tail[8:] if tail else data[:2]

    for address in list(world.net):
        world.net[address] = garbage
    rec = Recursion(Name.from_text("www.example.test."), RRType.A, world.delegations,
                    now=world.now, cache=world.cache, limits=Limits(queries=20))  # fmt: skip
    steps = 0
    while not rec.done and steps < 2000:
        steps += 1
        transmit = rec.transmit()
        if transmit is not None:
            reply = world.net[transmit.server[0]](transmit.data, transmit.tcp)
            if reply is not None:
                rec.receive(reply, world.now, tcp=transmit.tcp)
                continue
        timer = rec.get_timer()
        assert timer is not None
        world.now = max(world.now, timer)
        rec.handle_timer(world.now)
    assert rec.done and (rec.result is not None or rec.error is not None)


def test_a_truncated_answer_is_asked_again_over_tcp() -> None:
    world = World()
    records = read_zone(HIER / "example.test.zone")
    records += parse_zone("".join(f'big 600 IN TXT "{i:03d} {"x" * 200}"\n' for i in range(12)),
                          Name.from_text("example.test."))  # fmt: skip
    leaf = Authority([Zone.from_records(records), zone("example.net.zone"),
                      zone("glueless.test.zone")], cache_size=0)  # fmt: skip
    transports: list[bool] = []

    def answer(data: bytes, tcp: bool) -> bytes | None:
        transports.append(tcp)
        replies = leaf.handle(data, tcp=tcp)
        return replies[0] if replies else None

    world.net["10.53.0.3"] = answer
    rec = world.resolve("big.example.test.", RRType.TXT)
    assert rec.result is not None and len(rec.result.answer) == 12
    assert transports == [False, True]  # UDP came back truncated (over 1232 bytes)


def test_a_dnskey_query_is_validated_like_any_other() -> None:
    world = SignedWorld()
    # asked directly first: validated against the DS in the parent
    rec = world.resolve("example.test.", RRType.DNSKEY)
    assert rec.result is not None and rec.result.ad
    assert any(rr.rtype == RRType.DNSKEY for rr in rec.result.answer)
    # fetched for the chain of another answer, then asked: still secure
    world = SignedWorld()
    assert world.resolve("www.example.test.").result.ad  # type: ignore[union-attr]
    rec = world.resolve("example.test.", RRType.DNSKEY)
    assert rec.result is not None and rec.result.ad and rec.queries == 0
    rec = world.resolve(".", RRType.DNSKEY)
    assert rec.result is not None and rec.result.ad


def test_a_dnskey_rrset_that_fails_the_chain_is_not_answered() -> None:
    wrong = RR(ROOT, RRType.DS, 1, 3600, make_ds(ROOT, SigningKey.generate(13).dnskey))
    world = SignedWorld(anchor=wrong)
    assert world.resolve("www.example.test.").bogus is not None
    # the root's DNSKEY RRset was fetched for the chain and failed: asked for, it is
    # bogus too (SERVFAIL), not an unvalidated answer from the cache
    rec = world.resolve(".", RRType.DNSKEY)
    assert rec.error is not None and rec.error.rcode == Rcode.SERVFAIL
    assert rec.bogus is not None
