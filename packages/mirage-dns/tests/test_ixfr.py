"""IXFR (RFC 1995) out and in, the journal, NOTIFY sent, TSIG over many messages;
with kdig, dnspython and Knot as peers."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest
from conftest import _stop, free_port, wait_for_dns

from mirage.dns import (
    SOA,
    Authority,
    Message,
    Name,
    Question,
    RRType,
    TsigKey,
    Zone,
    parse_zone,
    pull_message,
    push_message,
)
from mirage.dns._ixfr import IxfrReader
from mirage.dns._journal import Journal, diff, parse_journal
from mirage.dns._notify import Notifier

ORIGIN = Name.from_text("example.net.")
ZONE_TEXT = """$ORIGIN example.net.
$TTL 300
@      SOA ns1 hostmaster 100 3600 600 86400 300
@      NS  ns1
ns1    A   192.0.2.53
www    A   192.0.2.1
old    TXT "to be removed"
"""
SECRET = b"0123456789abcdef0123456789abcdef"
KEY = TsigKey(Name.from_text("k1."), SECRET)
RING = dns.tsigkeyring.from_text({"k1.": base64.b64encode(SECRET).decode()})


def zone() -> Zone:
    return Zone.from_records(parse_zone(ZONE_TEXT, ORIGIN))


def update(*changes: tuple[str, str, str, str]) -> dns.update.UpdateMessage:
    msg = dns.update.UpdateMessage("example.net.", keyring=RING, keyname="k1.")
    for op, name, rtype, value in changes:
        if op == "add":
            msg.add(name, 300, rtype, value)
        else:
            msg.delete(name, rtype, value)
    return msg


def serial(auth: Authority) -> int:
    return auth.zones[ORIGIN.key].soa.rdata.serial  # type: ignore[attr-defined,no-any-return]


def with_serial(zone: Zone, serial: int) -> Zone:
    soa = zone.soa
    assert isinstance(soa.rdata, SOA)
    body = [rr for rr in zone.records() if rr is not soa]
    return Zone.from_records([replace(soa, rdata=replace(soa.rdata, serial=serial)), *body])


def run_ixfr(auth: Authority, have: Zone) -> IxfrReader:
    reader = IxfrReader(have, ident=77)
    for message in auth.handle(reader.query, tcp=True):
        if reader.receive(message):
            break
    assert reader.done
    return reader


def test_journal_deltas_and_ixfr_in_and_out() -> None:
    auth = Authority([zone()], tsig_keys=[KEY])
    start = auth.zones[ORIGIN.key]
    now = time.time()
    first = update(("add", "new", "A", "192.0.2.7"))
    second = update(("delete", "old", "TXT", '"to be removed"'), ("add", "www", "A", "192.0.2.2"))
    for msg in (first, second):
        (reply,) = auth.handle(msg.to_wire(), now=now)
        assert pull_message(reply).rcode == 0
    assert serial(auth) == 102 and len(auth.journals[ORIGIN.key].deltas) == 2
    assert [d.new_serial for d in auth.changes] == [101, 102]
    reader = run_ixfr(auth, start)
    assert reader.mode == "incremental" and len(reader.deltas) == 2
    assert reader.apply().records() == auth.zones[ORIGIN.key].records()
    # from the newest serial: the SOA alone
    assert run_ixfr(auth, auth.zones[ORIGIN.key]).mode == "uptodate"
    # from a serial the journal does not know: the whole zone
    unknown = with_serial(start, 50)
    full = run_ixfr(auth, unknown)
    assert full.mode == "full" and full.apply().records() == auth.zones[ORIGIN.key].records()
    # the journal's text form round-trips
    journal = auth.journals[ORIGIN.key]
    assert parse_journal(journal.to_text()) == journal.deltas


def test_ixfr_over_udp_gives_the_soa() -> None:
    auth = Authority([zone()])
    query = Message(id=3, question=(Question(ORIGIN, RRType.IXFR),),
                    authority=(zone().soa,))  # fmt: skip
    (reply,) = auth.handle(push_message(query), tcp=False)
    msg = pull_message(reply)
    assert [rr.rtype for rr in msg.answer] == [RRType.SOA]


def test_journal_keeps_a_chain() -> None:
    a = zone()
    journal = Journal(max_deltas=2)
    versions = [a]
    for i in range(4):
        versions.append(with_serial(versions[-1], 101 + i))
        journal.record(diff(versions[-2], versions[-1]))
    assert [d.new_serial for d in journal.deltas] == [103, 104]
    assert journal.since(100) is None and journal.since(102) is not None


def test_notifier_retries_until_acknowledged() -> None:
    idents = iter(range(10, 100))
    notifier = Notifier({ORIGIN: [("192.0.2.9", 53)]}, interval=5, attempts=3,
                        ident=lambda: next(idents))  # fmt: skip
    notifier.zone_changed(ORIGIN, zone().soa, now=0.0)
    ((target, data),) = notifier.transmit(0.0)
    assert target == ("192.0.2.9", 53) and notifier.transmit(1.0) == []
    assert notifier.get_timer() == 5.0 and len(notifier.transmit(5.0)) == 1
    query = pull_message(data)
    ack = Message(id=query.id, qr=True, opcode=query.opcode, aa=True, question=query.question)
    assert not notifier.receive(push_message(ack), ("192.0.2.99", 53))  # someone else
    assert notifier.receive(push_message(ack), ("192.0.2.9", 53))
    assert notifier.get_timer() is None and notifier.acknowledged == [(ORIGIN, target)]
    # unanswered: given up after the attempts
    notifier.zone_changed(ORIGIN, zone().soa, now=100.0)
    sent = sum(len(notifier.transmit(100.0 + 5 * i)) for i in range(6))
    assert sent == 3 and notifier.get_timer() is None


def test_tsig_signs_every_message_of_a_long_axfr() -> None:
    records = ZONE_TEXT + '$GENERATE 1-3000 host$ TXT "padding padding padding padding $"\n'
    auth = Authority([Zone.from_records(parse_zone(records, ORIGIN))], tsig_keys=[KEY])
    query = dns.message.make_query("example.net.", "AXFR")
    query.use_tsig(RING, keyname="k1.")
    replies = auth.handle(query.to_wire(), tcp=True, now=time.time())
    assert len(replies) > 5
    # dnspython checks the chain of MACs (RFC 8945 5.3.1) as it reads the messages
    ctx = None
    count = 0
    for reply in replies:
        msg = dns.message.from_wire(reply, keyring=RING, request_mac=query.mac, xfr=True,
                                    tsig_ctx=ctx, multi=True)  # fmt: skip
        ctx = msg.tsig_ctx
        count += sum(len(rrset) for rrset in msg.answer)
    assert count == 3000 + 5 + 1


# -- with real peers ------------------------------------------------------------------


@pytest.fixture
def our_primary(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    zonefile = tmp_path / "example.net.zone"
    zonefile.write_text(ZONE_TEXT)
    port = free_port()
    proc = start_ours(zonefile, port)
    try:
        yield port, zonefile, proc
    finally:
        _stop(proc)


def start_ours(zonefile: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirage.dns", "serve", str(zonefile), "--port", str(port),
         "--journal", "--tsig-key", f"k1:{base64.b64encode(SECRET).decode()}", *extra],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_dns(port, proc)
    return proc


def send_update(port: int, *changes: tuple[str, str, str, str]) -> None:
    reply = dns.query.tcp(update(*changes), "127.0.0.1", port=port, timeout=10)
    assert reply.rcode() == dns.rcode.NOERROR


def a_record(port: int, name: str) -> list[str]:
    query = dns.message.make_query(name, "A")
    try:
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
    except dns.exception.Timeout:  # a server still starting
        return []
    return [r.to_text() for rrset in reply.answer for r in rrset]


def test_kdig_gets_the_deltas(our_primary: tuple[int, Path, subprocess.Popen[bytes]]) -> None:
    kdig = shutil.which("kdig")
    if kdig is None:
        pytest.skip("needs kdig (Debian package knot-dnsutils)")
    port, _zonefile, _proc = our_primary
    send_update(port, ("add", "new", "A", "192.0.2.7"))
    send_update(port, ("delete", "old", "TXT", '"to be removed"'))
    out = subprocess.run([kdig, "@127.0.0.1", "-p", str(port), "example.net", "IXFR=100"],
                         capture_output=True, text=True, timeout=30).stdout  # fmt: skip
    lines = [line for line in out.splitlines() if line and not line.startswith(";")]
    soas = [line.split()[6] for line in lines if "\tSOA\t" in line]
    assert soas == ["102", "100", "101", "101", "102", "102"]  # two deltas
    assert any("192.0.2.7" in line for line in lines)
    assert not any("www.example.net" in line for line in lines)  # not the whole zone


def test_updates_survive_a_restart(our_primary: tuple[int, Path, subprocess.Popen[bytes]]) -> None:
    port, zonefile, proc = our_primary
    send_update(port, ("add", "new", "A", "192.0.2.7"))
    _stop(proc)
    assert "192.0.2.7" in zonefile.with_name("example.net.zone.jnl").read_text()
    again = start_ours(zonefile, port)
    try:
        assert a_record(port, "new.example.net.") == ["192.0.2.7"]
        # and the history still answers IXFR with the delta
        reader = IxfrReader(zone(), ident=5)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(len(reader.query).to_bytes(2, "big") + reader.query)
            stream = conn.makefile("rb")
            while not reader.done:
                size = int.from_bytes(stream.read(2), "big")
                reader.receive(stream.read(size))
        assert reader.mode == "incremental"
        assert [rr.name for rr in reader.deltas[0].added] == [Name.from_text("new.example.net.")]
    finally:
        _stop(again)


KNOT_CONF = """server:
    rundir: "{dir}"
    listen: 127.0.0.1@{port}
    user: root:root
log:
  - target: {dir}/knot.log
    any: info
database:
    storage: "{dir}/db"
remote:
  - id: peer
    address: 127.0.0.1@{peer}
acl:
  - id: peer_acl
    address: 127.0.0.1
    action: [notify, transfer]
template:
  - id: default
    storage: "{dir}"
    zonefile-sync: -1
    journal-content: changes
    zonefile-load: difference
zone:
  - domain: example.net
    {role}: peer
    acl: peer_acl
"""


def knotd() -> str:
    path = shutil.which("knotd") or (
        "/usr/sbin/knotd" if os.path.exists("/usr/sbin/knotd") else None
    )
    if path is None:
        pytest.skip("needs knotd (Debian package knot)")
    if os.geteuid() != 0:
        pytest.skip("knotd here runs as root; not root")
    return path


def start_knot(tmp_path: Path, port: int, peer: int, role: str) -> subprocess.Popen[bytes]:
    conf = tmp_path / "knot.conf"
    conf.write_text(KNOT_CONF.format(dir=tmp_path, port=port, peer=peer, role=role))
    (tmp_path / "db").mkdir(exist_ok=True)
    return subprocess.Popen([knotd(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def test_knot_follows_us_by_notify_and_ixfr(tmp_path: Path) -> None:
    knot = knotd()
    del knot
    zonefile = tmp_path / "example.net.zone"
    zonefile.write_text(ZONE_TEXT)
    ours, theirs = free_port(), free_port()
    knot_dir = tmp_path / "knot"
    knot_dir.mkdir()
    primary = start_ours(zonefile, ours, "--notify", f"127.0.0.1:{theirs}")
    proc = start_knot(knot_dir, theirs, ours, "master")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and a_record(theirs, "www.example.net.") == []:
            time.sleep(0.2)
        assert a_record(theirs, "www.example.net.") == ["192.0.2.1"]  # the first AXFR
        send_update(ours, ("add", "new", "A", "192.0.2.7"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and a_record(theirs, "new.example.net.") == []:
            time.sleep(0.2)
        assert a_record(theirs, "new.example.net.") == ["192.0.2.7"]
        log = (knot_dir / "knot.log").read_text()
        assert "IXFR, incoming" in log and "notify, incoming" in log.lower()
    finally:
        _stop(proc)
        _stop(primary)


def test_our_secondary_follows_knot_by_ixfr(tmp_path: Path) -> None:
    from mirage.dns.secondary import Secondary
    from mirage.unix.stack import SocketStack

    knotd()
    zonefile = tmp_path / "example.net.zone"
    zonefile.write_text(ZONE_TEXT)
    port, ours = free_port(), free_port()
    proc = start_knot(tmp_path, port, ours, "notify")

    def ask(auth: Authority, name: str) -> list[str]:
        query = Message(id=1, question=(Question(Name.from_text(name), RRType.A),))
        reply = pull_message(auth.handle(push_message(query))[0])
        return [rr.rdata.to_text() for rr in reply.answer]

    async def main() -> tuple[int, int, list[str]]:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        secondary = Secondary(stack, "example.net", ("127.0.0.1", port), ours)
        await secondary.start()
        try:
            assert secondary.server is not None
            auth = secondary.server.authority
            # Knot computes the difference of the edited zone file on reload
            zonefile.write_text(ZONE_TEXT.replace(" 100 ", " 101 ")
                                + "new IN A 192.0.2.8\n")  # fmt: skip
            proc.send_signal(signal.SIGHUP)
            for _ in range(150):  # bounded: 30 s
                if secondary.transfers >= 2:
                    break
                await asyncio.sleep(0.2)
            return secondary.transfers, secondary.incremental, ask(auth, "new.example.net.")
        finally:
            await secondary.stop()
            await stack.disconnect()

    try:
        wait_for_dns_any(port, proc)
        transfers, incremental, new = asyncio.run(main())
    finally:
        _stop(proc)
    assert (transfers, incremental) == (2, 1)
    assert new == ["192.0.2.8"]


def wait_for_dns_any(port: int, proc: subprocess.Popen[bytes]) -> None:
    query = dns.message.make_query("example.net.", "SOA")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            if reply.answer:
                return
        except (OSError, dns.exception.Timeout):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no DNS server answered on port {port}")


# -- decoders stay total ----------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mirage.dns import DnsError  # noqa: E402

TOTAL = settings(max_examples=200, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@TOTAL
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_ixfr_reader_is_total(messages: list[bytes]) -> None:
    reader = IxfrReader(zone(), ident=0)
    for data in [b"\x00\x00\x84\x00" + m for m in messages] + messages:
        try:
            if reader.receive(data):
                reader.apply()
                return
        except DnsError:
            return


@TOTAL
@given(st.text(max_size=300))
def test_journal_parser_is_total(text: str) -> None:
    try:
        parse_journal(";; delta 1 2\n" + text)
    except DnsError:
        pass


@TOTAL
@given(st.binary(max_size=300))
def test_notifier_receive_is_total(data: bytes) -> None:
    notifier = Notifier({ORIGIN: [("192.0.2.9", 53)]})
    notifier.zone_changed(ORIGIN, zone().soa, now=0.0)
    assert notifier.receive(data, ("192.0.2.9", 53)) in (True, False)
