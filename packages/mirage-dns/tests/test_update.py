"""Dynamic UPDATE with TSIG: the core, dnspython as a signing peer, nsupdate for real."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest
from conftest import ZONE, _stop, free_port, wait_for_dns

from mirage.dns import (
    Authority,
    Name,
    TsigKey,
    Zone,
    parse_key,
    pull_message,
    read_zone,
)

SECRET = b"0123456789abcdef0123456789abcdef"
B64 = base64.b64encode(SECRET).decode()
KEY = TsigKey(Name.from_text("k1."), SECRET)
RING = dns.tsigkeyring.from_text({"k1.": B64})
WRONG = dns.tsigkeyring.from_text({"k1.": base64.b64encode(b"x" * 32).decode()})


def fresh() -> Authority:
    return Authority([Zone.from_records(read_zone(ZONE))], tsig_keys=[KEY])


def send(
    auth: Authority, msg: dns.message.Message, now: float | None = None
) -> dns.message.Message:
    wire = msg.to_wire()
    (reply,) = auth.handle(wire, now=time.time() if now is None else now)
    if msg.had_tsig:
        try:
            return dns.message.from_wire(reply, keyring=msg.keyring, request_mac=msg.mac)
        except dns.tsig.PeerError:
            return dns.message.from_wire(reply, keyring=False)
    return dns.message.from_wire(reply)


def lookup(auth: Authority, name: str, rtype: str) -> list[str]:
    query = dns.message.make_query(name, rtype)
    reply = pull_message(auth.handle(query.to_wire())[0])
    return sorted(rr.rdata.to_text() for rr in reply.answer)


def update(keyring: object = RING) -> dns.update.UpdateMessage:
    if keyring is None:
        return dns.update.UpdateMessage("example.com.")
    return dns.update.UpdateMessage("example.com.", keyring=keyring, keyname="k1.",
                                    keyalgorithm=dns.tsig.HMAC_SHA256)  # fmt: skip


def test_signed_update_adds_deletes_and_bumps_the_serial() -> None:
    auth = fresh()
    msg = update()
    msg.add("new", 60, "A", "192.0.2.200")
    msg.delete("www", "AAAA")
    msg.delete("www", "A", "192.0.2.11")
    reply = send(auth, msg)
    assert reply.rcode() == dns.rcode.NOERROR and reply.had_tsig
    assert lookup(auth, "new.example.com.", "A") == ["192.0.2.200"]
    assert lookup(auth, "www.example.com.", "AAAA") == []
    assert lookup(auth, "www.example.com.", "A") == ["192.0.2.10"]
    assert lookup(auth, "example.com.", "SOA")[0].split()[2] == "2024010102"


def test_unsigned_and_badly_signed_updates_change_nothing() -> None:
    auth = fresh()
    before = lookup(auth, "example.com.", "SOA")
    unsigned = update(None)
    unsigned.add("evil", 60, "A", "192.0.2.66")
    assert send(auth, unsigned).rcode() == dns.rcode.REFUSED
    forged = update(WRONG)
    forged.add("evil", 60, "A", "192.0.2.66")
    reply = send(auth, forged)
    assert reply.rcode() == dns.rcode.NOTAUTH
    stale = update()
    stale.add("evil", 60, "A", "192.0.2.66")
    assert send(auth, stale, now=time.time() + 3600).rcode() == dns.rcode.NOTAUTH  # BADTIME
    assert lookup(auth, "evil.example.com.", "A") == []
    assert lookup(auth, "example.com.", "SOA") == before


def test_prerequisites() -> None:
    auth = fresh()
    cases = [
        (lambda m: m.present("www"), dns.rcode.NOERROR),
        (lambda m: m.present("nothing"), dns.rcode.NXDOMAIN),
        (lambda m: m.present("www", "MX"), dns.rcode.NXRRSET),
        (lambda m: m.absent("www"), dns.rcode.YXDOMAIN),
        (lambda m: m.absent("www", "A"), dns.rcode.YXRRSET),
        (lambda m: m.present("mail", "A", "192.0.2.3"), dns.rcode.NOERROR),
        (lambda m: m.present("mail", "A", "192.0.2.4"), dns.rcode.NXRRSET),
    ]
    for prereq, rcode in cases:
        msg = update()
        prereq(msg)
        msg.add("p", 60, "TXT", "x")
        assert send(auth, msg).rcode() == rcode
    outside = update()
    outside.add("www.example.org.", 60, "A", "192.0.2.1")
    assert send(auth, outside).rcode() == dns.rcode.NOTZONE


def test_apex_and_cname_rules() -> None:
    auth = fresh()
    msg = update()
    msg.delete("@")  # everything at the apex but SOA and NS
    msg.delete("@", "NS", "ns2.example.com.")
    msg.delete("@", "NS", "ns1.example.com.")  # the last NS stays
    msg.add("www", 60, "CNAME", "mail")  # www has data: ignored
    msg.add("alias", 60, "A", "192.0.2.1")  # alias is a CNAME: ignored
    assert send(auth, msg).rcode() == dns.rcode.NOERROR
    assert lookup(auth, "example.com.", "NS") == ["ns1.example.com."]
    assert lookup(auth, "example.com.", "MX") == []
    assert lookup(auth, "www.example.com.", "A") == ["192.0.2.10", "192.0.2.11"]
    assert len(lookup(auth, "example.com.", "SOA")) == 1


def test_signed_queries_get_signed_answers() -> None:
    auth = fresh()
    query = dns.message.make_query("www.example.com.", "A")
    query.use_tsig(RING, keyname="k1.", algorithm=dns.tsig.HMAC_SHA256)
    reply = send(auth, query)
    assert reply.had_tsig and len(reply.answer[0]) == 2


def test_parse_key() -> None:
    key = parse_key(f"hmac-sha512:k2.example:{B64}")
    assert key.name == Name.from_text("k2.example.") and key.secret == SECRET
    assert parse_key(f"k1:{B64}").algorithm == Name.from_text("hmac-sha256.")
    for bad in ("k1", f"hmac-foo:k1:{B64}", "k1:***"):
        with pytest.raises(ValueError):
            parse_key(bad)


@pytest.fixture
def updatable_server(tmp_path: Path) -> Iterator[int]:
    zone = tmp_path / "example.com.zone"
    shutil.copy(ZONE, zone)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirage.dns", "serve", str(zone), "--port", str(port),
         "--tsig-key", f"hmac-sha256:k1:{B64}"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_dns(port, proc)
        yield port
    finally:
        _stop(proc)


def test_nsupdate_with_tsig(updatable_server: int, tmp_path: Path) -> None:
    nsupdate = shutil.which("nsupdate")
    if nsupdate is None:
        pytest.skip("needs nsupdate (Debian package dnsutils)")
    script = tmp_path / "update.txt"
    script.write_text(
        f"server 127.0.0.1 {updatable_server}\nzone example.com\n"
        "update add new.example.com 60 A 192.0.2.200\nupdate delete www.example.com AAAA\nsend\n"
    )

    def run(*key: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([nsupdate, *key, str(script)], capture_output=True, text=True,
                              timeout=30, check=False)  # fmt: skip

    def ask(name: str, rtype: str) -> list[str]:
        reply = dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1",
                              port=updatable_server, timeout=3)  # fmt: skip
        return sorted(r.to_text() for rrset in reply.answer for r in rrset)

    unsigned = run()
    assert unsigned.returncode != 0 and "REFUSED" in unsigned.stdout + unsigned.stderr
    forged = run("-y", f"hmac-sha256:k1:{base64.b64encode(b'y' * 32).decode()}")
    assert forged.returncode != 0 and "BADSIG" in forged.stdout + forged.stderr
    assert ask("new.example.com.", "A") == []
    signed = run("-y", f"hmac-sha256:k1:{B64}")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert ask("new.example.com.", "A") == ["192.0.2.200"]
    assert ask("www.example.com.", "AAAA") == []
