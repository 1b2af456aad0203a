"""pcap capture of a vnet link, read back by tshark when it is installed."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from network_kit import Listening, frame

from mirage.core.testing import run
from mirage.net import PcapNetwork, Switch, VnetInterface


def capture(path: Path) -> None:
    async def main() -> None:
        switch = Switch()
        a = await VnetInterface.connect(switch=switch)
        b = await VnetInterface.connect(switch=switch)
        tap = await PcapNetwork.connect(network=a, pcap=str(path))
        la, lb = Listening(tap), Listening(b)
        await tap.write(frame(b.mac, a.mac, b"out" * 10, 0x0800))
        await lb.next(ethertype=0x0800)
        await b.write(frame(a.mac, b.mac, b"in" * 10, 0x0806))
        await la.next(ethertype=0x0806)
        assert tap.mac == a.mac and tap.mtu == a.mtu and tap.stats().tx_packets == 1
        await la.stop()
        await lb.stop()
        await tap.disconnect()
        await a.disconnect()
        await b.disconnect()

    run(main())


def test_pcap_format(tmp_path: Path) -> None:
    path = tmp_path / "cap.pcap"
    capture(path)
    data = path.read_bytes()
    magic, major, minor, _, _, _snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    _, _, incl, orig = struct.unpack_from("<IIII", data, 24)
    assert incl == orig == 14 + 30
    assert data[40 + 12 : 40 + 14] == b"\x08\x00"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark (apt package tshark)")
def test_tshark_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "cap.pcap"
    capture(path)
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "eth.type"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out == ["0x0800", "0x0806"]
