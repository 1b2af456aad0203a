"""Wire format: totality of every decoder, round trips of every type, dnspython agrees."""

from __future__ import annotations

import socket

import dns.message
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mirage.dns import (
    RR,
    A,
    DnsDecodeError,
    Edns,
    EdnsOption,
    Message,
    Name,
    Question,
    Rcode,
    RRType,
    Unknown,
    pull_message,
    push_message,
)
from mirage.dns import _fields as f
from mirage.dns._name import pull_name, push_name
from mirage.dns._rdata import RDATA_TYPES, Rdata

label = st.binary(min_size=1, max_size=12)
names = st.lists(label, max_size=5).map(lambda ls: Name(tuple(ls)))
ascii_names = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10), max_size=4
).map(lambda ls: Name(tuple(x.encode() for x in ls)))


def _field_strategy(codec: f.Field) -> st.SearchStrategy[object]:
    if isinstance(codec, f.NameField):
        return names
    if isinstance(codec, f.IPv4):
        return st.ip_addresses(v=4).map(str)
    if isinstance(codec, f.IPv6):
        return st.ip_addresses(v=6).map(lambda a: socket.inet_ntop(socket.AF_INET6, a.packed))
    if isinstance(codec, f.UInt):
        return st.integers(0, codec.max)
    if isinstance(codec, f.Tag):
        return st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=15).map(
            str.encode
        )
    if isinstance(codec, f.CharStrings):
        return st.lists(st.binary(max_size=40), min_size=1, max_size=3).map(tuple)
    if isinstance(codec, f.Base32Hash):
        return st.binary(min_size=1, max_size=32)
    if isinstance(codec, (f.CharString, f.ShortHex)):
        return st.binary(max_size=40)
    if isinstance(codec, (f.Hex, f.Base64)):
        return st.binary(min_size=1, max_size=40)
    if isinstance(codec, f.RestBytes):
        return st.binary(max_size=40)
    if isinstance(codec, f.TypeBitmap):
        return st.sets(st.integers(1, 700), max_size=8).map(lambda s: tuple(sorted(s)))
    if isinstance(codec, f.SvcParams):
        return st.dictionaries(
            st.integers(7, 70000 % 65536), st.binary(max_size=10), max_size=3
        ).map(lambda d: tuple(sorted(d.items())))
    raise AssertionError(codec)


def rdata_of(cls: type[Rdata]) -> st.SearchStrategy[Rdata]:
    return st.tuples(*[_field_strategy(c) for c in cls.FIELDS]).map(lambda v: cls(*v))


known = st.sampled_from(sorted(RDATA_TYPES)).flatmap(
    lambda t: rdata_of(RDATA_TYPES[t]).map(lambda d: (t, d))
)
unknown = st.tuples(st.integers(1000, 65000), st.binary(max_size=30)).map(
    lambda p: (p[0], Unknown(p[0], p[1]))
)
records = st.tuples(names, st.one_of(known, unknown), st.integers(0, 2**31)).map(
    lambda t: RR(t[0], t[1][0], 1, t[2], t[1][1])
)
edns = st.builds(
    Edns,
    payload=st.integers(512, 65535),
    version=st.just(0),
    dnssec_ok=st.booleans(),
    z=st.just(0),
    options=st.lists(st.builds(EdnsOption, st.integers(0, 65535), st.binary(max_size=20)),
                     max_size=2).map(tuple),
)  # fmt: skip
messages = st.builds(
    Message,
    id=st.integers(0, 65535),
    qr=st.booleans(),
    opcode=st.sampled_from([0, 4, 5]),
    aa=st.booleans(),
    rd=st.booleans(),
    rcode=st.integers(0, 15),
    question=st.lists(st.builds(Question, names, st.integers(1, 65535), st.just(1)),
                      max_size=2).map(tuple),
    answer=st.lists(records, max_size=4).map(tuple),
    authority=st.lists(records, max_size=2).map(tuple),
    additional=st.lists(records, max_size=2).map(tuple),
    edns=st.none() | edns,
)  # fmt: skip

# derandomize: the same examples on every run, so CI cannot turn red by chance
FAST = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(st.binary(max_size=300))
@example(b"\x00" * 12)
@example(bytes.fromhex("0000 0000 0001 0000 0000 0000 c00c 0001 0001"))
@example(bytes.fromhex("0000 0000 0001 0000 0000 0000 01 61 c00c 0001 0001"))
def test_pull_message_is_total(data: bytes) -> None:
    try:
        msg = pull_message(data)
    except DnsDecodeError as exc:
        assert exc.rcode == Rcode.FORMERR
        if len(data) >= 12:
            assert exc.header == (int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big"))
        return
    assert pull_message(push_message(msg)) == msg


@FAST
@given(messages)
def test_message_round_trip(msg: Message) -> None:
    wire = push_message(msg)
    assert pull_message(wire) == msg


SIMPLE = [1, 2, 5, 6, 12, 13, 15, 16, 28, 33, 35, 39, 47]
simple_records = st.tuples(
    ascii_names,
    st.sampled_from(SIMPLE).flatmap(lambda t: rdata_of(RDATA_TYPES[t]).map(lambda d: (t, d))),
    st.integers(0, 2**31 - 1),
).map(lambda t: RR(t[0], t[1][0], 1, t[2], t[1][1]))
simple_messages = st.builds(
    Message,
    id=st.integers(0, 65535),
    qr=st.just(True),
    rcode=st.integers(0, 5),
    question=st.lists(st.builds(Question, ascii_names, st.sampled_from(SIMPLE)), min_size=1,
                      max_size=1).map(tuple),
    answer=st.lists(simple_records, max_size=5, unique_by=lambda r: (r.name, r.rdata)).map(tuple),
    edns=st.none() | st.builds(Edns, payload=st.integers(512, 65535), options=st.lists(
        st.builds(EdnsOption, st.integers(65001, 65534), st.binary(max_size=20)), max_size=2
    ).map(tuple)),
)  # fmt: skip


@FAST
@given(simple_messages)
def test_dnspython_reads_what_we_write(msg: Message) -> None:
    # dnspython keeps one record of a singleton type (CNAME, DNAME) per owner
    singletons = [(r.name, r.rtype) for r in msg.answer if r.rtype in (5, 39)]
    assume(len(singletons) == len(set(singletons)))
    wire = push_message(msg)
    theirs = dns.message.from_wire(wire, question_only=False)
    assert theirs.id == msg.id
    assert theirs.rcode() == msg.rcode
    assert len(theirs.question) == len(msg.question)
    # and their encoding of it decodes to the same records
    ours_again = pull_message(theirs.to_wire())

    def key(r: RR) -> str:  # dnspython merges RRsets and their TTLs
        return repr((r.name, r.rtype, r.rdata))

    assert sorted(map(key, ours_again.answer)) == sorted({key(r) for r in msg.answer})


@FAST
@given(records)
def test_presentation_round_trip(rr: RR) -> None:
    from mirage.dns import parse_zone

    (back,) = parse_zone(rr.to_text() + "\n")
    assert back == rr


def test_compression_loops_are_caught() -> None:
    loop = bytes.fromhex("000000000001000000000000") + bytes.fromhex("c00c00010001")
    with pytest.raises(DnsDecodeError):
        pull_message(loop)
    forward = bytes.fromhex("000000000001000000000000") + bytes.fromhex("c00e00010001")
    with pytest.raises(DnsDecodeError):
        pull_message(forward)
    # a pointer bomb: each label followed by a pointer to the previous label; every
    # pointer is valid and backwards, so decoding ends at the 255-octet limit
    data = bytearray(b"\x01a\x00")
    for _ in range(300):
        here = len(data)
        data += b"\x01b" + (0xC000 | (here - 3 if here > 3 else 0)).to_bytes(2, "big")
    with pytest.raises(DnsDecodeError):
        pull_name(bytes(data), len(data) - 4)
    with pytest.raises(DnsDecodeError):
        pull_name(b"\x01a" * 200 + b"\x00", 0)


def test_compression_shrinks_and_points_back() -> None:
    buf = bytearray(b"\x00" * 12)
    from mirage.dns._name import Compressor

    comp = Compressor()
    push_name(buf, Name.from_text("www.example.com."), comp)
    push_name(buf, Name.from_text("mail.EXAMPLE.com."), comp)
    assert len(buf) == 12 + 17 + 5 + 2
    assert pull_name(bytes(buf), 29)[0] == Name.from_text("mail.example.com.")


def test_edns_extended_rcode_and_options() -> None:
    msg = Message(
        id=7,
        qr=True,
        rcode=Rcode.BADVERS,
        edns=Edns(payload=4096, dnssec_ok=True, options=(EdnsOption(10, b"12345678"),)),
    )
    back = pull_message(push_message(msg))
    assert back.rcode == Rcode.BADVERS == 16
    assert back.edns is not None and back.edns.dnssec_ok and back.edns.payload == 4096
    assert back.edns.cookie == (b"12345678", b"")


def test_truncation_sets_tc_and_respects_limit() -> None:
    name = Name.from_text("big.example.")
    answer = tuple(RR(name, RRType.A, 1, 60, A(f"10.0.{i // 256}.{i % 256}")) for i in range(100))
    msg = Message(qr=True, question=(Question(name, RRType.A),), answer=answer)
    full = push_message(msg)
    assert len(full) > 512
    cut = push_message(msg, 512)
    assert len(cut) <= 512
    back = pull_message(cut)
    assert back.tc and 0 < len(back.answer) < 100


def test_misplaced_opt_is_formerr() -> None:
    opt = b"\x00" + bytes.fromhex("0029 1000 00000000 0000")
    data = bytes.fromhex("000100000000000100000000") + opt
    with pytest.raises(DnsDecodeError):
        pull_message(data)
    two = bytes.fromhex("000100000000000000000002") + opt + opt
    with pytest.raises(DnsDecodeError):
        pull_message(two)


ECH = (
    "AEn+DQBFKwAgACABWIHUGj4u+PIggYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWN"
    "oLmRldgAA"
)
KEY = "mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="


@pytest.mark.parametrize(
    ("text", "rtype"),
    [
        (
            "1 . alpn=h2,h3 port=443 ipv4hint=192.0.2.1 ech=" + ECH,
            "HTTPS",
        ),
        ("0 svc.example.", "SVCB"),
        ("16 svc.example. mandatory=alpn alpn=h2 no-default-alpn", "SVCB"),
        ("60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118", "DS"),
        (
            "256 3 13 " + KEY,
            "DNSKEY",
        ),
        ("A 13 2 3600 20300101000000 20200101000000 12345 example. AAAA", "RRSIG"),
        ("host.example. A MX RRSIG NSEC TYPE1234", "NSEC"),
        ("1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A", "NSEC3"),
        ("1 0 10 AABB", "NSEC3PARAM"),
        ("3 1 0 0123456789ABCDEF0123456789ABCDEF01234567", "TLSA"),
        ("2 1 123456789ABCDEF67890123456789ABCDEF67890", "SSHFP"),
        ('100 10 "S" "SIP+D2U" "" _sip._udp.example.com.', "NAPTR"),
        ('0 iodef "mailto:security@example.com"', "CAA"),
        ('"v=spf1 -all" "second \\"quoted\\""', "TXT"),
    ],
)
def test_types_parse_and_agree_with_dnspython(text: str, rtype: str) -> None:
    import dns.rdata

    from mirage.dns import parse_zone

    (rr,) = parse_zone(f"x.example. 300 IN {rtype} {text}\n")
    theirs = dns.rdata.from_text("IN", rtype, text)
    assert rr.rdata.to_wire() == theirs.to_wire()
    (again,) = parse_zone(rr.to_text() + "\n")
    assert again == rr


queries = st.builds(
    Message,
    id=st.integers(0, 65535),
    opcode=st.sampled_from([0, 4, 5]),
    rd=st.booleans(),
    cd=st.booleans(),
    question=st.lists(st.builds(Question, names, st.integers(0, 65535), st.integers(0, 65535)),
                      min_size=1, max_size=1).map(tuple),
    edns=st.none() | st.builds(Edns, payload=st.integers(0, 65535), version=st.integers(0, 255),
                               dnssec_ok=st.booleans(), z=st.integers(0, 0x7FFF)),
)  # fmt: skip


@FAST
@given(queries)
def test_the_fast_query_decoder_agrees(msg: Message) -> None:
    from mirage.dns._message import pull_query

    wire = push_message(msg)
    fast = pull_query(wire)
    assert fast is not None and fast == pull_message(wire) == msg


@FAST
@given(st.binary(max_size=120))
@example(bytes.fromhex("0000 0000 0001 0000 0000 0001 00 0001 0001 00 0029 1000 00000000 0000"))
def test_the_fast_query_decoder_is_total_and_agrees(data: bytes) -> None:
    from mirage.dns._message import pull_query

    fast = pull_query(data)
    if fast is not None:
        assert fast == pull_message(data)
