"""Zone transfer in: the sans-IO reader, and AXFR from our server and from NSD."""

from __future__ import annotations

import asyncio

import pytest
from conftest import ZONE

from mirage.dns import (
    Authority,
    AxfrReader,
    Message,
    Name,
    Rcode,
    ResolveError,
    Zone,
    make_response,
    pull_message,
    push_message,
    read_zone,
)
from mirage.dns.xfr import axfr

ORIGIN = Name.from_text("example.com.")
ZONE_RECORDS = read_zone(ZONE)
AUTH = Authority([Zone.from_records(ZONE_RECORDS)])


def canonical(records: list) -> set[tuple[bytes, int, int, bytes]]:  # type: ignore[type-arg]
    return {(r.name.to_wire().lower(), r.rtype, r.ttl, r.rdata.to_wire()) for r in records}


def test_reader_against_the_core() -> None:
    reader = AxfrReader(ORIGIN, ident=321)
    replies = AUTH.handle(reader.query, tcp=True)
    done = [reader.receive(r) for r in replies]
    assert done[-1] and not any(done[:-1])
    assert canonical(reader.records) == canonical(ZONE_RECORDS)


def test_reader_rejects_bad_transfers() -> None:
    reader = AxfrReader(ORIGIN, ident=1)
    query = pull_message(reader.query)
    refused = push_message(make_response(query, rcode=Rcode.REFUSED))
    with pytest.raises(ResolveError) as info:
        reader.receive(refused)
    assert info.value.rcode == Rcode.REFUSED
    www = [rr for rr in ZONE_RECORDS if rr.name == Name.from_text("www.example.com.")]
    not_soa = push_message(make_response(query, answer=tuple(www)))
    with pytest.raises(ResolveError, match="start with"):
        AxfrReader(ORIGIN, ident=1).receive(not_soa)
    other_id = push_message(Message(id=2, qr=True))
    with pytest.raises(ResolveError, match="id"):
        AxfrReader(ORIGIN, ident=1).receive(other_id)


async def _transfer(port: int) -> Zone:
    from mirage.unix.stack import SocketStack

    stack = await SocketStack.connect(ipv4="127.0.0.1")
    try:
        return await axfr(stack, "127.0.0.1", port, "example.com", timeout=10)
    finally:
        await stack.disconnect()


def test_axfr_from_our_server(our_server: int) -> None:
    zone = asyncio.run(_transfer(our_server))
    assert canonical(zone.records()) == canonical(ZONE_RECORDS)


def test_axfr_from_nsd(nsd_server: int) -> None:
    zone = asyncio.run(_transfer(nsd_server))
    assert canonical(zone.records()) == canonical(ZONE_RECORDS)
    # and the transferred zone answers as the original does
    query = AxfrReader(ORIGIN, ident=5).query
    assert len(Authority([zone]).handle(query, tcp=True)) >= 1


SECONDARY_CONF = """server:
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
    minimal-responses: yes
remote-control:
    control-enable: no
zone:
    name: example.com
    zonefile: "secondary.zone"
    request-xfr: AXFR 127.0.0.1@{primary} NOKEY
    allow-notify: 127.0.0.1 NOKEY
    provide-xfr: 127.0.0.1 NOKEY
"""


def test_nsd_as_secondary_of_our_server(our_server: int, tmp_path: object) -> None:
    """NSD transfers the zone from our server (AXFR out) and then serves it."""
    import os
    import shutil
    import subprocess
    import time
    from pathlib import Path

    import dns.message
    import dns.query
    from conftest import _stop, free_port

    nsd = shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)
    if nsd is None:
        pytest.skip("needs NSD (Debian package nsd)")
    if os.geteuid() != 0:
        pytest.skip('NSD here runs as root (username ""); not root')
    workdir = Path(str(tmp_path))
    port = free_port()
    conf = workdir / "nsd.conf"
    conf.write_text(SECONDARY_CONF.format(port=port, dir=workdir, primary=our_server))
    proc = subprocess.Popen([nsd, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        query = dns.message.make_query("host3.example.com.", "A")
        answer = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            except Exception:
                time.sleep(0.2)
                continue
            if reply.rcode() == 0 and reply.answer:
                answer = reply
                break
            time.sleep(0.3)
        assert answer is not None, "NSD did not load the zone from our server"
        assert answer.answer[0].to_text() == "host3.example.com. 3600 IN A 198.51.100.3"
        theirs = dns.query.xfr("127.0.0.1", "example.com.", port=port, lifetime=10)
        lines = {line for m in theirs for r in m.answer for line in r.to_text().splitlines()}
        assert len(lines) == len(ZONE_RECORDS)
    finally:
        _stop(proc)
