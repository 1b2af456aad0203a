"""End to end: a unikernel configured with the direct stack over a TAP device is
built into a zipapp with the unix target, run inside a throw-away network namespace,
and echoes what the Linux kernel sends it over TCP."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from netns import inside_netns, ip, netns_skip_reason

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
