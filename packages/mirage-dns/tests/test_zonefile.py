"""Zone files: the master format, errors naming file and line, agreement with BIND."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ZONE
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.dns import SOA, TXT, Name, RRType, Zone, ZoneError, parse_zone, read_zone, zone_to_text


def canonical(records: list) -> set[tuple[bytes, int, int, bytes]]:
    return {(r.name.to_wire().lower(), r.rtype, r.ttl, r.rdata.to_wire()) for r in records}


def test_reads_the_test_zone() -> None:
    records = read_zone(ZONE)
    zone = Zone.from_records(records)
    assert zone.origin == Name.from_text("example.com.")
    soa = zone.soa.rdata
    assert isinstance(soa, SOA) and soa.retry == 3600 and soa.expire == 1209600
    by_name = {(r.name.to_text(), r.rtype): r for r in records}
    txt = by_name[("txt.example.com.", RRType.TXT)].rdata
    assert isinstance(txt, TXT)
    assert txt.strings == (b"hello world", b'with "quotes"', b"semi;colon")
    assert by_name[("mail.example.com.", RRType.A)].ttl == 300
    assert ("host5.example.com.", RRType.A) in by_name
    assert ("printer.lab.example.com.", RRType.A) in by_name
    assert ("esc\\.dot.example.com.", RRType.A) in by_name
    assert by_name[("generic.example.com.", RRType.A)].rdata.to_text() == "192.0.2.99"
    assert by_name[("unknown.example.com.", 65280)].rdata.to_text() == "\\# 4 0A000001"


@pytest.mark.skipif(shutil.which("named-compilezone") is None,
                    reason="needs named-compilezone (Debian package bind9-utils)")  # fmt: skip
def test_same_records_as_named_compilezone() -> None:
    out = subprocess.run(
        ["named-compilezone", "-q", "-k", "ignore", "-o", "-", "example.com", str(ZONE)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    theirs = parse_zone(out, "example.com.", filename="named-compilezone")
    assert canonical(theirs) == canonical(read_zone(ZONE))


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("$ORIGIN x.\n@ 60 SOA a b 1 2 3 4 5\n\nw 60 A 1.2.3.999\n", 4, "bad IPv4 address"),
        ("$ORIGIN x.\n@ 60 A 1.2.3.4 (\n", 2, "'(' without ')'"),
        ("$ORIGIN x.\nw 60 BOGUS 1\n", 2, "unknown record type"),
        ("$ORIGIN x.\nw 60 MX 10\n", 2, "missing name"),
        ("w 60 A 1.2.3.4\n", 1, "relative name"),
        ("$ORIGIN x.\n  60 A 1.2.3.4\n", 2, "without an owner"),
        ("$ORIGIN x.\nw A 1.2.3.4\n", 2, "no TTL"),
        ('$ORIGIN x.\nw 60 TXT "open\n', 2, "unterminated"),
        ("$ORIGIN x.\n$INCLUDE nowhere.zone\n", 2, "cannot read"),
        ("$ORIGIN x.\n$FOO\n", 2, "unknown directive"),
        ("$ORIGIN x.\nw 60 TYPE999 \\# 3 0102\n", 2, "not 3"),
        ("$ORIGIN x.\n" + "a" * 64 + " 60 A 1.2.3.4\n", 2, "label longer"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ZoneError) as info:
        parse_zone(text, filename="db.x")
    assert info.value.filename == "db.x"
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(info.value).startswith(f"db.x:{line}: ")


def test_include_and_generate(tmp_path: Path) -> None:
    (tmp_path / "inc.zone").write_text("mail A 192.0.2.3 ; in the included file\n")
    (tmp_path / "main.zone").write_text(
        "$ORIGIN x.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
        "$INCLUDE inc.zone\n$INCLUDE inc.zone sub.x.\n"
        "$GENERATE 0-2/2 ${0,3,d}-$ CNAME h$.\n$GENERATE 10-11 $ PTR host-${-10,2,x}\n"
    )
    names = [r.name.to_text() for r in read_zone(tmp_path / "main.zone")]
    assert names[-6:] == ["mail.x.", "mail.sub.x.", "000-0.x.", "002-2.x.", "10.x.", "11.x."]
    (tmp_path / "bad.zone").write_text("$ORIGIN x.\n$TTL 60\n$INCLUDE inner.zone\n")
    (tmp_path / "inner.zone").write_text("ok A 1.2.3.4\nbad A nope\n")
    with pytest.raises(ZoneError, match=r"inner\.zone:2: bad IPv4"):
        read_zone(tmp_path / "bad.zone")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("@ NS ns\nns A 1.2.3.4\n", "exactly one SOA"),
        ("@ SOA a b 1 2 3 4 5\nns A 1.2.3.4\n", "no NS records"),
        ("@ SOA a b 1 2 3 4 5\n@ NS ns\nw CNAME a\nw A 1.2.3.4\n", "CNAME and other data"),
        ("@ SOA a b 1 2 3 4 5\n@ NS ns\nsub NS ns.sub\n", "lacks glue"),
        ("@ SOA a b 1 2 3 4 5\n@ NS ns\nother. A 1.2.3.4\n", "outside the zone"),
    ],
)
def test_zone_checks(text: str, reason: str) -> None:
    records = parse_zone("$TTL 60\n" + text, "x.")
    with pytest.raises(ZoneError, match=reason):
        Zone.from_records(records, Name.from_text("x."), source="db.x")


def _kzonecheck() -> str:
    path = shutil.which("kzonecheck")
    if path is None:
        pytest.skip("needs kzonecheck (Debian package knot-dnssecutils)")
    return path


def test_our_dump_passes_kzonecheck(tmp_path: Path) -> None:
    tool = _kzonecheck()
    dump = tmp_path / "dump.zone"  # Knot has no $GENERATE: it checks our dump
    dump.write_text(zone_to_text(read_zone(ZONE)))
    done = subprocess.run([tool, "-o", "example.com", str(dump)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kzonecheck_and_we_reject_cname_and_other_data(tmp_path: Path) -> None:
    tool = _kzonecheck()
    text = (
        "$ORIGIN x.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
        "w CNAME ns\nw A 192.0.2.2\n"
    )
    path = tmp_path / "x.zone"
    path.write_text(text)
    done = subprocess.run([tool, "-o", "x", str(path)], capture_output=True, text=True)
    assert done.returncode != 0
    with pytest.raises(ZoneError, match="CNAME and other data"):
        Zone.from_records(read_zone(path))


WORDS = ["IN", "A", "MX", "TXT", "SOA", "TYPE9", "\\#", "$TTL", "$ORIGIN", "$GENERATE", "1h",
         "CLASS4", "NS"]  # fmt: skip
ZONE_ALPHABET = st.sampled_from([*'abc019.@$();"\\ \t\n*-_:', *WORDS])


@settings(max_examples=300, deadline=None)
@given(st.lists(ZONE_ALPHABET, max_size=40).map("".join))
def test_parse_zone_is_total(text: str) -> None:
    try:
        records = parse_zone(text, "x.", filename="fuzz")
    except ZoneError as exc:
        assert exc.filename == "fuzz" and exc.line >= 0
        return
    for rr in records:  # whatever parses prints and parses back to itself
        assert parse_zone(rr.to_text() + "\n", filename="again") == [rr]


_WORDS = st.sampled_from(
    ["www", "WWW", "a.b", "x.example.", "@", "*", "a..b", "-", "IN", "in", "CH", "300",
     "1h", "4294967296", "A", "a", "AAAA", "NS", "CNAME", "PTR", "MX", "Mx", "TXT",
     "10", "65536", "192.0.2.1", "192.0.2.256", "010.0.0.1", "2001:db8::1", "::ffff:1.2.3.4",
     "2001:DB8::A", "x" * 64, ".", "\u00e9", "\u00b2", "$TTL", "$ORIGIN"]
)  # fmt: skip


def _parse_or_error(text: str) -> list[str] | str:
    try:
        return [rr.to_text() for rr in parse_zone(text, "example.")]
    except ZoneError as exc:
        return str(exc)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.booleans(), st.lists(_WORDS, min_size=1, max_size=5)),
                min_size=1, max_size=4))  # fmt: skip
def test_fast_lines_parse_as_the_full_scanner_does(lines: list[tuple[bool, list[str]]]) -> None:
    # a comment at the end of a line sends it through the full scanner and the general
    # record parser: the result (records, or the error) must be the same
    body = ["$TTL 60"] + [(" " if blank else "") + " ".join(words) for blank, words in lines]
    fast = "\n".join(body) + "\n"
    slow = "\n".join(line + " ; c" for line in body) + "\n"
    assert _parse_or_error(fast) == _parse_or_error(slow)
