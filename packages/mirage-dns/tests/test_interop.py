"""Real peers: dig and kdig query our server; NSD answers the same zone the same way."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

NAMES = [
    "@", "www", "alias", "chain", "external", "nope", "txt", "long", "_sip._tcp", "ptr",
    "1.2.0.192", "naptr", "sshfp", "_443._tcp", "svc", "svc2", "hinfo", "dname", "key",
    "unknown", "generic", "host.wild", "a.b.wild", "*.wild", "a.b.c", "b.c", "c", "sub",
    "www.sub", "ns.sub", "esc\\.dot", "host3", "printer.lab", "lab", "x.nope", "ns2", "mail",
    "WWW", "Alias", "www.dname", "a.b.dname",
]  # fmt: skip
TYPES = [
    "A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "SRV", "PTR", "NAPTR", "SSHFP", "TLSA",
    "HTTPS", "SVCB", "HINFO", "DNAME", "DNSKEY", "DS", "CAA", "TYPE65280", "ANY",
]  # fmt: skip


def qname(label: str) -> str:
    return "example.com." if label == "@" else f"{label}.example.com."


def canonical(msg: dns.message.Message) -> tuple[object, ...]:
    def section(rrsets: list[dns.rrset.RRset]) -> list[str]:
        return sorted(rrset.to_text() for rrset in rrsets)

    aa = bool(msg.flags & dns.flags.AA)
    # Additional data beside authoritative answers is optional (NSD's minimal-responses
    # leaves it out, we give addresses for MX/SRV/NS targets); glue in referrals is not.
    additional = None if aa else section(msg.additional)
    return (msg.rcode(), aa, bool(msg.flags & dns.flags.TC), section(msg.answer),
            section(msg.authority), additional)  # fmt: skip


def test_same_answers_as_nsd(our_server: int, nsd_server: int) -> None:
    differences = []
    count = 0
    for label, rtype, edns in itertools.product(NAMES, TYPES, (False, True, "do")):
        query = dns.message.make_query(
            qname(label), rtype, use_edns=0 if edns else False, want_dnssec=edns == "do"
        )
        query.flags &= ~dns.flags.RD
        ours = dns.query.udp(query, "127.0.0.1", port=our_server, timeout=3)
        theirs = dns.query.udp(query, "127.0.0.1", port=nsd_server, timeout=3)
        count += 1
        if canonical(ours) != canonical(theirs):
            differences.append((label, rtype, edns, canonical(ours), canonical(theirs)))
    assert count == len(NAMES) * len(TYPES) * 3
    assert differences == []


def test_same_answers_as_knot(our_server: int, knot_server: int) -> None:
    """Knot as a second authoritative peer. RFC 8482 lets ANY be answered with any one
    RRset of the name (Knot picks another than NSD and we do): there, one RRset each."""
    differences = []
    for label, rtype, edns in itertools.product(NAMES, TYPES, (False, True, "do")):
        query = dns.message.make_query(
            qname(label), rtype, use_edns=0 if edns else False, want_dnssec=edns == "do"
        )
        query.flags &= ~dns.flags.RD
        ours = dns.query.udp(query, "127.0.0.1", port=our_server, timeout=3)
        theirs = dns.query.udp(query, "127.0.0.1", port=knot_server, timeout=3)
        a, b = canonical(ours), canonical(theirs)
        if rtype == "ANY" and a[:3] == b[:3] and len(ours.answer) == len(theirs.answer) <= 1:
            continue
        if a != b:
            differences.append((label, rtype, edns, a, b))
    assert differences == []


def test_same_axfr_as_nsd(our_server: int, nsd_server: int) -> None:
    def transfer(port: int) -> list[str]:
        messages = dns.query.xfr("127.0.0.1", "example.com.", port=port, lifetime=10)
        texts = [r.to_text() for m in messages for r in m.answer]
        return sorted({line for t in texts for line in t.splitlines()})

    assert transfer(our_server) == transfer(nsd_server)


def test_same_over_tcp_as_nsd(our_server: int, nsd_server: int) -> None:
    for label, rtype in itertools.product(NAMES[:12], ["A", "MX", "TXT", "ANY"]):
        query = dns.message.make_query(qname(label), rtype)
        ours = dns.query.tcp(query, "127.0.0.1", port=our_server, timeout=3)
        theirs = dns.query.tcp(query, "127.0.0.1", port=nsd_server, timeout=3)
        assert canonical(ours) == canonical(theirs), (label, rtype)


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"needs {name} (Debian package {package})")
    return path


def run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


@pytest.mark.parametrize(
    ("name", "rtype", "expect"),
    [
        ("www.example.com", "A", "192.0.2.10"),
        ("www.example.com", "AAAA", "2001:db8::10"),
        ("example.com", "NS", "ns1.example.com."),
        ("example.com", "SOA", "2024010101"),
        ("example.com", "MX", "10 mail.example.com."),
        ("txt.example.com", "TXT", '"hello world" "with \\"quotes\\"" "semi;colon"'),
        ("alias.example.com", "CNAME", "www.example.com."),
        ("ptr.example.com", "PTR", "www.example.com."),
        ("_sip._tcp.example.com", "SRV", "10 60 5060 www.example.com."),
        ("example.com", "CAA", '0 issue "ca.example.net"'),
        ("naptr.example.com", "NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp.example.com.'),
        ("svc.example.com", "HTTPS", "h2,h3"),
        ("sub.example.com", "DS", "60485 13 2"),
        ("key.example.com", "DNSKEY", "257 3 13"),
        ("unknown.example.com", "TYPE65280", "\\# 4 0A000001"),
        ("host.wild.example.com", "A", "192.0.2.99"),
    ],
)
@pytest.mark.parametrize("client", ["dig", "kdig"])
def test_clients_read_every_type(our_server: int, client: str, name: str, rtype: str,
                                 expect: str) -> None:  # fmt: skip
    exe = tool(client, "dnsutils" if client == "dig" else "knot-dnsutils")
    for transport in ("+notcp", "+tcp"):
        out = run([exe, "@127.0.0.1", "-p", str(our_server), transport, "+short", name, rtype])
        assert expect in out, (client, transport, out)


@pytest.mark.parametrize("client", ["dig", "kdig"])
def test_clients_see_errors_and_flags(our_server: int, client: str) -> None:
    exe = tool(client, "dnsutils" if client == "dig" else "knot-dnsutils")
    base = [exe, "@127.0.0.1", "-p", str(our_server), "+norec"]
    assert "status: NXDOMAIN" in run([*base, "nope.example.com", "A"])
    assert "status: REFUSED" in run([*base, "example.org", "A"])
    nodata = run([*base, "www.example.com", "MX"])
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata and "SOA" in nodata
    referral = run([*base, "www.sub.example.com", "A"])
    flags = next(line for line in referral.splitlines() if "lags:" in line)
    assert "ns.sub.example.com." in referral and " aa" not in flags.split(";")[0]
    axfr = run([*base, "example.com", "AXFR"])
    assert axfr.count("SOA") >= 2 and "printer.lab.example.com." in axfr


def test_dig_edns_version_and_cookie(our_server: int) -> None:
    dig = tool("dig", "dnsutils")
    base = [dig, "@127.0.0.1", "-p", str(our_server), "+norec"]
    assert "status: BADVERS" in run([*base, "+edns=1", "+noednsneg", "www.example.com"])
    out = run([*base, "+cookie", "www.example.com"])
    assert "COOKIE:" in out and "(good)" in out


def test_formerr_over_the_wire(our_server: int) -> None:
    query = bytes.fromhex("beef01000001000000000000") + b"\x03www\x07example"  # cut short
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(query, ("127.0.0.1", our_server))
        reply = s.recv(512)
    assert reply[:2] == b"\xbe\xef" and reply[2] & 0x80 and reply[3] & 0xF == dns.rcode.FORMERR


def test_pipelined_tcp_queries(our_server: int) -> None:
    wires = [dns.message.make_query(f"host{i}.example.com.", "A", id=100 + i).to_wire()
             for i in range(1, 6)]  # fmt: skip
    with socket.create_connection(("127.0.0.1", our_server), timeout=3) as s:
        s.sendall(b"".join(len(w).to_bytes(2, "big") + w for w in wires))
        buf = b""
        answers = []
        while len(answers) < 5:
            buf += s.recv(4096)
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                n = int.from_bytes(buf[:2], "big")
                answers.append(dns.message.from_wire(buf[2 : 2 + n]))
                buf = buf[2 + n :]
    assert [a.id for a in answers] == [101, 102, 103, 104, 105]
    assert answers[2].answer[0].to_text() == "host3.example.com. 3600 IN A 198.51.100.3"
