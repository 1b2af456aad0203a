"""NOTIFY, the refresh timer, and a secondary following NSD as its primary."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import ZONE, _stop, free_port, wait_for_dns

from mirage.dns import (
    SOA,
    Authority,
    Message,
    Name,
    Opcode,
    Question,
    Rcode,
    RRType,
    Zone,
    pull_message,
    push_message,
    read_zone,
    zone_to_text,
)
from mirage.dns._refresh import RefreshTimer, serial_newer

ORIGIN = Name.from_text("example.com.")


def test_serial_arithmetic_rfc1982() -> None:
    assert serial_newer(2, 1) and not serial_newer(1, 2) and not serial_newer(5, 5)
    assert serial_newer(0, 0xFFFFFFFF)  # wraps
    assert serial_newer(0x7FFFFFFF, 0) and not serial_newer(0x80000001, 1)  # 2**31 apart: no


def test_refresh_timer_with_explicit_time() -> None:
    soa = SOA(ORIGIN, ORIGIN, 1, refresh=100, retry=10, expire=50, minimum=5)
    timer = RefreshTimer(soa, now=0.0)
    assert timer.handle_timer(0.0)
    timer.checked(soa, now=0.0)
    assert timer.get_timer() == 100 and not timer.handle_timer(99.0)
    timer.notified(now=30.0)
    assert timer.handle_timer(30.0)
    timer.failed(now=30.0)
    assert timer.get_timer() == 40 and not timer.expired
    timer.failed(now=60.0)
    assert timer.expired


def test_notify_is_acknowledged_and_recorded() -> None:
    auth = Authority([Zone.from_records(read_zone(ZONE))])
    notify = Message(id=9, opcode=Opcode.NOTIFY, aa=True, question=(Question(ORIGIN, RRType.SOA),))
    reply = pull_message(auth.handle(push_message(notify), client="192.0.2.1")[0])
    assert reply.qr and reply.aa and reply.opcode == Opcode.NOTIFY and reply.rcode == 0
    assert auth.notifications == [(ORIGIN, "192.0.2.1")]
    other = Message(id=9, opcode=Opcode.NOTIFY, question=(Question(Name.from_text("x."), 6),))
    assert pull_message(auth.handle(push_message(other))[0]).rcode == Rcode.NOTAUTH


PRIMARY_CONF = """server:
    ip-address: 127.0.0.1@{port}
    username: ""
    zonesdir: "{dir}"
    database: ""
    pidfile: "{dir}/nsd.pid"
    xfrdfile: "{dir}/xfrd.state"
    zonelistfile: "{dir}/zone.list"
    logfile: "{dir}/nsd.log"
    server-count: 1
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: example.com
    zonefile: example.com.zone
    provide-xfr: 127.0.0.1 NOKEY
    notify: 127.0.0.1@{secondary} NOKEY
"""


def test_secondary_follows_nsd_through_notify(tmp_path: Path) -> None:
    from mirage.dns.secondary import Secondary
    from mirage.unix.stack import SocketStack

    nsd = shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)
    if nsd is None:
        pytest.skip("needs NSD (Debian package nsd)")
    if os.geteuid() != 0:
        pytest.skip('NSD here runs as root (username ""); not root')
    records = read_zone(ZONE)
    zonefile = tmp_path / "example.com.zone"
    zonefile.write_text(zone_to_text(records))
    port, ours = free_port(), free_port()
    conf = tmp_path / "nsd.conf"
    conf.write_text(PRIMARY_CONF.format(port=port, dir=tmp_path, secondary=ours))
    proc = subprocess.Popen([nsd, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip

    def ask(auth: Authority, name: str) -> Message:
        query = Message(id=1, question=(Question(Name.from_text(name), RRType.A),))
        return pull_message(auth.handle(push_message(query))[0])

    async def main() -> tuple[int, Message, Message]:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        secondary = Secondary(stack, "example.com", ("127.0.0.1", port), ours)
        await secondary.start()
        try:
            assert secondary.server is not None
            auth = secondary.server.authority
            before = ask(auth, "new.example.com.")
            # the primary's zone changes: a new record and serial; NSD reloads on SIGHUP
            soa = records[0].rdata
            assert isinstance(soa, SOA)
            bumped = zone_to_text(records).replace(f" {soa.serial} ", f" {soa.serial + 1} ", 1)
            zonefile.write_text(bumped + "new.example.com. 60 IN A 192.0.2.123\n")
            proc.send_signal(signal.SIGHUP)
            for _ in range(150):  # bounded: 30 s
                if secondary.transfers >= 2:
                    break
                await asyncio.sleep(0.2)
            return secondary.transfers, before, ask(auth, "new.example.com.")
        finally:
            await secondary.stop()
            await stack.disconnect()

    try:
        wait_for_dns(port, proc)
        transfers, before, after = asyncio.run(main())
    finally:
        _stop(proc)
    assert before.rcode == Rcode.NXDOMAIN
    assert transfers == 2
    assert after.rcode == Rcode.NOERROR and after.answer[0].rdata.to_text() == "192.0.2.123"
