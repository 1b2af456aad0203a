"""End to end: a unikernel configured with the direct stack over a TAP device is
built into a zipapp with the unix target, run inside a throw-away network namespace,
and echoes what the Linux kernel sends it over TCP: once with a static address, once
with ``--dhcp --ipv6`` against dnsmasq (DHCP lease, router advertisement, SLAAC)."""

from __future__ import annotations

import importlib.util
import ipaddress
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mirage.net.testing import inside_netns, ip, netns_skip_reason

_skip = netns_skip_reason()
if _skip is None and importlib.util.find_spec("mirage.unix") is None:
    _skip = "needs mirage-unix (the unix target) installed beside mirage-tcpip"

CONFIG = """
from mirage.core.dsl import default, impl, job, register, runtime_arg

port = runtime_arg("port", "int", default=7, doc="TCP port to listen on")
register(
    "echo",
    job(
        "unikernel:start",
        stack=impl("direct_stack", needs={"network": impl("tap")}),
        console=default("console"),
        args=[port],
    ),
)
"""

UNIKERNEL = """
async def start(stack, console, port):
    async def echo(flow):
        while data := await flow.read():
            await flow.write(data)
        await flow.close()

    await stack.tcp.listen(port, echo)
    await console.log(f"listening on {port}")
    import asyncio

    await asyncio.Event().wait()
"""


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_echo_unikernel_over_tap(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(CONFIG)
    (tmp_path / "unikernel.py").write_text(textwrap.dedent(UNIKERNEL))
    mirage = [sys.executable, "-m", "mirage.core", "-C", str(tmp_path)]
    subprocess.run([*mirage, "configure", "-t", "unix"], check=True, capture_output=True)
    subprocess.run([*mirage, "build"], check=True, capture_output=True)
    (artifact,) = (tmp_path / "dist").glob("*.pyz")
    with inside_netns():
        proc = subprocess.Popen(
            [sys.executable, str(artifact), "--tap", "mtap1", "--ipv4", "10.9.1.2/24"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert "listening on 7" in proc.stdout.readline()
            ip("addr", "add", "10.9.1.1/24", "dev", "mtap1")
            with socket.create_connection(("10.9.1.2", 7), timeout=10) as s:
                s.sendall(b"hello, unikernel\n")
                s.shutdown(socket.SHUT_WR)
                got = b""
                while data := s.recv(4096):
                    got += data
            assert got == b"hello, unikernel\n"
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="needs dnsmasq (dnsmasq-base)")
@pytest.mark.skipif(shutil.which("ping") is None, reason="needs ping (iputils-ping)")
def test_echo_unikernel_with_dhcp_and_ipv6(tmp_path: Path) -> None:
    """The same unikernel run with ``--dhcp --ipv6``: dnsmasq leases it its address
    and advertises an IPv6 prefix; the kernel reaches it over both."""
    (tmp_path / "config.py").write_text(CONFIG)
    (tmp_path / "unikernel.py").write_text(textwrap.dedent(UNIKERNEL))
    mirage = [sys.executable, "-m", "mirage.core", "-C", str(tmp_path)]
    subprocess.run([*mirage, "configure", "-t", "unix"], check=True, capture_output=True)
    subprocess.run([*mirage, "build"], check=True, capture_output=True)
    (artifact,) = (tmp_path / "dist").glob("*.pyz")
    with inside_netns():
        with open("/proc/sys/net/ipv6/conf/default/accept_dad", "w") as f:
            f.write("0")
        # A persistent TAP that the unikernel attaches to, with dnsmasq already on it.
        ip("tuntap", "add", "mtap1", "mode", "tap")
        ip("addr", "add", "10.9.1.1/24", "dev", "mtap1")
        ip("-6", "addr", "add", "fd00:10::1/64", "dev", "mtap1", "nodad")
        ip("link", "set", "mtap1", "up")
        server = subprocess.Popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=mtap1",
                "--bind-interfaces",
                "--user=root",
                "--pid-file",
                f"--dhcp-leasefile={tmp_path / 'leases'}",
                "--dhcp-range=10.9.1.50,10.9.1.50,255.255.255.0,5m",
                "--no-ping",
                "--enable-ra",
                "--dhcp-range=fd00:10::,ra-only,64,10m",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = subprocess.Popen(
            [sys.executable, str(artifact), "--tap", "mtap1", "--dhcp", "--ipv6"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines = []
            while "listening on 7" not in (line := proc.stdout.readline()):
                lines.append(line)
                assert line and len(lines) < 20, lines
            assert any("DHCP lease 10.9.1.50/24 from 10.9.1.1" in x for x in lines), lines
            echo(socket.AF_INET, "10.9.1.50")
            # Its SLAAC address: the advertised prefix and its MAC's EUI-64 identifier.
            mac = bytes.fromhex(ip("neigh", "show", "10.9.1.50").split()[-2].replace(":", ""))
            iid = bytes((mac[0] ^ 2, *mac[1:3], 0xFF, 0xFE, *mac[3:]))
            address = ipaddress.IPv6Address(bytes.fromhex("fd000010" + "00" * 4) + iid)
            for _ in range(50):  # DAD of the SLAAC address takes a second
                if (
                    subprocess.run(
                        ["ping", "-6", "-c", "1", "-W", "1", str(address)], capture_output=True
                    ).returncode
                    == 0
                ):
                    break
            echo(socket.AF_INET6, str(address))
        finally:
            proc.terminate()
            proc.wait(10)
            server.terminate()
            server.wait(10)


def echo(family: int, host: str) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect((host, 7))
        s.sendall(b"hello over DHCP\n")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while data := s.recv(4096):
            got += data
    assert got == b"hello over DHCP\n"
