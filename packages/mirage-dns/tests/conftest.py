"""Shared fixtures: the test zone, free loopback ports, our server and NSD as peers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
ZONE = DATA / "example.com.zone"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


def wait_for_dns(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Poll with a real query until the server at ``port`` answers."""
    query = bytes.fromhex("abcd00000001000000000000076578616d706c6503636f6d0000060001")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, ("127.0.0.1", port))
                if s.recv(4096)[:2] == query[:2]:
                    return
            except OSError:
                pass
    raise RuntimeError(f"no DNS server answered on port {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def our_server() -> Iterator[int]:
    """``mirage-dns serve`` on the test zone; yields its port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirage.dns", "serve", str(ZONE), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_dns(port, proc)
        yield port
    finally:
        _stop(proc)


NSD_SERVER = """server:
    ip-address: {address}
    username: ""
    zonesdir: "{zones}"
    database: ""
    pidfile: "{dir}/nsd.pid"
    xfrdfile: "{dir}/xfrd.state"
    zonelistfile: "{dir}/zone.list"
    logfile: "{dir}/nsd.log"
    server-count: 1
    verbosity: 0
    minimal-responses: yes
    rrl-ratelimit: 0
remote-control:
    control-enable: no
"""


def nsd_conf(
    address: str, zones_dir: Path, state_dir: Path, zones: dict[str, str], zone_extra: str = ""
) -> str:
    """An nsd.conf serving ``zones`` (origin: zone file) on ``address`` (``ip@port``)."""
    text = NSD_SERVER.format(address=address, zones=zones_dir, dir=state_dir)
    for origin, zonefile in zones.items():
        text += f'zone:\n    name: "{origin}"\n    zonefile: "{zonefile}"\n{zone_extra}'
    return text


def nsd_program() -> str:
    """The ``nsd`` program; skips when it is missing or cannot run here."""
    nsd = shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)
    if nsd is None:
        pytest.skip("needs NSD (Debian package nsd)")
    if os.geteuid() != 0:
        pytest.skip('NSD here runs as root (username ""); not root')
    return nsd


@pytest.fixture(scope="session")
def nsd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """NSD serving the same zone; skips when ``nsd`` is missing or cannot run."""
    nsd = nsd_program()
    workdir = tmp_path_factory.mktemp("nsd")
    # NSD has no $GENERATE: it loads our own dump of the zone (absolute names)
    from mirage.dns import read_zone, zone_to_text

    (workdir / "example.com.zone").write_text(zone_to_text(read_zone(ZONE)))
    port = free_port()
    conf = nsd_conf(f"127.0.0.1@{port}", workdir, workdir, {"example.com": "example.com.zone"},
                    "    provide-xfr: 127.0.0.1 NOKEY\n")  # fmt: skip
    (workdir / "nsd.conf").write_text(conf)
    proc = subprocess.Popen([nsd, "-d", "-c", str(workdir / "nsd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_dns(port, proc)
        yield port
    finally:
        _stop(proc)


KNOT_CONF = """server:
    rundir: "{dir}"
    listen: 127.0.0.1@{port}
    user: root:root
log:
  - target: {dir}/knot.log
    any: warning
database:
    storage: "{dir}/db"
template:
  - id: default
    storage: "{dir}"
    zonefile-sync: -1
    semantic-checks: off
zone:
  - domain: example.com
"""


@pytest.fixture(scope="session")
def knot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Knot DNS (knotd) serving the same zone; skips when it is missing or cannot run."""
    knotd = shutil.which("knotd") or (
        "/usr/sbin/knotd" if os.path.exists("/usr/sbin/knotd") else None
    )
    if knotd is None:
        pytest.skip("needs knotd (Debian package knot)")
    if os.geteuid() != 0:
        pytest.skip("knotd here runs as root (user root:root); not root")
    workdir = tmp_path_factory.mktemp("knot")
    (workdir / "db").mkdir()
    from mirage.dns import read_zone, zone_to_text

    (workdir / "example.com.zone").write_text(zone_to_text(read_zone(ZONE)))
    port = free_port()
    (workdir / "knot.conf").write_text(KNOT_CONF.format(port=port, dir=workdir))
    proc = subprocess.Popen([knotd, "-c", str(workdir / "knot.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_dns(port, proc)
        yield port
    finally:
        _stop(proc)
