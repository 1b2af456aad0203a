"""The precompiled answer table gives the bytes the general path gives, for any query."""

from __future__ import annotations

import struct

from conftest import ZONE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirage.dns import (
    Authority,
    Edns,
    Name,
    RRType,
    SigningKey,
    Zone,
    apply_update,
    make_query,
    parse_zone,
    push_message,
    read_zone,
)
from mirage.dns._message import RR, Message
from mirage.dns._rdata import NSEC3PARAM, A
from mirage.dns._signing import sign_zone

EXAMPLE = Zone.from_records(read_zone(ZONE))
SMALL = Zone.from_records(
    parse_zone(
        """$ORIGIN small.test.
$TTL 60
@ SOA ns1 hostmaster.small.test. 1 7200 3600 1209600 300
@ NS ns1
@ MX 10 mail
ns1 A 127.0.0.1
mail A 192.0.2.3
www A 192.0.2.10
www AAAA 2001:db8::10
alias CNAME www
*.w A 192.0.2.99
big TXT "{}" "{}" "{}"
""".replace("{}", "x" * 200)
    )
)
_KEY = SigningKey.generate(13, 257)
SIGNED = sign_zone(SMALL, [_KEY], now=1_700_000_000)
SIGNED3 = Zone.from_records(
    sign_zone(EXAMPLE, [_KEY], now=1_700_000_000, nsec3=NSEC3PARAM(1, 0, 1, b"\xab")).records()
)
ZONES = [EXAMPLE, SMALL]


def pair(zones: list[Zone]) -> tuple[Authority, Authority]:
    fast = Authority(zones, cookie_secret=b"c" * 16, cache_size=0)
    general = Authority(zones, cookie_secret=b"c" * 16, cache_size=0, answer_table=False)
    return fast, general


CHILD = Zone.from_records(
    parse_zone(
        """$ORIGIN sub.example.com.
$TTL 60
@ SOA ns hostmaster 1 7200 3600 1209600 300
@ NS ns
ns A 192.0.2.53
www A 192.0.2.80
*.w TXT "child"
"""
    )
)
PAIRS = [pair(ZONES), pair([SIGNED]), pair([SIGNED3]), pair([EXAMPLE, CHILD])]
NAMES = sorted({rr.name.to_text() for zone in (EXAMPLE, SMALL) for rr in zone.records()})
NAMES += ["nope.example.com.", "a.nope.example.com.", "x.y.wild.example.com.",
          "deep.ns.sub.example.com.", "x.dname.example.com.", "b.c.example.com.",
          "ns1.ns1.small.test.", "hostmaster.x.small.test.", "x.hostmaster.small.test.",
          "q.w.small.test.", "example.org.", "com.", ".", "nope.small.test.",
          "www.sub.example.com.", "x.w.sub.example.com.", "nope.sub.example.com."]  # fmt: skip
TYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 35, 39, 43, 46, 47, 48, 50, 52, 64, 65, 99,
         252, 251, 255, 65280, 65534, 0, 41]  # fmt: skip


def recase(text: str, flips: int) -> str:
    return "".join(c.upper() if (flips >> (i % 30)) & 1 else c for i, c in enumerate(text))


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    name = recase(draw(st.sampled_from(NAMES)), draw(st.integers(0, 2**30)))
    rtype = draw(st.one_of(st.sampled_from(TYPES), st.integers(0, 65535)))
    edns = draw(st.one_of(st.none(), st.builds(
        Edns, payload=st.sampled_from([0, 512, 600, 1232, 4096, 65535]),
        dnssec_ok=st.booleans(), version=st.sampled_from([0, 0, 0, 1]),
        z=st.sampled_from([0, 1]))))  # fmt: skip
    query = make_query(Name.from_text(name), rtype, ident=draw(st.integers(0, 65535)),
                       rd=draw(st.booleans()), edns=edns)  # fmt: skip
    wire = bytearray(push_message(query))
    wire[3] |= draw(st.sampled_from([0, 0x10, 0x20, 0x40, 0x70]))  # CD, AD, Z
    if draw(st.booleans()):  # class ANY, CH or NONE
        pos = 12 + Name.from_text(name).wire_length() + 2
        wire[pos : pos + 2] = struct.pack("!H", draw(st.sampled_from([255, 3, 254])))
    if draw(st.integers(0, 9)) == 0:  # a byte changed anywhere
        at = draw(st.integers(0, len(wire) - 1))
        wire[at] = draw(st.integers(0, 255))
    return bytes(wire)


@settings(
    max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(queries(), st.booleans(), st.integers(0, len(PAIRS) - 1))
def test_fast_path_agrees_with_the_general_path(query: bytes, tcp: bool, which: int) -> None:
    fast, general = PAIRS[which]
    args = {"tcp": tcp, "client": "192.0.2.1", "now": 1_700_000_100.0}
    assert fast.handle(query, **args) == general.handle(query, **args)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(min_size=12, max_size=80), st.booleans())
def test_fast_path_agrees_on_arbitrary_bytes(data: bytes, tcp: bool) -> None:
    fast, general = PAIRS[0]
    assert fast.handle(data, tcp=tcp) == general.handle(data, tcp=tcp)


def test_the_table_is_used_and_bounded_by_the_zone() -> None:
    fast, _ = pair([SMALL])
    table = next(iter(fast._tables.values()))
    for rtype in range(300):  # every absent type: one NODATA entry for the name
        query = make_query(Name.from_text("www.small.test."), rtype)
        fast.handle(push_message(query))
    for i in range(300):  # missing names: entries by length only
        fast.handle(push_message(make_query(Name.from_text(f"n{i}.small.test."), 1)))
    assert len(table.nodata) == 1
    assert len(table.nxdomain) <= 3
    assert set(table.plain) <= {(b"\x03www\x05small\x04test\x00", t) for t in (1, 28, 255)}


def test_a_changed_zone_gets_a_new_table() -> None:
    fast, general = pair([SMALL])
    query = push_message(make_query(Name.from_text("www.small.test."), RRType.A, ident=7))
    before = fast.handle(query)
    update = Message(
        opcode=5,
        question=(make_query(SMALL.origin, RRType.SOA).question[0],),
        authority=(RR(Name.from_text("www.small.test."), RRType.A, 1, 60, A("192.0.2.11")),),
    )
    _, changed = apply_update(SMALL, update)
    assert changed is not None
    for auth in (fast, general):
        auth.replace_zone(changed)
    after = fast.handle(query)
    assert after != before and after == general.handle(query)
