"""TAP with the virtio-net header (``offload=True``): the kit's frame tests pass through
it, partial checksums the kernel leaves to the device are completed, and a UDP
datagram from the kernel arrives with a correct checksum."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from network_kit import NetworkTests

from mirage.core.testing import run
from mirage.core.types import Network
from mirage.net import PacketNetwork, TapNetwork, format_mac
from mirage.net.tap import _fill_checksum
from mirage.net.testing import inside_netns, ip, netns_skip_reason


def reference_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=2, max_size=300), st.integers(0, 0xFFFF), st.data())
def test_fill_checksum_matches_the_definition(
    body: bytes, partial: int, data: st.DataObject
) -> None:
    offset = data.draw(st.integers(0, len(body) - 2))
    prefix = b"\xaa" * 14
    frame = prefix + body[:offset] + partial.to_bytes(2, "big") + body[offset + 2 :]
    done = _fill_checksum(frame, len(prefix), offset)
    # The field, holding the partial sum, is replaced by the checksum of the range.
    expected = reference_checksum(frame[len(prefix) :])
    got = int.from_bytes(done[len(prefix) + offset : len(prefix) + offset + 2], "big")
    assert got == expected or (got == 0xFFFF and expected == 0)


def test_fill_checksum_ignores_offsets_out_of_range() -> None:
    assert _fill_checksum(b"abc", 10, 0) == b"abc"
    assert _fill_checksum(b"abcdef", 2, 3) == b"abcdef"


_skip = netns_skip_reason()


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
class TestTapOffload(NetworkTests):
    def run(self, coro):  # type: ignore[no-untyped-def,override]
        with inside_netns():
            return super().run(coro)

    async def make_pair(self) -> tuple[Network, Network]:
        tap = await TapNetwork.connect(name="mtapv0", offload=True)
        other = await PacketNetwork.connect(interface="mtapv0")
        return tap, other


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_udp_from_the_kernel_has_its_checksum_completed() -> None:
    async def main() -> None:
        tap = await TapNetwork.connect(name="mtapv1", offload=True)
        ip("addr", "add", "10.9.20.1/24", "dev", "mtapv1")
        ip("neigh", "add", "10.9.20.2", "lladdr", format_mac(tap.mac), "dev", "mtapv1")
        got: asyncio.Queue[bytes] = asyncio.Queue()
        task = asyncio.ensure_future(tap.listen(got.put_nowait))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            payload = bytes(range(256)) * 4  # (one frame: no fragments)
            sock.sendto(payload, ("10.9.20.2", 4000))
            while True:
                frame = await asyncio.wait_for(got.get(), 5)
                if frame[12:14] == b"\x08\x00" and frame[23] == 17:
                    break
            ihl = (frame[14] & 0x0F) * 4
            udp = frame[14 + ihl :]
            src, dst = frame[26:30], frame[30:34]
            pseudo = src + dst + b"\x00\x11" + len(udp).to_bytes(2, "big")
            assert reference_checksum(pseudo + udp) == 0  # a correct checksum
            assert udp[8:] == payload
        finally:
            sock.close()
            await tap.disconnect()
            await task

    with inside_netns():
        run(main())


@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_listen_direct_hands_frames_over_as_they_are_read() -> None:
    async def main() -> None:
        tap = await TapNetwork.connect(name="mtapv2")
        other = await PacketNetwork.connect(interface="mtapv2")
        got: list[bytes] = []
        assert tap.supports_direct
        task = asyncio.ensure_future(tap.listen_direct(got.append))
        await asyncio.sleep(0)
        frames = [tap.mac + other.mac + b"\x88\xb5" + bytes((i,)) * 50 for i in range(20)]
        for f in frames:
            await other.write(f)
        for _ in range(100):
            if len([f for f in got if f[12:14] == b"\x88\xb5"]) == 20:
                break
            await asyncio.sleep(0.01)
        assert [f for f in got if f[12:14] == b"\x88\xb5"] == frames
        assert tap.stats().rx_packets == len(got)
        await tap.disconnect()
        await asyncio.wait_for(task, 5)  # returns once disconnected
        await other.disconnect()

    with inside_netns():
        run(main())


def test_listen_direct_on_vnet_delivers_on_the_next_turn() -> None:
    """vnet hands frames to a direct listener without its queue, but never inside
    the sender's own write (two stacks on one switch would re-enter each other)."""
    from mirage.net import Switch, VnetInterface

    async def main() -> None:
        switch = Switch()
        a = await VnetInterface.connect(switch=switch)
        b = await VnetInterface.connect(switch=switch)
        assert b.supports_direct
        got: list[bytes] = []
        task = asyncio.ensure_future(b.listen_direct(got.append))
        await asyncio.sleep(0)
        frame = b.mac + a.mac + b"\x88\xb5" + bytes(50)
        assert a.write_nowait(frame)
        await a.write(frame)
        assert got == []  # not delivered inside the writes
        await asyncio.sleep(0.01)
        assert got == [frame, frame]
        assert b._queue.empty()
        await b.disconnect()
        await asyncio.wait_for(task, 5)
        await a.disconnect()

    run(main())
