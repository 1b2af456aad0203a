"""The sans-IO authoritative core: every answer kind, bad input, truncation, AXFR."""

from __future__ import annotations

import pytest
from conftest import ZONE
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.dns import (
    Authority,
    Edns,
    EdnsOption,
    Message,
    Name,
    Opcode,
    Question,
    Rcode,
    RRType,
    TsigKey,
    Zone,
    make_query,
    parse_zone,
    pull_message,
    push_message,
    read_zone,
)

AUTH = Authority(
    [Zone.from_records(read_zone(ZONE))],
    cookie_secret=b"k" * 16,
    tsig_keys=[TsigKey(Name.from_text("k1."), b"s" * 32)],
)


def ask(name: str, rtype: int, *, tcp: bool = False, edns: Edns | None = None,
        auth: Authority = AUTH) -> Message:  # fmt: skip
    query = make_query(Name.from_text(name), rtype, ident=4242, rd=False, edns=edns)
    (reply,) = auth.handle(push_message(query), tcp=tcp, client="127.0.0.1", now=1000.0)
    msg = pull_message(reply)
    assert msg.id == 4242 and msg.qr and msg.question == query.question
    return msg


def texts(rrs: tuple) -> list[str]:
    return [rr.to_text() for rr in rrs]


def test_positive_answer() -> None:
    msg = ask("www.example.com.", RRType.A)
    assert msg.rcode == Rcode.NOERROR and msg.aa and not msg.tc
    assert sorted(texts(msg.answer)) == [
        "www.example.com. 3600 IN A 192.0.2.10",
        "www.example.com. 3600 IN A 192.0.2.11",
    ]


def test_case_insensitive_and_case_preserved_question() -> None:
    msg = ask("WwW.ExAmPlE.cOm.", RRType.AAAA)
    # the answer's owner is compressed against the question, as NSD and BIND do
    assert msg.answer[0].name == Name.from_text("www.example.com.")
    assert msg.answer[0].rdata.to_text() == "2001:db8::10"
    assert msg.question[0].name.labels[0] == b"WwW"


def test_nxdomain_has_soa_with_negative_ttl() -> None:
    msg = ask("nope.example.com.", RRType.A)
    assert msg.rcode == Rcode.NXDOMAIN and msg.aa and not msg.answer
    (soa,) = msg.authority
    assert soa.rtype == RRType.SOA and soa.ttl == 300


def test_nodata_and_empty_non_terminal() -> None:
    for name in ("www.example.com.", "b.c.example.com.", "c.example.com."):
        msg = ask(name, RRType.MX)
        assert msg.rcode == Rcode.NOERROR and not msg.answer
        assert [rr.rtype for rr in msg.authority] == [RRType.SOA]


def test_cname_chain_inside_the_zone() -> None:
    msg = ask("chain.example.com.", RRType.A)
    assert texts(msg.answer)[:2] == [
        "chain.example.com. 3600 IN CNAME alias.example.com.",
        "alias.example.com. 3600 IN CNAME www.example.com.",
    ]
    assert len(msg.answer) == 4
    ext = ask("external.example.com.", RRType.A)
    assert texts(ext.answer) == ["external.example.com. 3600 IN CNAME www.example.net."]
    assert ask("alias.example.com.", RRType.CNAME).answer[0].rtype == RRType.CNAME


def test_dname_substitution_rfc6672() -> None:
    zone = Zone.from_records(parse_zone(
        "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 1.2.3.4\nold DNAME new\nwww.new A 10.0.0.1\n"
        "out DNAME example.net.\n", "t."))  # fmt: skip
    auth = Authority([zone])
    msg = ask("www.old.t.", RRType.A, auth=auth)
    assert texts(msg.answer) == [
        "old.t. 60 IN DNAME new.t.",
        "www.old.t. 60 IN CNAME www.new.t.",
        "www.new.t. 60 IN A 10.0.0.1",
    ]
    out = ask("a.b.out.t.", RRType.A, auth=auth)
    assert texts(out.answer)[1] == "a.b.out.t. 60 IN CNAME a.b.example.net."
    assert ask("old.t.", RRType.DNAME, auth=auth).answer[0].rtype == RRType.DNAME
    assert ask("nope.new.t.", RRType.A, auth=auth).rcode == Rcode.NXDOMAIN
    assert ask("x.old.t.", RRType.A, auth=auth).rcode == Rcode.NXDOMAIN


def test_wildcards_rfc4592() -> None:
    msg = ask("host.wild.example.com.", RRType.A)
    assert texts(msg.answer) == ["host.wild.example.com. 3600 IN A 192.0.2.99"]
    deep = ask("a.b.wild.example.com.", RRType.TXT)
    assert texts(deep.answer) == ['a.b.wild.example.com. 3600 IN TXT "wildcard"']
    nodata = ask("x.wild.example.com.", RRType.MX)
    assert nodata.rcode == Rcode.NOERROR and not nodata.answer
    # the wildcard does not apply below an existing name (b.c exists as a.b.c's parent)
    assert ask("z.b.c.example.com.", RRType.A).rcode == Rcode.NXDOMAIN
    assert ask("*.wild.example.com.", RRType.A).answer[0].name.labels[0] == b"*"


def test_delegation_with_glue_and_ds_at_parent() -> None:
    msg = ask("www.sub.example.com.", RRType.A)
    assert not msg.aa and msg.rcode == Rcode.NOERROR and not msg.answer
    assert sorted(rr.rtype for rr in msg.authority) == [RRType.NS, RRType.NS]
    unsigned = ask("www.sub.example.com.", RRType.A, edns=Edns(dnssec_ok=True))
    assert sorted(rr.rtype for rr in unsigned.authority) == [RRType.NS, RRType.NS]
    rrsig = ("@ RRSIG SOA 13 1 60 20300101000000 20200101000000 1 t. AAAA\n"
             "s NS ns.s\ns DS 1 13 2 AABB\nns.s A 1.2.3.4\n")  # fmt: skip
    zone = Zone.from_records(parse_zone("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n" + rrsig, "t."))
    signed = ask("x.s.t.", RRType.A, edns=Edns(dnssec_ok=True), auth=Authority([zone]))
    assert sorted(rr.rtype for rr in signed.authority) == [RRType.NS, RRType.DS]
    assert texts(msg.additional) == ["ns.sub.example.com. 3600 IN A 192.0.2.53"]
    ds = ask("sub.example.com.", RRType.DS)
    assert ds.aa and [rr.rtype for rr in ds.answer] == [RRType.DS]


def test_additional_section_for_mx_and_srv() -> None:
    msg = ask("example.com.", RRType.MX)
    assert texts(msg.additional) == ["mail.example.com. 300 IN A 192.0.2.3"]
    srv = ask("_sip._tcp.example.com.", RRType.SRV)
    assert len(srv.additional) == 3


def test_minimal_any_rfc8482() -> None:
    msg = ask("www.example.com.", RRType.ANY)
    assert msg.aa and len({rr.rtype for rr in msg.answer}) == 1


def test_refused_outside_our_zones_and_other_classes() -> None:
    assert ask("example.org.", RRType.A).rcode == Rcode.REFUSED
    with_edns = ask("example.org.", RRType.A, edns=Edns())
    assert with_edns.edns is not None and with_edns.edns.extended_errors == [(20, "")]
    chaos = Question(Name.from_text("version.bind."), RRType.TXT, 3)
    query = Message(id=1, question=(chaos,))
    (reply,) = AUTH.handle(push_message(query))
    assert pull_message(reply).rcode == Rcode.REFUSED


def test_formerr_for_undecodable_queries_and_drop_of_garbage() -> None:
    query = push_message(make_query(Name.from_text("www.example.com."), 1, ident=99))
    (reply,) = AUTH.handle(query[:-2])  # question cut short
    msg = pull_message(reply)
    assert msg.id == 99 and msg.qr and msg.rcode == Rcode.FORMERR and msg.rd
    assert AUTH.handle(b"\x01\x02\x03") == []  # no header: dropped
    response = bytearray(query)
    response[2] |= 0x80
    assert AUTH.handle(bytes(response)) == []  # a response: never answered
    two = Message(id=5, question=make_query(Name.from_text("a.example.com."), 1).question * 2)
    assert pull_message(AUTH.handle(push_message(two))[0]).rcode == Rcode.FORMERR


def test_notimp_and_badvers() -> None:
    soa_question = make_query(Name.from_text("example.com."), 6).question
    status = Message(id=3, opcode=Opcode.STATUS, question=soa_question)
    assert pull_message(AUTH.handle(push_message(status))[0]).rcode == Rcode.NOTIMP
    unsigned_update = Message(id=3, opcode=Opcode.UPDATE, question=soa_question)
    assert pull_message(AUTH.handle(push_message(unsigned_update))[0]).rcode == Rcode.REFUSED
    msg = ask("www.example.com.", RRType.A, edns=Edns(version=1))
    assert msg.rcode == Rcode.BADVERS and msg.edns is not None and not msg.answer


def test_edns_payload_truncation_and_tcp() -> None:
    big = "\n".join(f'big 60 TXT "{"x" * 200} {i}"' for i in range(30))
    zone = Zone.from_records(parse_zone("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 1.2.3.4\n"
                                        + big + "\n", "t."))  # fmt: skip
    auth = Authority([zone])
    small = ask("big.t.", RRType.TXT, auth=auth)
    assert small.tc and len(push_message(small)) <= 512
    medium = ask("big.t.", RRType.TXT, auth=auth, edns=Edns(payload=4096))
    assert medium.tc and len(medium.answer) > len(small.answer)
    full = ask("big.t.", RRType.TXT, auth=auth, tcp=True)
    assert not full.tc and len(full.answer) == 30


def test_cookies_are_answered_and_bad_cookies_formerr() -> None:
    msg = ask("www.example.com.", RRType.A, edns=Edns(options=(EdnsOption(10, b"clientck"),)))
    assert msg.edns is not None and msg.edns.cookie is not None
    client, server = msg.edns.cookie
    assert client == b"clientck" and len(server) == 16
    bad = ask("www.example.com.", RRType.A, edns=Edns(options=(EdnsOption(10, b"short"),)))
    assert bad.rcode == Rcode.FORMERR


def test_axfr_over_tcp_only() -> None:
    query = push_message(make_query(Name.from_text("example.com."), RRType.AXFR, ident=8))
    assert pull_message(AUTH.handle(query)[0]).rcode == Rcode.REFUSED
    replies = [pull_message(r) for r in AUTH.handle(query, tcp=True)]
    records = [rr for m in replies for rr in m.answer]
    assert records[0].rtype == RRType.SOA and records[-1].rtype == RRType.SOA
    assert len(records) == len(read_zone(ZONE)) + 1
    ixfr = push_message(make_query(Name.from_text("example.com."), RRType.IXFR, ident=9))
    assert [rr.rtype for rr in pull_message(AUTH.handle(ixfr)[0]).answer] == [RRType.SOA]


def test_without_response_cache_answers_are_the_same() -> None:
    uncached = Authority([Zone.from_records(read_zone(ZONE))], cache_size=0)
    for name in ("www.example.com.", "nope.example.com.", "host.wild.example.com."):
        query = push_message(make_query(Name.from_text(name), 1, ident=5))
        assert uncached.handle(query) == AUTH.handle(query)
    assert uncached._cache == {}


def test_response_cache_keeps_ids_apart() -> None:
    for ident in (1, 2, 3):
        query = push_message(make_query(Name.from_text("www.example.com."), 1, ident=ident))
        assert pull_message(AUTH.handle(query)[0]).id == ident


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_handle_never_raises(data: bytes, tcp: bool) -> None:
    for reply in AUTH.handle(data, tcp=tcp):
        msg = pull_message(reply)
        assert msg.qr


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120))
def test_signed_looking_garbage_never_raises(tail: bytes) -> None:
    """A TSIG record header (type 250) followed by arbitrary bytes, UPDATE or QUERY."""
    for opcode in (0, 5):
        query = make_query(Name.from_text("example.com."), RRType.SOA, ident=1)
        base = bytearray(push_message(query))
        base[2] = opcode << 3
        base[11] = 1  # one additional record
        record = b"\x02k1\x00" + (250).to_bytes(2, "big") + b"\x00\xff" + bytes(4)
        data = bytes(base) + record + len(tail).to_bytes(2, "big") + tail
        for reply in AUTH.handle(data, now=1000.0):
            assert pull_message(reply).qr


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=12, max_size=12), st.integers(0, 65535), st.binary(max_size=40))
def test_mutated_queries_never_raise(header: bytes, rtype: int, tail: bytes) -> None:
    base = push_message(make_query(Name.from_text("www.example.com."), rtype))
    data = bytes([header[0], header[1], header[2] & 0x7F]) + header[3:] + base[12:] + tail
    for reply in AUTH.handle(data):
        assert pull_message(reply).qr


@pytest.mark.parametrize("qtype", [RRType.A, RRType.NS, RRType.SOA, RRType.TXT])
def test_several_zones(qtype: int) -> None:
    other = Zone.from_records(parse_zone("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 1.2.3.4\n"
                                         "@ TXT hi\n", "example.org."))  # fmt: skip
    auth = Authority([Zone.from_records(read_zone(ZONE)), other])
    assert ask("example.org.", qtype, auth=auth).aa
    assert ask("example.com.", qtype, auth=auth).aa
